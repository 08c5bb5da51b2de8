"""Credentials given on a command line or written into free text.

Containers pass credentials as arguments (``--db-password=...``, ``--token ...``),
shell scripts in ``sh -c`` export them or give them to a client (``mysql -uroot -p...``),
connection strings and query strings carry ``password=...``, and messages quote
``Authorization: Bearer ...``. This finds the credential in each, by the name it is
given under (``credential_names``), or by the client's own flag where the name says
nothing (``-p`` of the MySQL clients, ``-a`` of ``redis-cli``, the ``user:password`` of
``curl -u``), SQL's ``PASSWORD '...'``, XML's ``<password>``, HTTP Basic credentials.
Values that refer to another (``$(DB_PASSWORD)``, Kubernetes' expansion of an env
variable; ``${VAR}``, ``$VAR``, ``$(cat /run/pw)``) are not credentials. Shell words are
split by a regular expression, linear in the text (shlex builds each word a character at
a time: minutes for a megabyte).

>>> sorted(credentials_in_command(["mysql", "-uroot", "-pS3cret!", "shop"]))
['S3cret!']
>>> sorted(credentials_in_command(["sh", "-c", "PGPASSWORD=pw1 psql --token $(TOKEN) -h db"]))
['pw1']
>>> sorted(credentials_in_text("GET /v1/items?api_key=k3y-123&limit=5 failed"))
['k3y-123']
"""

import base64
import posixpath
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from kubeopera.collectors.kubernetes.credential_names import credential_name
from kubeopera.collectors.kubernetes.credential_values import placeholder

_ASSIGNMENT = re.compile(
    r"""(?<![\w.\-])(?P<name>[A-Za-z_\-][\w.\-]*)["']?[ \t]*(?P<sep>=(?![=~])|:(?!//|=))[ \t]*"""
    r"""(?:(?i:bearer|basic|token)[ \t]+)?(?P<value>"[^"\n]*"|'[^'\n]*'|[^\s,;&"'`<>]+)"""
)
"""``name=value``, ``name: value``, ``"name": "value"``: in scripts, config files,
connection and query strings, messages, whole flags (``-Dspring.datasource.password=``);
``Authorization: Bearer value`` too. Not ``==``, ``=~`` (comparisons) nor a URL's
``scheme://``. The name is the whole run of word characters, dots and dashes before the
sign, so each run is tried once."""

_PROSE = re.compile(r"[a-z]+")
"""A ``name: word`` value in lowercase letters only is prose (``failed to fetch token:
serviceaccounts "default" not found``), not a credential, unless quoted."""

_AUTHORIZATION = re.compile(
    r"\b(?i:bearer|basic)\s+([A-Za-z0-9._~+/=-]*[0-9+/=_.~-][A-Za-z0-9._~+/=-]*)"
)
"""HTTP credentials (RFC 7235: an auth-scheme, then a token68); a token with no digit
or symbol is a word (``basic authentication``), not a credential."""

_BASIC = re.compile(r"\b(?i:basic)\s+([A-Za-z0-9+/]{8,}={0,2})(?![\w+/=])")


