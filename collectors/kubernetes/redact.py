"""Redaction: what looks like a credential never leaves the cluster.

Secrets are never read at all (the collector lists and watches their metadata only).
Everything else is walked once, every string of it (but identities: name, namespace,
uid, owner references), and each credential found is replaced by a marker with a keyed
hash of it, so equal values stay equal and a rotated password still shows as a change:

- a value whose *name* says it is a credential (``credential_names``): env variables
  and every other name/value pair (Helm and Tekton parameters, JSON patches), keys of
  annotations, labels and custom resources, flags;
- a credential by its *form* anywhere (``credential_values``, Yelp's detect-secrets):
  AWS, GitHub, Stripe, Slack, ... keys, JWTs, private keys, ``user:password@`` URLs,
  high-entropy strings;
- credentials on a *command line* (a container's ``command`` and ``args`` together,
  exec probes, ``sh -c`` scripts) and in free text (``password=...``, ``Bearer ...``)
  (``command_line``);
- YAML or JSON held in a string (Helm values, JSON annotations) is parsed and walked
  the same way, and searched as text too.

A credential is replaced where it stands as a word, so the rest of a command line, URL
or Helm values stays readable; where it also shows inside a longer word, or is written
differently (escaped), the whole string is replaced (``_hide``). Whatever the input, the
work and the memory are bounded: long strings, strings holding many credentials, deep
nesting and expanding YAML are hidden whole.

ConfigMap values are all replaced (their files are configuration a person reads in
Git, not in a timeline) and so is ``kubectl.kubernetes.io/last-applied-configuration``,
a whole manifest (a Secret's data included). Fields that only ever hold identities,
addresses, times or image references (``uid``, ``podIP``, ``imageID``, ...) are not
searched, since random-looking ids would pass for high-entropy secrets.

With a per-cluster key the hash is an HMAC: without the key nobody can test guesses
against a marker, which a plain hash of a short password would allow. Without one it is
a plain SHA-256, and the collector says so when it starts.
"""

import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from typing import Any

import yaml

from kubeopera.collectors.kubernetes.command_line import (
    credentials_in_command,
    credentials_in_text,
)
from kubeopera.collectors.kubernetes.credential_names import (
    credential_name,
    digest_name,
    names_a_key,
)
from kubeopera.collectors.kubernetes.credential_values import credentials_in, placeholder
from kubeopera.collectors.kubernetes.remembered import remembered
from kubeopera.collectors.yaml_size import expanded_size

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

_NOT_SEARCHED = frozenset(
    {"uid", "resourceVersion", "image", "imageID", "containerID", "podIP", "hostIP", "ip",
     "podIPs", "hostIPs", "clusterIP", "clusterIPs", "nodeName", "startedAt", "finishedAt"}
)  # fmt: skip
"""Kubernetes fields that hold identities, addresses, times or images, never a
credential (with those whose name ends in ``Time`` or ``Timestamp``)."""

_COMMAND_LINE = ("command", "args")

_PAIR_NAMES = ("name", "key", "parameterkey", "type")
_PAIR_VALUES = frozenset({"value", "default", "val", "parametervalue"})
"""A name/value pair's fields: env variables, Helm and Tekton parameters, Argo Workflows
inputs, CloudFormation parameters, Keycloak credentials (``type: password``)."""

_Loader = getattr(yaml, "CBaseLoader", yaml.BaseLoader)
"""YAML's base loader: every scalar a string (no dates, numbers or keys of other types)."""

_DEEPEST = 64
"""Nesting deeper than this (no real object's) is hidden whole, not walked."""

_LONGEST = 64 * 1024
"""A string longer than this (64 KiB: a file, not a setting) is hidden whole, as a
ConfigMap's files are: searching it would cost more than reading it is worth."""

_MOST_NODES = 100_000
"""YAML held in a string that would expand to more nodes than this (aliases of aliases)
is hidden whole."""

_MOST_CREDENTIALS = 64
"""A string holding more credentials than this is a secrets file: hidden whole."""


