"""The pod inventory: what cost allocation must know of each container, over time.

It is the processors' state from the ``objects`` stream: every version of every pod
(node, phase, requests, controller, labels) and of every namespace's labels, each from
the time the cluster observed it (``observed_at``). A scrape is costed with the version
valid at its time, so how the input was batched never changes which requests it is
charged. Versions that no admissible scrape can reach any more are pruned
(``forget_before``), so memory is bounded by the live pods and their recent changes.
"""

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from kubeopera.models import ChangeType, ContainerResources, ObjectChange
from kubeopera.streams.frames import LABEL_TYPE, TIME, map_series
from kubeopera.streams.timeline import Timeline, as_of, prune, record

BEGINNING = datetime(1, 1, 1, tzinfo=UTC)
END = datetime(9999, 12, 31, tzinfo=UTC)

VERSION_SCHEMA = pl.Schema(
    {
        "cluster": pl.String(),
        "pod_uid": pl.String(),
        "container": pl.String(),
        "valid_from": TIME,
        "valid_to": TIME,
        "sample_from": TIME,
        "node": pl.String(),
        "running": pl.Boolean(),
        "namespace": pl.String(),
        "pod": pl.String(),
        "cpu_request_cores": pl.Float64(),
        "memory_request_bytes": pl.Float64(),
        "gpu_request": pl.Float64(),
        "controller_kind": pl.String(),
        "controller_name": pl.String(),
        "team": pl.String(),
        "labels": LABEL_TYPE,
        "annotations": LABEL_TYPE,
    }
)
"""One row per container and pod version, valid over [valid_from, valid_to).

``sample_from`` is ``valid_from`` except for a pod's first known version, which also
prices the samples that precede it (a scrape may list a pod a moment before the watch
reports it): BEGINNING there."""


@dataclass(frozen=True, slots=True)
class _Pod:
    """One version of a pod: what the costs need of it; the manifest itself is not kept."""

    namespace: str
    name: str
    labels: dict[str, str]
    annotations: dict[str, str]
    controller_kind: str
    controller_name: str
    node: str
    running: bool
    containers: list[ContainerResources]
    deleted: bool = False

    @classmethod
    def of(cls, change: ObjectChange) -> "_Pod":
        controller = change.controller
        summary = change.pod
        return cls(
            namespace=change.namespace,
            name=change.name,
            labels=change.labels,
            annotations=change.annotations,
            controller_kind=controller.kind if controller else "",
            controller_name=controller.name if controller else "",
            node=(summary.node or "") if summary else "",
            running=summary is not None and summary.phase == "Running" and bool(summary.node),
            containers=summary.containers if summary else [],
        )


LIFE_KEPT = timedelta(days=7)
"""How long past the horizon a deleted pod's life (``Inventory.workloads``) is kept."""