def _user_password(token: str) -> bool:
    """Whether ``token`` is base64 of ``user:password`` (HTTP Basic credentials)."""
    try:
        decoded = base64.b64decode(token, validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return False
    return ":" in decoded and decoded.isprintable()


_SQL_PASSWORD = re.compile(r"(?i)\b(?:password|identified\s+by)\s+'([^']*)'")
"""SQL's ``ALTER USER app PASSWORD 'x'`` and ``CREATE USER ... IDENTIFIED BY 'x'``."""

_MARKUP = re.compile(r"<([\w.-]+)>([^<>\s]+)</\1>")
"""``<password>x</password>`` (XML configuration)."""

_FLAG_NAME = re.compile(r"--[A-Za-z][\w.-]*$|-[a-z][a-z0-9]*(?:[-_.][a-z0-9]+)*$")
"""A flag that is a name: ``--dbPassword``, ``-password``, not ``-pS3cret`` (short
flags with their value attached)."""

_BARE_NAME = re.compile(r"[A-Za-z][\w.-]*")

_SET_BY_NAME = frozenset({"redis-cli", "aws", "npm", "yarn", "pnpm", "git", "gcloud", "az"})
"""Clients that take a setting as two words, its name then its value (``redis-cli CONFIG
SET requirepass x``, ``aws configure set aws_secret_access_key x``); elsewhere a
credential's name followed by a word is prose (``token requested for ...``)."""

_SEPARATORS = frozenset({";", "&&", "||", "|", "&", ";;"})
_PREFIXES = frozenset({"exec", "env", "sudo", "nohup", "command", "time", "export"})
"""Words before a program (or an assignment) that do not name it."""


@dataclass(frozen=True)
class _Client:
    """A client's own flags for a credential, which no name rule would recognise."""

    flags: tuple[str, ...]
    attached: bool = False  # given attached to a short flag: -pSECRET
    separate: bool = False  # given as the next word: -a SECRET
    user_password: str = ""  # given as user:password (the separator)

    def credential(self, flag: str, given: str) -> str | None:
        """What ``flag`` (``given`` after its ``=`` or as the next word) gives, or None
        when it is not one of the client's credential flags."""
        name, equals, _ = flag.partition("=")
        for option in self.flags:
            if name == option:
                credential = given if equals or self.separate else ""
            elif self.attached and flag.startswith(option) and not option.startswith("--"):
                credential = flag[len(option) :]
            else:
                continue
            if self.user_password:
                return credential.partition(self.user_password)[2]
            return credential
        return None


_CLIENTS = {
    # mysql, mysqldump, mysqladmin, ...: -pSECRET; -p alone prompts
    "mysql": _Client(("-p",), attached=True),
    "mariadb": _Client(("-p",), attached=True),
    "redis-cli": _Client(("-a",), separate=True),
    "mongo": _Client(("-p",), separate=True),  # mongo, mongosh, mongodump, ...
    "sshpass": _Client(("-p",), attached=True, separate=True),
    "az": _Client(("-p",), separate=True),  # az login -u user -p secret
    "ldap": _Client(("-w",), separate=True),  # ldapsearch, ldapadd, ...
    "mosquitto": _Client(("-P",), separate=True),
    "sqlcmd": _Client(("-P",), separate=True),
    "curl": _Client(("-u", "--user", "-U", "--proxy-user"), True, True, user_password=":"),
    "smbclient": _Client(("-U", "--user"), True, True, user_password="%"),
}
"""By the start of the program's name."""


def credentials_in_text(text: str) -> set[str]:
    """The credentials in free text (a script, a config file, a message)."""
    return {found for found in _text(text) if not placeholder(found, shell=True)}


def credentials_in_command(tokens: Sequence[str]) -> set[str]:
    """The credentials in a command line (a container's ``command`` and ``args``
    together, an exec probe's ``command``), scripts given to a shell included."""
    return {found for found in _command(tokens) if not placeholder(found, shell=True)}


def _text(text: str) -> Iterator[str]:
    for match in _ASSIGNMENT.finditer(text):
        value = match["value"]
        prose = match["sep"] == ":" and _PROSE.fullmatch(value)
        if credential_name(match["name"]) and not prose:
            yield value.strip("\"'")
    yield from _AUTHORIZATION.findall(text)
    yield from (token for token in _BASIC.findall(text) if _user_password(token))
    yield from _SQL_PASSWORD.findall(text)
    yield from (value for name, value in _MARKUP.findall(text) if credential_name(name))
    for line in text.splitlines():
        if " " in line or "\t" in line:
            yield from _command(_tokens(line))


def _command(tokens: Sequence[str]) -> Iterator[str]:
    program = ""
    for index, token in enumerate(tokens):
        following = tokens[index + 1] if index + 1 < len(tokens) else ""
        if following in _SEPARATORS or following[:1] == "-":
            following = ""
        if token in _SEPARATORS:
            program = ""
        elif token.startswith("-"):  # its value may be quoted, spaces and all
            yield from _flag(program, token, following)
        elif " " in token or "\n" in token or "\t" in token:
            yield from _text(token)
        elif "=" in token:
            yield from _assigned(token)
        elif program in _SET_BY_NAME and _BARE_NAME.fullmatch(token) and credential_name(token):
            yield following  # redis-cli CONFIG SET requirepass x; aws configure set ...
        elif (not program and token not in _PREFIXES) or _client(token):
            program = posixpath.basename(token)  # a client named mid-text starts its command


def _assigned(word: str) -> Iterator[str]:
    """``NAME=value`` (``--from-literal=password=x`` gives ``password=x``)."""
    name, _, value = word.partition("=")
    if not _BARE_NAME.fullmatch(name) or value[:1] in ("=", "~"):  # not ==, =~, f(x)=
        return
    if credential_name(name):
        yield value
    elif "=" in value:
        yield from _assigned(value)


def _flag(program: str, flag: str, following: str) -> Iterator[str]:
    """The credential a flag gives, attached (``--x=v``, ``-pV``) or as the next word."""
    name, equals, value = flag.partition("=")
    given = value if equals else following
    client = _client(program)
    credential = client.credential(flag, given) if client else None
    if credential is not None:
        yield credential
    elif (equals or _FLAG_NAME.match(name)) and credential_name(name):
        yield given
    elif equals:
        yield from _assigned(value)


def _client(program: str) -> _Client | None:
    name = posixpath.basename(program)
    return next((c for start, c in _CLIENTS.items() if name.startswith(start)), None)


_SHELL_WORD = re.compile(r"""(?:"(?:[^"\\]|\\.)*"|'[^']*'|\\.|[^\s"'\\;&|])+|&&|\|\||;;|[;&|]""")
"""A shell word (quoted parts included) or an operator. shlex would do, but it builds
each word a character at a time: minutes for a megabyte-long one."""

_QUOTED = re.compile(r"""'([^']*)'|"((?:[^"\\]|\\.)*)"|\\(.)""")


def _tokens(line: str) -> list[str]:
    """Shell words (unquoted) and operators of ``line``, without the punctuation of prose
    after them (``-pS3cret:`` in a message). An unbalanced quote is left out."""
    words = (_QUOTED.sub(_unquoted, word) for word in _SHELL_WORD.findall(line))
    return [w if w in _SEPARATORS else w.rstrip(",:") for w in words]


def _unquoted(quoted: re.Match[str]) -> str:
    return next((part for part in quoted.groups() if part is not None), "")
