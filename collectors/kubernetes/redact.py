"""Redaction: what looks like a credential never leaves the cluster.

Secrets are never read at all (the collector lists and watches their metadata only).
Everything else is walked once, every string of it, and each credential found is
replaced by a marker with a keyed hash of it, so equal values stay equal and a rotated
password still shows as a change:

- a value whose *name* says it is a credential (``credential_names``): env variables
  and other ``name``/``value`` pairs (Helm parameters of an Argo CD Application), keys
  of annotations, labels and custom resources, flags;
- a credential by its *form* anywhere (``credential_values``, Yelp's detect-secrets):
  AWS, GitHub, Stripe, Slack, ... keys, JWTs, private keys, ``user:password@`` URLs,
  high-entropy strings;
- credentials on a *command line* (a container's ``command`` and ``args`` together,
  exec probes, ``sh -c`` scripts) and in free text (``password=...``, ``Bearer ...``)
  (``command_line``);
- YAML or JSON held in a string (Helm values, JSON annotations) is parsed and walked
  the same way; its credentials are replaced in the text, so the rest stays readable.

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
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import yaml

from kubeopera.collectors.kubernetes.command_line import (
    credentials_in_command,
    credentials_in_text,
)
from kubeopera.collectors.kubernetes.credential_names import credential_name, digest_name
from kubeopera.collectors.kubernetes.credential_values import credentials_in, placeholder

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

_NOT_SEARCHED = frozenset(
    {"uid", "resourceVersion", "image", "imageID", "containerID", "podIP", "hostIP", "ip",
     "podIPs", "hostIPs", "clusterIP", "clusterIPs", "nodeName", "startedAt", "finishedAt"}
)  # fmt: skip
"""Kubernetes fields that hold identities, addresses, times or images, never a
credential (with those whose name ends in ``Time`` or ``Timestamp``)."""

_COMMAND_LINE = ("command", "args")

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Redactor:
    key: bytes | None = None  # the cluster's HMAC key; None: plain SHA-256

    def marker(self, value: str) -> str:
        return _marker(self.key, value) if len(value) <= _SHORT else _make_marker(self.key, value)

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

    def _rewrite(self, node: Any, name: str, found: set[str]) -> Any:
        """``node`` (named ``name``) with its credentials replaced; they are added to
        ``found``."""
        if isinstance(node, str):
            return self._hide(node, self._credentials(node, name), found)
        if isinstance(node, list):
            return [self._rewrite(item, name, found) for item in node]
        if isinstance(node, dict):
            return self._rewrite_fields(node, found)
        if isinstance(node, int | float) and not isinstance(node, bool) and credential_name(name):
            return self._hide(str(node), frozenset({str(node)}), found)  # password: 123456
        return node

    def _rewrite_fields(self, node: dict[str, Any], found: set[str]) -> dict[str, Any]:
        pair = node.get("name") if isinstance(node.get("value"), str) else None
        command_line = _command_line(node)
        rewritten: dict[str, Any] = {}
        for key, value in node.items():
            if key in _NOT_SEARCHED or key.endswith(("Time", "Timestamp")):
                rewritten[key] = value
            elif key == "value" and isinstance(pair, str):  # env, Helm parameters, ...
                rewritten[key] = self._rewrite(value, pair, found)
            elif key in _COMMAND_LINE and command_line and isinstance(value, list):
                rewritten[key] = [
                    self._hide(s, self._credentials(s, key) | _within(s, command_line), found)
                    for s in value
                ]
            else:
                rewritten[key] = self._rewrite(value, key, found)
        return rewritten

    def _credentials(self, value: str, name: str) -> frozenset[str]:
        """The credentials in the string ``value`` named ``name``."""
        if credential_name(name) and not placeholder(value):
            return frozenset({value})
        held = _structured(value)
        if held is None:
            return _credentials_in_string(value, name)
        inner: set[str] = set()
        self._rewrite(held, name, inner)
        # a credential written differently in the text (escaped) hides the whole text
        return frozenset(inner) if all(c in value for c in inner) else frozenset({value})

    def _hide(self, value: str, credentials: frozenset[str], found: set[str]) -> str:
        if not credentials:
            return value
        found.update(credentials)
        if value in credentials:
            return self.marker(value)
        longest_first = sorted(credentials, key=len, reverse=True)
        pattern = re.compile("|".join(re.escape(c) for c in longest_first))
        return pattern.sub(lambda match: self.marker(match.group(0)), value)


_SHORT = 512
"""The replicas of a workload repeat their strings: what is found in one of at most
this many characters is remembered (16,384 of them, some 8 MiB at most)."""


def _make_marker(key: bytes | None, value: str) -> str:
    if key is None:
        return f"<redacted sha256:{hashlib.sha256(value.encode()).hexdigest()[:16]}>"
    keyed = hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:16]
    return f"<redacted hmac-sha256:{keyed}>"


_marker = lru_cache(maxsize=4096)(_make_marker)


def _credentials_in_string(value: str, name: str) -> frozenset[str]:
    """Credentials of a plain string, by form and in its text."""
    return _cached_search(value, name) if len(value) <= _SHORT else _search(value, name)


@lru_cache(maxsize=16384)
def _cached_search(value: str, name: str) -> frozenset[str]:
    return _search(value, name)


def _search(value: str, name: str) -> frozenset[str]:
    return credentials_in(value, entropy=not digest_name(name)) | credentials_in_text(value)


def _command_line(node: dict[str, Any]) -> frozenset[str]:
    """The credentials in a container's (or exec action's) ``command`` and ``args``,
    read as one command line."""
    words = tuple(w for key in _COMMAND_LINE for w in node.get(key) or () if isinstance(w, str))
    if sum(map(len, words)) <= _SHORT:
        return _cached_command_line(words)
    return frozenset(credentials_in_command(words))


@lru_cache(maxsize=16384)
def _cached_command_line(words: tuple[str, ...]) -> frozenset[str]:
    return frozenset(credentials_in_command(words))


def _within(value: str, credentials: frozenset[str]) -> frozenset[str]:
    return frozenset(c for c in credentials if c in value)


def _structured(value: str) -> dict[str, Any] | list[Any] | None:
    """The mapping or list that ``value`` holds as JSON or YAML (Helm values inlined as
    a string, JSON annotations), or None for any other string."""
    head = value.lstrip()[:1]
    if not head or (head not in "{[" and "\n" not in value):
        return None
    try:  # JSON is YAML too
        held = yaml.load(value, Loader=_Loader)  # a safe loader
    except yaml.YAMLError:
        return None
    return held if isinstance(held, dict | list) and held else None


UNKEYED = Redactor()
