"""Field-level differences between two versions of a Kubernetes object, as a person reads
them in a change timeline or a drift finding.

Each difference is one changed field: its path as a JSON pointer (RFC 6901) in which the
items of a list Kubernetes merges by a key are named by that key, as strategic merge
patch and Kustomize name them (``/spec/template/spec/containers/[name=app]/image``, not
``.../containers/0/image``, so a reordered list is no change and a change names the
container); other lists are values of their own, compared whole (``args``). Noise to a
person is left out: ``apiVersion``, ``kind``, ``status``, ``metadata.resourceVersion``,
``generation``,
``managedFields``, the redacted ``last-applied-configuration`` and the
``deployment.kubernetes.io/revision`` annotation, and whatever ``ignored`` adds
(``/spec/replicas`` of a workload an HPA scales). Values are JSON; a long one is cut and
ends with its hash, so a change still shows.

>>> old = {"spec": {"replicas": 2, "template": {"spec": {"containers": [
...     {"name": "app", "image": "shop:1.4", "args": ["--port=80"]}]}}}}
>>> new = {"spec": {"replicas": 3, "template": {"spec": {"containers": [
...     {"name": "app", "image": "shop:1.5", "args": ["--port=80"]}]}}}}
>>> for change in differences(old, new):
...     print(change.path, change.change, change.old, change.new, change.category)
/spec/replicas MODIFIED 2 3 replicas
/spec/template/spec/containers/[name=app]/image MODIFIED "shop:1.4" "shop:1.5" image
"""

import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from kubeopera.models.field_paths import MERGE_KEYS, escaped, item

Change = Literal["ADDED", "MODIFIED", "DELETED"]


@dataclass(frozen=True)
class FieldChange:
    """One changed field: ``old`` and ``new`` as JSON (None where the field is absent)."""

    path: str
    change: Change
    old: str | None
    new: str | None
    category: str


NOISE: tuple[str, ...] = (
    "/apiVersion",  # the object's identity, and which version the API served it in
    "/kind",
    "/status",
    "/metadata/resourceVersion",
    "/metadata/generation",
    "/metadata/managedFields",
    "/metadata/creationTimestamp",
    "/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration",
    "/metadata/annotations/deployment.kubernetes.io~1revision",
)
"""Paths (and what is under them) that change without anyone changing the object."""

LONGEST = 256
"""A value longer than this (as JSON) is cut, and ends with its SHA-256."""

_CATEGORIES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (category, re.compile(pattern))
    for category, pattern in (
        ("image", r"/(?:image|imagePullPolicy)$"),
        ("replicas", r"^/spec/replicas$"),
        ("resources", r"/resources(?:/|$)"),
        ("config reference", r"/(?:envFrom|configMap|configMapRef|configMapKeyRef|secret"
         r"|secretRef|secretKeyRef|projected)(?:/|$)"),
        ("env", r"/env(?:/|$)"),
        ("probes", r"/(?:livenessProbe|readinessProbe|startupProbe)(?:/|$)"),
        ("scheduling", r"/(?:nodeSelector|affinity|tolerations|topologySpreadConstraints"
         r"|priorityClassName|nodeName|schedulerName|runtimeClassName)(?:/|$)"),
        ("labels/annotations", r"/metadata/(?:labels|annotations)(?:/|$)"),
        ("RBAC rules", r"^/(?:rules|subjects|roleRef|aggregationRule)(?:/|$)"),
    )
)  # fmt: skip
"""The first that matches a path names its category; none: ``other``."""

CATEGORIES: tuple[str, ...] = (*(name for name, _ in _CATEGORIES), "other")


def differences(
    old: dict[str, Any] | None, new: dict[str, Any] | None, ignored: Iterable[str] = ()
) -> list[FieldChange]:
    """The changed fields from ``old`` to ``new`` (None: the object did not exist, or
    is gone), in path order. ``ignored`` adds JSON pointers to leave out with what is
    under them; a ``*`` segment stands for any one segment
    (``/spec/template/spec/containers/*/image``)."""
    rules = [pointer_pattern(pointer) for pointer in (*NOISE, *ignored)]
    found = [
        change
        for change in _walk("", old or {}, new or {})  # created or gone: field by field
        if not any(rule.match(change.path) for rule in rules)
    ]
    return sorted(found, key=lambda change: change.path)


def comparable(obj: dict[str, Any]) -> dict[str, Any]:
    """The object without what changes on its own (its status, bookkeeping): what is
    compared between versions, with a baseline, or across clusters."""
    metadata = {
        k: v
        for k, v in (obj.get("metadata") or {}).items()
        if k not in ("managedFields", "resourceVersion", "generation")
    }
    return {**{k: v for k, v in obj.items() if k != "status"}, "metadata": metadata}


def _walk(path: str, old: Any, new: Any) -> Iterator[FieldChange]:
    if old == new:
        return
    if isinstance(old, dict) and isinstance(new, dict):
        for key in old.keys() | new.keys():
            before, after = old.get(key), new.get(key)
            if before != after:
                yield from _walk(f"{path}/{escaped(key)}", before, after)
        return
    key = _merge_key(path, old, new)
    if key is not None:
        before, after = _keyed(old or [], key), _keyed(new or [], key)
        for name in before.keys() | after.keys():
            if before.get(name) != after.get(name):
                yield from _walk(f"{path}/{item(key, name)}", before.get(name), after.get(name))
        return
    change: Change = "ADDED" if old is None else "DELETED" if new is None else "MODIFIED"
    yield FieldChange(path, change, _shown(old), _shown(new), category(path))


def category(path: str) -> str:
    """What kind of change a field's path is, for a person filtering the timeline.

    >>> category("/spec/template/spec/containers/[name=app]/resources/limits/memory")
    'resources'
    >>> category("/spec/template/spec/containers/[name=app]/env/[name=DB_HOST]/value")
    'env'
    """
    return next((name for name, pattern in _CATEGORIES if pattern.search(path)), "other")


def _merge_key(path: str, old: Any, new: Any) -> str | None:
    """The key the list at ``path`` is merged by, if both sides are lists of mappings
    that all have it, once each."""
    field = path.rsplit("/", 1)[-1]
    lists = [side for side in (old, new) if side is not None]
    if field not in MERGE_KEYS or not all(isinstance(side, list) for side in lists):
        return None
    items = [item for side in lists for item in side]
    if not all(isinstance(item, dict) for item in items):
        return None
    for key in MERGE_KEYS[field]:
        everywhere = all(key in item for item in items)
        if everywhere and all(len({str(i[key]) for i in side}) == len(side) for side in lists):
            return key
    return None


def _keyed(items: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    return {str(item[key]): item for item in items}


def _shown(value: Any) -> str | None:
    if value is None:
        return None
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    if len(text) <= LONGEST:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    return f"{text[: LONGEST - 32]}...(sha256:{digest})"


@cache
def pointer_pattern(pointer: str) -> re.Pattern[str]:
    """A pattern for ``pointer`` and everything under it; ``*`` is any one segment.

    >>> bool(pointer_pattern("/spec/*/image").match("/spec/[name=app]/image"))
    True
    """
    segments = [re.escape(s) if s != "*" else "[^/]+" for s in pointer.split("/")]
    return re.compile("/".join(segments) + "(?:/|$)")
