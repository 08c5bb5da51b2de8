"""Values that are credentials by their form, found by Yelp's detect-secrets.

Every regex detector the library ships is used (AWS, Azure, GitHub, GitLab, Slack, Stripe,
Twilio, SendGrid, Mailchimp, OpenAI, npm, PyPI, Discord, Telegram, JWTs, private keys,
``user:password@`` URLs, ...), so a library upgrade brings its new formats along, but:

- its keyword plugin: names are judged by ``credential_names``, one rule for env names,
  flags and keys alike;
- its public-IP plugin: an IP address is not a credential (a Service's
  ``loadBalancerIP`` would be hidden);
- its two high-entropy plugins, which look for quoted strings in source code: here every
  run of the base64 alphabet in a value is a candidate, scored with the plugin's Shannon
  entropy and limit (4.5 bits per character), unless the value's name says it is a
  digest, an identifier or public (``credential_names.digest_name``) or the run reads
  as words (``_readable``: a path, an ARN, a cipher-suite list). Hex strings are left to
  names and formats: Kubernetes is full of random hex that is no secret (image digests,
  ``pod-template-hash``, ``kubernetes.io/config.mirror``, run ids in names), and a hex
  credential comes under a name that says so (``DD_API_KEY``).

Findings pass the library's heuristic filters (sequential strings, UUIDs, templated
``${...}`` and ``{{...}}`` values, ``$VAR`` references, strings with no letter). Private
key detectors only say that a key is there: the whole PEM block is the finding. Our own
rules add what the library lacks: a URL's password with an empty user
(``redis://:pw@host``), Go's and Oracle's DSNs.

>>> sorted(credentials_in("postgres://app:hunter22@db:5432/shop"))
['hunter22']
>>> credentials_in("IfNotPresent"), credentials_in("pod-7d4b9c8f5", entropy=False)
(frozenset(), frozenset())
"""

import math
import re
from collections.abc import Iterator, Mapping

from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
from detect_secrets.filters import heuristic
from detect_secrets.plugins.base import BasePlugin, RegexBasedDetector
from detect_secrets.plugins.high_entropy_strings import Base64HighEntropyString
from detect_secrets.plugins.ip_public import IPPublicDetector
from detect_secrets.plugins.private_key import PrivateKeyDetector

_PLUGINS: Mapping[str, type[BasePlugin]] = get_mapping_from_secret_type_to_class()

_DETECTORS: tuple[RegexBasedDetector, ...] = tuple(
    plugin()
    for plugin in _PLUGINS.values()
    if issubclass(plugin, RegexBasedDetector) and not issubclass(plugin, IPPublicDetector)
)
"""The library's format detectors (all its regex-based plugins), configured once."""

_BASE64 = Base64HighEntropyString()

_BASE64_RUNS = re.compile(
    f"[{re.escape(_BASE64.charset)}]{{{math.floor(2**_BASE64.entropy_limit) + 1},}}"
)
"""Runs of the base64 alphabet no shorter than one whose entropy could pass the limit:
n characters have at most log2(n) bits of entropy per character."""

_URL_PASSWORD = re.compile(r"(?<![\w+.-])[A-Za-z][\w+.-]*://[^/\s:@]*:([^/\s@]+)@")
"""The password of a URL's userinfo (RFC 3986), the user name empty included
(``redis://:password@cache``), which the library's basic-auth pattern misses."""

_CONNECTION_STRINGS = (
    re.compile(r"(?<![\w.-])[\w.-]+:([^@\s/:()]+)@(?:tcp|unix)\("),  # Go MySQL DSN
    re.compile(r"(?<![\w.-])[\w.-]+/([^@\s/]+)@//"),  # Oracle: user/password@//host
)
"""Connection strings with a password that are not URLs (Go's MySQL driver, Oracle)."""

_FILTERS = (
    heuristic.is_sequential_string,
    heuristic.is_potential_uuid,
    heuristic.is_templated_secret,
    heuristic.is_prefixed_with_dollar_sign,
    heuristic.is_not_alphanumeric_string,
)


_SWITCHES = frozenset(
    {"true", "false", "yes", "no", "on", "off", "null", "none", "enabled", "disabled", "0",
     "1", "oidc", "oauth", "oauth2", "ldap", "saml", "basic", "digest", "bearer", "login",
     "plain", "jwt", "kerberos", "ntlm", "mtls", "tls", "iam", "sso", "x509", "md5",
     "scram-sha-256", "trust", "peer", "ident", "cert", "anonymous"}
)  # fmt: skip
"""Switches and modes: ``MYSQL_ALLOW_EMPTY_PASSWORD=1``, ``AUTH=oidc``, ``SMTP_AUTH=login``."""

_STANDS_FOR_ANOTHER = re.compile(
    r"\$\(\w+\)"  # Kubernetes' expansion of another env variable
    r"|\$\{[^{}\s]+\}"  # ${VAR}: shell, envsubst, Spring
    r"|\{\{.*\}\}"  # a Helm or Go template
    r"|/[\w.@-]+(?:/[\w.@-]+)+",  # a file's path: the credential is in a mounted file
    re.DOTALL,
)

