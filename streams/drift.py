"""Drift: where a live object differs from what it should be, field by field.

Two comparisons, both over the field paths of ``streams.object_diff`` (JSON pointers,
merged lists' items by key):

- ``against`` a baseline: a declared manifest (only the fields the declaration sets are
  compared, and every key of the labels, annotations and data it sets, as Argo CD's
  server-side diff compares only the fields its apply manages; the baseline comes
  normalised by the API server, so defaults and quantities are written as live objects
  write them) or an approved copy of the whole object.
- ``across`` clusters: the same workload in several clusters, every field but those that
  belong to one cluster (uid, times, owner references, a Service's cluster IPs).

Each difference is an ``added`` field (live has one the baseline does not), a
``changed`` one or a ``removed`` one (the baseline's field is gone).

>>> declared = {"spec": {"replicas": 2, "template": {"spec": {"containers": [
...     {"name": "web", "image": "shop:1.4"}]}}}}
>>> live = {"spec": {"replicas": 2, "strategy": {"type": "RollingUpdate"},
...     "template": {"spec": {"containers": [
...     {"name": "web", "image": "shop:1.5", "imagePullPolicy": "IfNotPresent"}]}}}}
>>> [(d.path, d.change, d.expected, d.live) for d in against(declared, live, declared=True)]
[('/spec/template/spec/containers/[name=web]/image', 'changed', '"shop:1.4"', '"shop:1.5"')]
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from kubeopera.models.field_paths import MERGE_KEYS
from kubeopera.streams.object_diff import FieldChange, differences

DriftChange = Literal["added", "changed", "removed"]

_NAMES: dict[str, DriftChange] = {"ADDED": "added", "MODIFIED": "changed", "DELETED": "removed"}

PER_CLUSTER: tuple[str, ...] = (
    "/metadata/uid",
    "/metadata/selfLink",
    "/metadata/ownerReferences",
    "/metadata/finalizers",
    "/spec/clusterIP",
    "/spec/clusterIPs",
    "/spec/volumeName",
)
"""Fields that differ between clusters by nature (times and bookkeeping are left out by
``object_diff.NOISE`` already)."""


WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "CronJob", "ConfigMap", "Service")
"""The kinds compared across clusters unless asked for others (what runs the same in
every cluster; not Nodes, namespaces' bookkeeping or what controllers make)."""

WHOLE: frozenset[str] = frozenset(
    {"labels", "annotations", "data", "binaryData", "nodeSelector", "matchLabels"}
)
"""Mappings of a person's own keys: where a declaration sets one, a key added to it live
is drift too (a label someone added), not a default the API server filled in."""


@dataclass(frozen=True)
class Drift:
    """One drifted field: the baseline's value and the live one, as JSON (None where the
    field is absent), and the category of ``object_diff.category``."""

    path: str
    change: DriftChange
    expected: str | None
    live: str | None
    category: str

    def as_dict(self) -> dict[str, str | None]:
        return {
            "path": self.path,
            "change": self.change,
            "expected": self.expected,
            "live": self.live,
            "category": self.category,
        }


def against(
    baseline: Mapping[str, Any],
    live: Mapping[str, Any],
    declared: bool,
    ignored: Iterable[str] = (),
) -> list[Drift]:
    """The drift of ``live`` from ``baseline``, in path order. ``declared``: compare only
    what the baseline sets (a list merged by key keeps the live items the baseline does
    not name, as added); otherwise the whole object. ``ignored``: JSON pointers left out
    (``*`` is any one segment)."""
    compared = _shaped("", live, baseline) if declared else live
    return [_drift(c) for c in differences(dict(baseline), dict(compared), ignored)]


def across(
    objects: Mapping[str, Mapping[str, Any]], ignored: Iterable[str] = ()
) -> dict[str, dict[str, str | None]]:
    """Where the same workload differs between clusters: path -> cluster -> value (JSON,
    None where absent), for every path where some cluster differs from the first (in
    ``objects``' order).

    >>> a = {"spec": {"replicas": 3}, "metadata": {"uid": "1"}}
    >>> b = {"spec": {"replicas": 5}, "metadata": {"uid": "2"}}
    >>> across({"prod": a, "staging": b, "dev": a})
    {'/spec/replicas': {'prod': '3', 'staging': '5', 'dev': '3'}}
    """
    clusters = list(objects)
    if not clusters:
        return {}
    first, rules = objects[clusters[0]], (*PER_CLUSTER, *ignored)
    found: dict[str, dict[str, str | None]] = {}
    for cluster in clusters[1:]:
        for change in differences(dict(first), dict(objects[cluster]), rules):
            values = found.setdefault(change.path, {clusters[0]: change.old})
            values[cluster] = change.new
    return {
        path: {c: values.get(c, values[clusters[0]]) for c in clusters}
        for path, values in sorted(found.items())
    }


def _drift(change: FieldChange) -> Drift:
    return Drift(change.path, _NAMES[change.change], change.old, change.new, change.category)


def _shaped(field: str, live: Any, declared: Any) -> Any:
    """``live`` cut to the shape of ``declared``: a mapping keeps the keys the
    declaration sets (all of them in a ``WHOLE`` mapping); a list merged by key keeps
    every live item, each cut to its declared item's shape (an item the declaration
    does not name is kept whole); any other value is compared whole."""
    if live == declared:  # most of an object: nothing to cut
        return live
    if isinstance(live, dict) and isinstance(declared, dict) and field not in WHOLE:
        return {k: _shaped(k, live[k], declared[k]) for k in declared if k in live}
    key = _merge_key(field, live, declared)
    if key is not None:
        named = {str(item[key]): item for item in declared}
        return [
            _shaped("", item, named[str(item[key])]) if str(item[key]) in named else item
            for item in live
        ]
    return live


def _merge_key(field: str, live: Any, declared: Any) -> str | None:
    if field not in MERGE_KEYS or not (isinstance(live, list) and isinstance(declared, list)):
        return None
    items = [*live, *declared]
    return next(
        (k for k in MERGE_KEYS[field] if all(isinstance(i, dict) and k in i for i in items)),
        None,
    )
