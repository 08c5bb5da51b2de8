"""Names that say their value is a credential: env names, flag names, keys.

A name is split into lowercase words (``MYSQL_ROOT_PASSWORD`` -> mysql, root, password;
``postgresql.auth.password``; ``apiKey`` -> api, key; ``--db-password``), and its *last*
word decides, since that is what the value is: ``DB_PASSWORD`` is a password,
``PASSWORD_MIN_LENGTH`` a length, ``KEY_FILE_PATH`` a path (to a mounted file), ``secretName``
the name of a Secret and ``auth.username`` a user name. Encoding suffixes are looked
through (``TOKEN_B64`` is a token). A name that says the value is a digest of a
credential (``checksum/secret``) or names a Secret holding it (``existingSecret``,
Bitnami's chart convention) is not one.

The words are those of the field's secret scanners (detect-secrets' keyword plugin,
gitleaks' generic rule): password, passwd, pwd, pw, pass, passphrase, secret, token,
credential(s), creds, auth, authorization, dsn, and ``key`` (``STRIPE_KEY``, ``apiKey``;
not the bare ``key`` of a Kubernetes selector, toleration or ``secretKeyRef``, nor
``topologyKey``).

>>> [credential_name(n) for n in ("MYSQL_PWD", "PGPASSWORD", "--db-password", "STRIPE_KEY")]
[True, True, True, True]
>>> [credential_name(n) for n in ("KEY_FILE_PATH", "secretName", "TOKEN_TTL", "key", "image")]
[False, False, False, False, False]
"""

import re

from kubeopera.collectors.kubernetes.remembered import remembered

_WORD = re.compile(r"[A-Z]?[a-z]+\d*|[A-Z]+\d*(?![a-z])|\d+")
"""Words of a name: camelCase, snake_case, kebab-case, dotted; ``APIKey`` -> API, Key."""

_ENDING_WORDS = ("password", "passwd", "passphrase", "secret", "token", "credential", "apikey")
"""Words that make a credential name at the end of a longer word (``PGPASSWORD``,
``requirepass`` is in ``_WHOLE_WORDS``), also in plural."""

_WHOLE_WORDS = frozenset(
    {"pass", "pwd", "pw", "creds", "cred", "auth", "authorization", "dsn", "requirepass",
     "masterauth"}
)  # fmt: skip
"""Words that make a credential name only as a whole word (``bypass`` is not one):
``authorization`` is the HTTP header, ``requirepass`` and ``masterauth`` Redis's settings."""

_ENCODINGS = frozenset({"b64", "base64", "encoded", "value", "string", "str", "plain"})
"""Last words that say how the value is written, looked through to the word before."""

_CHECKSUMS = frozenset(
    {"checksum", "hash", "digest", "sha", "sha1", "sha256", "sha512", "md5", "fingerprint"}
)
"""Words that say the value is a digest (Helm's ``checksum/secret``), not the secret."""

_NOT_THE_CREDENTIAL = _CHECKSUMS | {"existing"}
"""Words that say the value is not the credential the name speaks of: a digest of it, or
the name of a Secret that holds it (``existingSecret``, Bitnami's chart convention)."""

_SCHEMA_KEYS = frozenset({"topologykey"})
"""Kubernetes API fields named ``...Key`` that hold a label key, not a credential (the
bare ``key`` is never a credential name: selectors, tolerations, ``*KeyRef``)."""

_IDENTIFIERS = _CHECKSUMS | {
    "commit", "revision", "version", "uid", "uuid", "id", "etag", "image", "generation"
}  # fmt: skip
"""Words that say a value is a digest or an identifier: a random-looking value under such
a name (Helm's ``checksum/config``, ``pod-template-hash``, a commit) is not a credential."""


def words(name: str) -> list[str]:
    """The lowercase words of ``name``.

    >>> words("MYSQL_ROOT_PASSWORD"), words("apiKey"), words("checksum/config")
    (['mysql', 'root', 'password'], ['api', 'key'], ['checksum', 'config'])
    """
    return [word.lower() for word in _WORD.findall(name)]


@remembered
def credential_name(name: str) -> bool:
    """Whether a value under ``name`` is a credential, whatever it looks like."""
    said = words(name)
    while len(said) > 1 and said[-1] in _ENCODINGS:
        said.pop()
    if not said or _NOT_THE_CREDENTIAL.intersection(said):
        return False
    last = said[-1]
    if last in ("key", "keys"):  # the bare key of selectors, tolerations and key refs is not
        return len(said) > 1 and "".join(said).lower() not in _SCHEMA_KEYS
    if last in _WHOLE_WORDS:
        return True
    return any(last.endswith(word) or last.endswith(word + "s") for word in _ENDING_WORDS)


@remembered
def digest_name(name: str) -> bool:
    """Whether ``name`` says its value is a digest or an identifier, which look random.

    >>> digest_name("checksum/config"), digest_name("pod-template-hash"), digest_name("TOKEN")
    (True, True, False)
    """
    return bool(_IDENTIFIERS.intersection(words(name)))