_SHELL_VARIABLE = re.compile(r"\$\w+|\$\(.*|`.*", re.DOTALL)
"""In a shell script: a variable, or a command's output (``$(cat /run/token)``)."""


def placeholder(value: str, shell: bool = False) -> bool:
    """Whether a value under a credential's name is not the credential: one that stands
    for another (``$(DB_PASSWORD)``, ``${DB_PASSWORD}``, ``{{ .Values.pw }}``, a file's
    path, and in a shell script ``$DB_PASSWORD``), a switch (``true``, ``off``), or no
    word at all (``|``). In a shell script, ``$DB_PASSWORD`` and ``$(cat /run/pw)`` too.

    >>> [placeholder(v) for v in ("$(DB_PASSWORD)", "{{ .Values.pw }}", "/etc/pki/tls.key")]
    [True, True, True]
    >>> [placeholder(v) for v in ("false", "hunter2", "/hunter2", "$uperS3cret", "<S3cret>")]
    [True, False, False, False, False]
    >>> placeholder("$DB_PASSWORD", shell=True)
    True
    """
    return (
        value.strip().lower() in _SWITCHES
        or not any(c.isalnum() for c in value)
        or _STANDS_FOR_ANOTHER.fullmatch(value.strip()) is not None
        or (shell and _SHELL_VARIABLE.fullmatch(value) is not None)
    )


def credentials_in(text: str, entropy: bool = True) -> frozenset[str]:
    """The credentials in ``text``: each a substring of it (possibly all of it).

    ``entropy=False`` skips the high-entropy search (for digests and identifiers).
    """
    return frozenset(
        found
        for found in _findings(text, entropy)
        if found and not any(check(found) for check in _FILTERS)
    )


def _findings(text: str, entropy: bool) -> Iterator[str]:
    for detector in _DETECTORS:
        if isinstance(detector, PrivateKeyDetector):  # says that a key is there, not where
            if any(regex.search(text) for regex in detector.denylist):
                yield from _pem_blocks(text) or [text]
            continue
        for regex in detector.denylist:
            covered = 0  # a match run on to its token's end covers the matches inside it
            for match in regex.finditer(text):
                if match.start() >= covered:
                    found, covered = _credential(match)
                    yield found
    yield from _URL_PASSWORD.findall(text)
    yield from (found for pattern in _CONNECTION_STRINGS for found in pattern.findall(text))
    if entropy:
        for run in _BASE64_RUNS.findall(text):
            if (
                not _readable(run)
                and _BASE64.calculate_shannon_entropy(run) > _BASE64.entropy_limit
            ):
                yield run


_SAME_CASE_RUNS = re.compile(r"[a-z]{3,}|[A-Z]{3,}")


def _readable(run: str) -> bool:
    """Whether ``run`` is made of words (a path, a flag, an ARN, a cipher suite list:
    4/5 of its letters or more in runs of three of the same case), which random base64
    is not: a random string has a third of its letters in such runs, and more than 4/5
    in fewer than 1 in 2,000 at 40 characters (1 in 200 at 24)."""
    letters = sum(c.isalpha() for c in run)
    in_words = sum(len(word) for word in _SAME_CASE_RUNS.findall(run))
    return letters > 0 and in_words >= 0.8 * letters


_PEM_LINE = re.compile(r"-----(BEGIN|END) [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")


def _pem_blocks(text: str) -> list[str]:
    """Each private key's PEM block, from its BEGIN line to its END line (or the end of
    the text), in one pass."""
    blocks, start = [], -1
    for line in _PEM_LINE.finditer(text):
        if line[1] == "BEGIN" and start < 0:
            start = line.start()
        elif line[1] == "END" and start >= 0:
            blocks.append(text[start : line.end()])
            start = -1
    return [*blocks, text[start:]] if start >= 0 else blocks


_DELIMITERS = " \t\r\n\"'`=:@[](),;"

_TOKEN = re.compile(r"[\w-]*")


def _credential(match: re.Match[str]) -> tuple[str, int]:
    """The credential a detector's match holds, and where it ends. Its regex may capture
    the credential (the password of ``://user:password@``, the value after a keyword) or
    only a part of it (``ghp`` of a GitHub token): a group that ends where the match
    ends, but for closing delimiters, is the credential; otherwise the whole match is,
    delimiters off. A match that stops inside a token (a lazy pattern: a JWT's
    signature) runs on to the token's end."""
    whole = match.group(0)
    end = match.start() + len(whole.rstrip(_DELIMITERS))
    start = next(
        (match.start(g) for g in range(1, match.re.groups + 1) if match[g] and match.end(g) == end),
        match.start() + len(whole) - len(whole.lstrip(_DELIMITERS)),
    )
    rest = _TOKEN.match(match.string, end)
    end = rest.end() if rest else end
    return match.string[start:end], end
