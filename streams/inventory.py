"""The pod inventory: what cost allocation must know of each running container.

It is the processors' state from the ``objects`` stream: pods (node, requests,
controller, labels) and namespace labels. Deleted pods stay until the allowed
lateness has passed, because their last metric windows may still arrive.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import polars as pl
from kubeopera.models import ChangeType, ObjectChange
from kubeopera.streams.frames import LABEL_TYPE, pairs

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
    """Latest pods and namespace labels per cluster, with a per-container frame view."""

    def __init__(self, team_label: str = "team") -> None:
        self.team_label = team_label
        self._pods: dict[tuple[str, str], _Pod] = {}
        self._namespace_labels: dict[tuple[str, str], dict[str, str]] = {}
        self._frame: pl.DataFrame | None = None

    def apply(self, changes: Iterable[ObjectChange]) -> None:
        for change in changes:
            if change.kind == "Namespace":
                self._namespace_labels[(change.cluster, change.name)] = dict(change.labels)
            elif change.kind == "Pod":
                key = (change.cluster, change.uid)
                if change.change == ChangeType.DELETED:
                    previous = self._pods.get(key)
                    self._pods[key] = _Pod(
                        previous.change if previous else change, change.observed_at
                    )
                else:
                    self._pods[key] = _Pod(change)
            else:
                continue
            self._frame = None

    def forget_deleted(self, before: datetime) -> None:
        """Drop pods deleted before ``before`` (the watermark minus the allowed lateness)."""
        stale = [
            k for k, p in self._pods.items() if p.deleted_at is not None and p.deleted_at < before
        ]
        for key in stale:
            del self._pods[key]
        if stale:
            self._frame = None

    def __len__(self) -> int:
        return len(self._pods)

    def containers(self) -> pl.DataFrame:
        """One row per known container: requests, controller, team and merged labels."""
        if self._frame is None:
            self._frame = pl.DataFrame(self._rows(), schema=POD_SCHEMA, orient="row")
        return self._frame

    def _rows(self) -> list[list[object]]:
        rows: list[list[object]] = []
        for (cluster, uid), entry in sorted(self._pods.items()):
            pod = entry.change
            labels = {**self._namespace_labels.get((cluster, pod.namespace), {}), **pod.labels}
            controller = pod.controller
            for container in pod.pod.containers if pod.pod else []:
                rows.append(
                    [
                        cluster,
                        uid,
                        container.name,
                        container.cpu_request_cores,
                        container.memory_request_bytes,
                        container.gpu_request,
                        controller.kind if controller else "",
                        controller.name if controller else "",
                        labels.get(self.team_label, ""),
                        pairs(labels),
                        pairs(pod.annotations),
                    ]
                )
        return rows
