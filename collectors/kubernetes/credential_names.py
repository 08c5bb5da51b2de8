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
credential(s), creds, auth, authorization, dsn, bearer, pat, psk, pepper, sig, written
together too (``BINDPW``, ``storepass``), and ``key`` (``STRIPE_KEY``, ``apiKey``; not
the bare ``key`` of a Kubernetes selector, toleration or ``secretKeyRef``, nor
``topologyKey``, ``ROUTING_KEY`` or ``PUBLIC_KEY``). Words after it that say which one
are looked through (``DB_PASSWORD_OLD``, ``API_TOKEN_PROD``, ``PASSWORD_2``).

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
``dbpassword``); password, passwd, secret and credential in plural too (``tokens`` are
counted: ``MAX_TOTAL_TOKENS``)."""

_PLURALS = ("passwords", "passwds", "secrets", "credentials")

_WHOLE_WORDS = frozenset(
    {"pass", "pwd", "pw", "creds", "cred", "auth", "authorization", "dsn", "bearer", "pat",
     "psk", "pepper", "sig"}
)  # fmt: skip
"""Words that make a credential name only as a whole word (``bypass`` is not one):
``authorization`` is the HTTP header, ``pat`` a personal access token (``GITHUB_PAT``),
``psk`` a pre-shared key, ``sig`` an Azure SAS signature."""

_RUN_TOGETHER = re.compile(
    r"(?:bind|root|admin|db|pg|store|key|keystore|trust|truststore|require|sa|master|user)"
    r"(?:pass|pw|pwd|passwd)"
    r"|(?:auth|access|secret|private|api|master|signing|encryption|license|client)key"
    r"|masterauth"
)
"""Credential names written as one word: ``LDAP_BINDPW``, keytool's ``-storepass``,
Redis's ``requirepass`` and ``masterauth``, ``TS_AUTHKEY``."""

_QUALIFIERS = frozenset(
    {"new", "old", "prev", "previous", "next", "current", "primary", "secondary", "backup",
     "ro", "rw", "readonly", "readwrite", "prod", "production", "dev", "development",
     "staging", "stage", "test", "qa", "live", "sandbox", "local", "default", "base",
     "admin", "root", "user", "app", "replication", "master"}
)  # fmt: skip
"""Last words that say which credential (``DB_PASSWORD_OLD``, ``API_TOKEN_PROD``,
``SECRET_KEY_BASE``, ``POSTGRES_PASSWORD_ADMIN``), looked through like numbers and
two-letter codes (``API_KEY_US``)."""

_ENCODINGS = frozenset(
    {"b64", "base64", "encoded", "value", "string", "str", "plain", "encrypted", "hashed"}
)
"""Last words that say how the value is written, looked through to the word before."""

_NOT_SECRET_KEYS = frozenset(
    {"topology", "routing", "sort", "partition", "primary", "foreign", "public",
     "publishable", "site", "s3", "object", "cache", "idempotency", "shard", "sharding",
     "label", "group", "kms", "dedup", "lookup", "index", "map", "field", "row", "column",
     "unique", "match", "selector", "node", "annotation"}
)  # fmt: skip
"""What a ``...Key`` is when it is no credential: a label key (``topologyKey``), a sort
or routing key, a public key, an S3 object's key, a KMS key's ARN."""

_CHECKSUMS = frozenset(
    {"checksum", "hash", "digest", "sha", "sha1", "sha256", "sha512", "md5", "fingerprint"}
)
"""Words that say the value is a digest (Helm's ``checksum/secret``), not the secret."""

_NOT_THE_CREDENTIAL = _CHECKSUMS | {"existing"}
"""Words that say the value is not the credential the name speaks of: a digest of it, or
the name of a Secret that holds it (``existingSecret``, Bitnami's chart convention)."""

_IDENTIFIERS = _CHECKSUMS | {
    "commit", "revision", "version", "uid", "uuid", "id", "etag", "image", "generation",
    "public", "publishable", "site", "pub", "ca", "cert", "certificate", "crt", "bundle",
    "known",
}  # fmt: skip
"""Words that say a value is a digest, an identifier or public material: a random-looking
value under such a name (Helm's ``checksum/config``, ``pod-template-hash``, a commit, a
webhook's ``caBundle``, a ``PUBLIC_KEY``, ``knownHosts``) is not a credential."""


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
    while len(said) > 1 and (
        said[-1] in _ENCODINGS or said[-1] in _QUALIFIERS or said[-1].isdigit()
        or (len(said[-1]) == 2 and said[-1] not in _WHOLE_WORDS and said[-1] != "id")
    ):  # fmt: skip
        said.pop()
    if not said or _NOT_THE_CREDENTIAL.intersection(said):
        return False
    last, before = said[-1].rstrip("0123456789") or said[-1], said[-2] if len(said) > 1 else ""
    if last == "key":  # not the bare key of selectors, tolerations and key refs
        return bool(before) and before not in _NOT_SECRET_KEYS
    if (last == "id" and before == "secret") or (
        last in ("header", "headers") and before in ("auth", "authorization")
    ):  # Vault AppRole's secret_id; AUTH_HEADER
        return True
    if last in _WHOLE_WORDS or _RUN_TOGETHER.fullmatch(last):
        return True
    return last.endswith(_ENDING_WORDS) or last.endswith(_PLURALS)


_KEY_NAME = re.compile(r"[A-Za-z][A-Za-z_.-]*")


def names_a_key(name: str, value: str) -> bool:
    """Whether ``value``, under a ``...Key`` name, is the name of the key that holds a
    credential in a Secret (ExternalSecret's ``secretKey: password``, Bitnami's
    ``adminPasswordKey: postgres-password``, Tekton's ``tokenKey: token``), not one.

    >>> names_a_key("secretKey", "password"), names_a_key("SECRET_KEY", "x9-Kq2-z7")
    (True, False)
    """
    said = words(name)
    return (
        bool(said)
        and said[-1] == "key"
        and bool(_KEY_NAME.fullmatch(value))
        and (credential_name(value))
    )


@remembered
def digest_name(name: str) -> bool:
    """Whether ``name`` says its value is a digest or an identifier, which look random.

    >>> digest_name("checksum/config"), digest_name("pod-template-hash"), digest_name("TOKEN")
    (True, True, False)
    """
    return bool(_IDENTIFIERS.intersection(words(name)))