@dataclass(frozen=True)
class Redactor:
    key: bytes | None = None  # the cluster's HMAC key; None: plain SHA-256

    def marker(self, value: str) -> str:
        """``<redacted hmac-sha256:...>``: 16 hex digits of the HMAC-SHA-256 of ``value``
        under the key (a plain SHA-256 without one)."""
        return _marker(value, self.key)

    def redact(self, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        """A redacted copy of ``obj`` (a Kubernetes object as JSON) without managedFields."""
        metadata = dict(obj.get("metadata") or {})
        metadata.pop("managedFields", None)
        annotations = metadata.get("annotations") or {}
        metadata["annotations"] = {
            key: self.marker(value) if key == LAST_APPLIED else self._rewrite(value, key, set())
            for key, value in annotations.items()
        }
        if metadata.get("labels"):
            metadata["labels"] = self._rewrite(metadata["labels"], "labels", set())
        if kind == "Secret":  # metadata only; ``data`` is never fetched, dropped if ever present
            return {"apiVersion": obj.get("apiVersion", "v1"), "kind": kind, "metadata": metadata}
        cleaned: dict[str, Any] = {}
        for key, value in obj.items():
            if kind == "ConfigMap" and key in ("data", "binaryData") and isinstance(value, dict):
                cleaned[key] = {k: self.marker(str(v)) for k, v in value.items()}
            elif key != "metadata":
                cleaned[key] = self._rewrite(value, key, set())
        cleaned["metadata"] = metadata
        return cleaned

    def text(self, value: str, name: str = "") -> str:
        """``value`` (named ``name``) with every credential in it replaced by its marker:
        for strings outside objects, such as an Event's message."""
        return str(self._rewrite(value, name, set()))

    def _rewrite(self, node: Any, name: str, found: set[str], depth: int = 0) -> Any:
        """``node`` (named ``name``) with its credentials replaced; they are added to
        ``found``. Nesting deeper than any real object's is hidden whole."""
        if depth > _DEEPEST:
            return self._hide(json.dumps(node, default=str), None, found)
        if isinstance(node, str):
            return self._hide(node, self._credentials(node, name), found)
        if isinstance(node, list):
            return [self._rewrite(item, name, found, depth + 1) for item in node]
        if isinstance(node, dict):
            return self._rewrite_fields(node, name, found, depth)
        if isinstance(node, int | float) and not isinstance(node, bool) and credential_name(name):
            return self._hide(str(node), None, found)  # password: 123456
        return node

    def _rewrite_fields(
        self, node: dict[Any, Any], name: str, found: set[str], depth: int
    ) -> dict[Any, Any]:
        """A mapping's fields; its value fields (``value``, ``default``, ...) under the
        name it gives them (``name``, ``key``, ``type``, a JSON patch's ``path``), or
        else under its own (``password: {value: x}``)."""
        command_line = _command_line(node)
        rewritten: dict[Any, Any] = {}
        for key, value in node.items():
            field = str(key)
            if _not_searched(field, value):
                rewritten[key] = value
            elif field.lower() in _PAIR_VALUES:  # env, Helm and Tekton parameters, JSON patches
                rewritten[key] = self._rewrite(value, _pair_name(node) or name, found, depth + 1)
            elif field in _COMMAND_LINE and command_line and isinstance(value, list):
                rewritten[key] = [self._word(w, field, command_line, found) for w in value]
            else:
                rewritten[key] = self._rewrite(value, field, found, depth + 1)
        return rewritten

    def _word(self, word: Any, name: str, command_line: frozenset[str], found: set[str]) -> Any:
        """A word of a command line, with its own credentials and those the whole
        command line gives it (``S3cret`` after ``-p``) replaced."""
        if not isinstance(word, str):
            return word
        own = self._credentials(word, name)
        given = frozenset(c for c in command_line if c in word)
        return self._hide(word, None if own is None else own | given, found)

    def _credentials(self, value: str, name: str) -> frozenset[str] | None:
        """The credentials in the string ``value`` named ``name``; None: all of it."""
        if len(value) > _LONGEST or (
            credential_name(name) and not placeholder(value) and not names_a_key(name, value)
        ):
            return None
        held = _structured(value)
        if held is _TOO_LARGE:
            return None
        if held is None:
            return _credentials_in_string(value, digest_name(name))
        inner: set[str] = set()
        self._rewrite(held, name, inner)
        # and as text: a key written twice is read once (the last), but shows twice
        return frozenset(inner) | _credentials_in_string(value, digest_name(name))

    def _hide(self, value: str, credentials: frozenset[str] | None, found: set[str]) -> str:
        """``value`` with each of ``credentials`` (None: all of it) replaced by its marker
        where it stands as a word of its own (``:hunter2@``, ``=hunter2``, ``-phunter2``),
        so the rest stays readable. When one of them is found nowhere as a word (written
        differently: escaped), or still shows inside a longer word (``postgres`` in
        ``postgresql``, ``admin`` in ``--admin-port``), which would give it away, the
        whole value is replaced."""
        if credentials is not None and not credentials:
            return value
        if credentials is None or value in credentials or len(credentials) > _MOST_CREDENTIALS:
            found.add(value)
            return self.marker(value)
        found.update(credentials)
        # one inside another (a token's tail found by its entropy) goes with the other
        outermost = frozenset(
            c for c in credentials if not any(c != d and c in d for d in credentials)
        )
        pieces, kept, replaced, last = [], [], set(), 0
        for match in _as_words(outermost).finditer(value):
            kept.append(value[last : match.start()])
            pieces += [kept[-1], self.marker(match.group(0))]
            replaced.add(match.group(0))
            last = match.end()
        kept.append(value[last:])
        if replaced != outermost or any(c in piece for piece in kept for c in outermost):
            return self.marker(value)
        return "".join([*pieces, kept[-1]])


def _make_marker(value: str, key: bytes | None) -> str:
    if key is None:
        return f"<redacted sha256:{hashlib.sha256(value.encode()).hexdigest()[:16]}>"
    keyed = hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:16]
    return f"<redacted hmac-sha256:{keyed}>"