class Inventory:
    """Every pod's versions and every namespace's labels per cluster, with a frame view
    (``versions``) rebuilt incrementally: only pods changed since the last view are."""

    def __init__(self, team_label: str = "team") -> None:
        self.team_label = team_label
        self._pods: dict[tuple[str, str], Timeline[_Pod]] = {}
        # cluster -> uid -> namespace, controller kind and name ("" without one), created,
        # deleted: kept apart from the versions (pruned with the cost's horizon) for
        # ``workloads`` and ``controller``
        self._lives: dict[str, dict[str, tuple[str, str, str, datetime, datetime | None]]] = {}
        self._namespace_labels: dict[tuple[str, str], Timeline[dict[str, str]]] = {}
        self._frame = pl.DataFrame(schema=VERSION_SCHEMA)
        self._dirty: set[tuple[str, str]] = set()

    def apply(self, changes: Iterable[ObjectChange]) -> None:
        for change in changes:
            if change.kind == "Namespace":
                self._apply_namespace(change)
            elif change.kind == "Pod":
                self._apply_pod(change)

    def _apply_pod(self, change: ObjectChange) -> None:
        key = (change.cluster, change.uid)
        self._record_life(change)
        timeline = self._pods.setdefault(key, [])
        version = _Pod.of(change)
        if change.change == ChangeType.DELETED:
            # Gone from then on; its last version still prices the windows before.
            before = as_of(timeline, change.observed_at) if timeline else version
            version = replace(before, running=False, deleted=True)
        if record(timeline, change.observed_at, version):
            self._dirty.add(key)

    def _record_life(self, change: ObjectChange) -> None:
        """The pod's controller as its latest change names it (none once orphaned), when
        it was created (``metadata.creationTimestamp``, else first seen) and deleted."""
        lives = self._lives.setdefault(change.cluster, {})
        known = lives.get(change.uid)
        controller = change.controller
        created = _created(change) or change.observed_at
        first = min(created, known[3]) if known else created
        deleted = change.observed_at if change.change == ChangeType.DELETED else None
        if deleted is None and known is not None:
            deleted = known[4]
        kind, name = (controller.kind, controller.name) if controller else ("", "")
        lives[change.uid] = (change.namespace, kind, name, first, deleted)

    def _apply_namespace(self, change: ObjectChange) -> None:
        namespace = (change.cluster, change.name)
        timeline = self._namespace_labels.setdefault(namespace, [])
        if record(timeline, change.observed_at, dict(change.labels)):
            self._dirty.update(
                key
                for key, versions in self._pods.items()
                if (key[0], versions[-1][1].namespace) == namespace
            )

    def forget_before(self, horizon: datetime) -> None:
        """Drop what no scrape from ``horizon`` on can need: versions superseded before
        it, and pods deleted before it."""
        for key in list(self._pods):
            timeline = self._pods[key]
            before = len(timeline)
            prune(timeline, horizon)
            last_at, last = timeline[-1]
            if len(timeline) == 1 and last.deleted and last_at < horizon:
                del self._pods[key]
                self._dirty.add(key)
            elif len(timeline) != before:
                self._dirty.add(key)
        for labels in self._namespace_labels.values():
            prune(labels, horizon)
        gone = horizon - LIFE_KEPT
        for lives in self._lives.values():
            for uid in [u for u, life in lives.items() if life[4] is not None and life[4] < gone]:
                del lives[uid]

    def __len__(self) -> int:
        return len(self._pods)

    def workloads(self, cluster: str, at: datetime) -> set[tuple[str, str, str]]:
        """The top controllers (namespace, kind, name) of the cluster's pods that existed
        in the hour starting at ``at`` (UTC)."""
        end = at + timedelta(hours=1)
        return {
            life[:3]
            for life in self._lives.get(cluster, {}).values()
            if life[1] and life[3] < end and (life[4] is None or at < life[4])
        }

    def controller(self, cluster: str, pod_uid: str) -> tuple[str, str] | None:
        """The pod's top controller (kind, name), if the pod is known and has one."""
        life = self._lives.get(cluster, {}).get(pod_uid)
        return (life[1], life[2]) if life and life[1] else None

    def versions(self) -> pl.DataFrame:
        """One row per container and version (``VERSION_SCHEMA``): requests, node,
        whether it runs there, controller, team and merged labels."""
        if self._dirty:
            dirty = sorted(self._dirty)
            changed = pl.DataFrame(dirty, schema=["cluster", "pod_uid"], orient="row")
            fresh = self._frame_of([k for k in dirty if k in self._pods])
            kept = self._frame.join(changed, on=["cluster", "pod_uid"], how="anti")
            self._frame = pl.concat([kept, fresh])
            self._dirty.clear()
        return self._frame

    def _spans(self, key: tuple[str, str]) -> list[tuple[datetime, _Pod, dict[str, str]]]:
        """The pod's versions merged with its namespace's label changes: each span's
        start, pod version and labels (the namespace's, overridden by the pod's own),
        consecutive equal spans merged."""
        timeline = self._pods[key]
        namespace_labels = self._namespace_labels.get((key[0], timeline[-1][1].namespace), [])
        first = timeline[0][0]
        starts = sorted(
            {at for at, _ in timeline} | {at for at, _ in namespace_labels if at > first}
        )
        spans: list[tuple[datetime, _Pod, dict[str, str]]] = []
        for at in starts:
            pod = as_of(timeline, at)
            inherited: dict[str, str] = as_of(namespace_labels, at) if namespace_labels else {}
            labels = {**inherited, **pod.labels}
            if not spans or spans[-1][1:] != (pod, labels):
                spans.append((at, pod, labels))
        return spans

    def _frame_of(self, keys: list[tuple[str, str]]) -> pl.DataFrame:
        columns: dict[str, list[Any]] = {name: [] for name in VERSION_SCHEMA}
        labels: list[dict[str, str]] = []
        annotations: list[dict[str, str]] = []
        for cluster, uid in keys:
            spans = self._spans((cluster, uid))
            for index, (at, pod, merged) in enumerate(spans):
                until = spans[index + 1][0] if index + 1 < len(spans) else END
                for container in pod.containers:
                    row = {
                        "cluster": cluster,
                        "pod_uid": uid,
                        "container": container.name,
                        "valid_from": at,
                        "valid_to": until,
                        "sample_from": BEGINNING if index == 0 else at,
                        "node": pod.node,
                        "running": pod.running,
                        "namespace": pod.namespace,
                        "pod": pod.name,
                        "cpu_request_cores": container.cpu_request_cores,
                        "memory_request_bytes": container.memory_request_bytes,
                        "gpu_request": container.gpu_request,
                        "controller_kind": pod.controller_kind,
                        "controller_name": pod.controller_name,
                        "team": merged.get(self.team_label, ""),
                    }
                    for name, value in row.items():
                        columns[name].append(value)
                    labels.append(merged)
                    annotations.append(pod.annotations)
        plain = {n: t for n, t in VERSION_SCHEMA.items() if n not in ("labels", "annotations")}
        frame = pl.DataFrame({name: columns[name] for name in plain}, schema=plain)
        return frame.with_columns(
            map_series("labels", labels), map_series("annotations", annotations)
        )


def _created(change: ObjectChange) -> datetime | None:
    """The object's ``metadata.creationTimestamp`` (UTC), if it says."""
    stamp = (change.object.get("metadata") or {}).get("creationTimestamp")
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")) if stamp else None
    except (AttributeError, ValueError):
        return None
