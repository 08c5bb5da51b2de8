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

from kubeopera.models import ChangeType, ObjectChange
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


@dataclass
class _Pod:
    change: ObjectChange
    deleted_at: datetime | None = None


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
                    self._pods[key] = _Pod(change)
                    self._dirty.add(key)
                elif previous is None:  # deleted before we saw it: still bill its last windows
                    self._pods[key] = _Pod(change, change.observed_at)
                    self._dirty.add(key)
                else:
                    previous.deleted_at = change.observed_at

    def _apply_namespace(self, change: ObjectChange) -> None:
        namespace = (change.cluster, change.name)
        if self._namespace_labels.get(namespace) == change.labels:
            return
        self._namespace_labels[namespace] = dict(change.labels)
        self._dirty.update(
            key
            for key, entry in self._pods.items()
            if (key[0], entry.change.namespace) == namespace
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
            pod = self._pods[(cluster, uid)].change
            merged = {**self._namespace_labels.get((cluster, pod.namespace), {}), **pod.labels}
            controller = pod.controller
            for container in pod.pod.containers if pod.pod else []:
                columns["cluster"].append(cluster)
                columns["pod_uid"].append(uid)
                columns["container"].append(container.name)
                columns["cpu_request_cores"].append(container.cpu_request_cores)
                columns["memory_request_bytes"].append(container.memory_request_bytes)
                columns["gpu_request"].append(container.gpu_request)
                columns["controller_kind"].append(controller.kind if controller else "")
                columns["controller_name"].append(controller.name if controller else "")
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