_marker = remembered(_make_marker)


@remembered
def _credentials_in_string(value: str, digest: bool) -> frozenset[str]:
    """Credentials of a plain string by form and in its text (``digest``: the name says
    the value is a digest or an id, so random-looking is no sign)."""
    return credentials_in(value, entropy=not digest) | credentials_in_text(value)


@remembered
def _command_line_of(words: str) -> frozenset[str]:
    """The credentials of a command line whose words are joined by NUL characters."""
    return frozenset(credentials_in_command(words.split("\0")))


def _command_line(node: dict[Any, Any]) -> frozenset[str]:
    """The credentials in a container's (or exec action's) ``command`` and ``args``,
    read as one command line."""
    if "command" not in node and "args" not in node:
        return frozenset()
    lists = [node[key] for key in _COMMAND_LINE if isinstance(node.get(key), list)]
    words = [w for words in lists for w in words if isinstance(w, str)]
    return _command_line_of("\0".join(words)) if words else frozenset()


def _pair_name(node: dict[Any, Any]) -> str | None:
    """The name a mapping gives its value fields, if it gives one."""
    fields = {str(k).lower(): v for k, v in node.items()}
    given = next((fields[k] for k in _PAIR_NAMES if isinstance(fields.get(k), str)), None)
    if given is None and "op" in node and isinstance(node.get("path"), str):
        given = node["path"].rsplit("/", 1)[-1]  # a JSON patch: /spec/password
    return given


def _not_searched(name: str, value: Any) -> bool:
    """Kubernetes fields that only hold identities, addresses, times or images."""
    if not (name in _NOT_SEARCHED or name.endswith(("Time", "Timestamp"))):
        return False
    return isinstance(value, str) or (
        isinstance(value, list) and all(isinstance(v, str) for v in value)
    )


def _as_words(credentials: frozenset[str]) -> re.Pattern[str]:
    """Any of ``credentials`` standing as a word: not inside a longer run of letters,
    digits, ``_``, ``-`` or ``.`` (``admin`` in ``--admin-port``), but perhaps attached to
    a short flag (``-pS3cret``)."""
    longest_first = sorted(credentials, key=len, reverse=True)
    either = "|".join(re.escape(c) for c in longest_first)
    start = r"(?:(?<![\w.-])|(?<=[^\w.-]-[A-Za-z])|(?<=^-[A-Za-z]))"
    return re.compile(rf"{start}(?:{either})(?![\w.-])")


_TOO_LARGE: Any = object()


def _structured(value: str) -> Any:
    """The mapping or list that ``value`` holds as JSON or YAML (Helm values inlined as
    a string, JSON annotations), every scalar a string; None for any other string;
    ``_TOO_LARGE`` for YAML nested deeper than ``_DEEPEST`` or expanding (by aliases) to
    more than ``_MOST_NODES``, which is measured on the parser's events before any of it
    is built (the C loader would overflow its stack on deep nesting)."""
    head = value.lstrip()[:1]
    if not head or (head not in "{[" and "\n" not in value):
        return None
    try:  # JSON is YAML too
        if expanded_size(yaml.parse(value, Loader=_Loader), _DEEPEST, _MOST_NODES) > _MOST_NODES:
            return _TOO_LARGE
        held = yaml.load(value, Loader=_Loader)  # the base loader: strings only
    except yaml.YAMLError:
        return None
    return held if isinstance(held, dict | list) and held else None


UNKEYED = Redactor()
