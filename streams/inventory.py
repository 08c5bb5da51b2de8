"""The pod inventory: what cost allocation must know of each running container.

It is the processors' state from the ``objects`` stream: pods (node, requests,
controller, labels) and namespace labels. Deleted pods stay until the allowed
lateness has passed, because their last metric windows may still arrive.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import polars as pl

from kubeopera.models import ChangeType, ContainerResources, ObjectChange
from kubeopera.streams.frames import LABEL_TYPE, map_series

POD_SCHEMA = pl.Schema(
    {
        "cluster": pl.String(),
        "pod_uid": pl.String(),
        "container": pl.String(),
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


@dataclass(slots=True)
class _Pod:
    """What the view needs of a pod; the manifest itself is not kept."""

    namespace: str
    labels: dict[str, str]
    annotations: dict[str, str]
    controller_kind: str
    controller_name: str
    containers: list[ContainerResources]
    deleted_at: datetime | None = None

    @classmethod
    def of(cls, change: ObjectChange) -> "_Pod":
        controller = change.controller
        return cls(
            namespace=change.namespace,
            labels=change.labels,
            annotations=change.annotations,
            controller_kind=controller.kind if controller else "",
            controller_name=controller.name if controller else "",
            containers=change.pod.containers if change.pod else [],
        )


class Inventory:
    """Latest pods and namespace labels per cluster, with a per-container frame view.

    The frame is updated incrementally: only pods changed since the last view are
    rebuilt, so a batch with a few rollouts does not rebuild a fleet's worth of rows.
    """

    def __init__(self, team_label: str = "team") -> None:
        self.team_label = team_label
        self._pods: dict[tuple[str, str], _Pod] = {}
        self._namespace_labels: dict[tuple[str, str], dict[str, str]] = {}
        self._frame = pl.DataFrame(schema=POD_SCHEMA)
        self._dirty: set[tuple[str, str]] = set()

    def apply(self, changes: Iterable[ObjectChange]) -> None:
        for change in changes:
            if change.kind == "Namespace":
                self._apply_namespace(change)
            elif change.kind == "Pod":
                key = (change.cluster, change.uid)
                previous = self._pods.get(key)
                if change.change != ChangeType.DELETED:
                    self._pods[key] = _Pod.of(change)
                    self._dirty.add(key)
                elif previous is None:  # deleted before we saw it: still bill its last windows
                    self._pods[key] = _Pod.of(change)
                    self._pods[key].deleted_at = change.observed_at
                    self._dirty.add(key)
                else:
                    previous.deleted_at = change.observed_at

    def _apply_namespace(self, change: ObjectChange) -> None:
        namespace = (change.cluster, change.name)
        if self._namespace_labels.get(namespace) == change.labels:
            return
        self._namespace_labels[namespace] = dict(change.labels)
        self._dirty.update(
            key for key, entry in self._pods.items() if (key[0], entry.namespace) == namespace
        )

    def forget_deleted(self, before: datetime) -> None:
        """Drop pods deleted before ``before`` (the watermark minus the allowed lateness)."""
        stale = [
            k for k, p in self._pods.items() if p.deleted_at is not None and p.deleted_at < before
        ]
        for key in stale:
            del self._pods[key]
        self._dirty.update(stale)

    def __len__(self) -> int:
        return len(self._pods)

    def containers(self) -> pl.DataFrame:
        """One row per known container: requests, controller, team and merged labels."""
        if self._dirty:
            dirty = sorted(self._dirty)
            changed = pl.DataFrame(dirty, schema=["cluster", "pod_uid"], orient="row")
            fresh = self._frame_of([k for k in dirty if k in self._pods])
            kept = self._frame.join(changed, on=["cluster", "pod_uid"], how="anti")
            self._frame = pl.concat([kept, fresh])
            self._dirty.clear()
        return self._frame

    def _frame_of(self, keys: list[tuple[str, str]]) -> pl.DataFrame:
        columns: dict[str, list[Any]] = {name: [] for name in POD_SCHEMA}
        labels: list[dict[str, str]] = []
        annotations: list[dict[str, str]] = []
        for cluster, uid in keys:
            pod = self._pods[(cluster, uid)]
            merged = {**self._namespace_labels.get((cluster, pod.namespace), {}), **pod.labels}
            for container in pod.containers:
                columns["cluster"].append(cluster)
                columns["pod_uid"].append(uid)
                columns["container"].append(container.name)
                columns["cpu_request_cores"].append(container.cpu_request_cores)
                columns["memory_request_bytes"].append(container.memory_request_bytes)
                columns["gpu_request"].append(container.gpu_request)
                columns["controller_kind"].append(pod.controller_kind)
                columns["controller_name"].append(pod.controller_name)
                columns["team"].append(merged.get(self.team_label, ""))
                labels.append(merged)
                annotations.append(pod.annotations)
        frame = pl.DataFrame(
            {
                name: values
                for name, values in columns.items()
                if name not in ("labels", "annotations")
            },
            schema={n: t for n, t in POD_SCHEMA.items() if n not in ("labels", "annotations")},
        )
        return frame.with_columns(
            map_series("labels", labels), map_series("annotations", annotations)
        )
