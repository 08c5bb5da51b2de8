"""The hourly series a partition's closed cost hours give: each of its clusters' cost,
and that of each namespace and team in them, and each workload's CPU, memory and
restarts, as ``series`` points (``models.series``) for the anomaly and budget
processors. A partition holds the whole of each of its clusters (``metrics`` is keyed by
cluster), so each point is the whole hour of its series.

>>> from datetime import UTC, datetime
>>> rows = pl.DataFrame({
...     "window_start": [datetime(2026, 3, 2, 9, tzinfo=UTC)] * 3,
...     "cluster": ["prod"] * 3, "node": ["n1"] * 3, "pod_uid": ["u1", "u2", ""],
...     "namespace": ["shop", "shop", "__idle__"],
...     "team": ["web", "web", ""], "controller_kind": ["Deployment"] * 2 + [""],
...     "controller_name": ["cart", "cart", ""], "is_idle": [False, False, True],
...     "total_cost": [0.25, 0.5, 1.0], "cpu_usage_core_hours": [0.5, 1.0, 0.0],
...     "ram_usage_gib_hours": [1.0, 2.0, 0.0]})
>>> [(p.series_id(), p.value) for _, p in hourly_points(rows)]  # doctest: +NORMALIZE_WHITESPACE
[('cost/cluster/prod////', 1.75), ('cost/namespace/prod/shop///', 0.75),
 ('cost/team/prod//web//', 0.75), ('cpu/workload/prod/shop//Deployment/cart', 1.5),
 ('memory/workload/prod/shop//Deployment/cart', 3221225472.0),
 ('restarts/workload/prod/shop//Deployment/cart', 0.0),
 ('oom_kills/workload/prod/shop//Deployment/cart', 0.0)]
"""

import math
from collections.abc import Sequence
from typing import Any

import polars as pl

from kubeopera.models import Message, SeriesKind, SeriesPoint, SeriesScope, Subject, Topic
from kubeopera.streams.restarts import SCHEMA as RESTARTS

GIB = 1024**3
VALUES = {
    "cost": "total_cost",
    "cpu": "cpu_usage_core_hours",
    "memory": "ram_usage_gib_hours",
    "restarts": "restarts",
    "oom_kills": "oom_kills",
}


def hourly_points(
    rows: pl.DataFrame,
    restarts: pl.DataFrame | None = None,
    labels: Sequence[str] = (),
) -> list[Message]:
    """The points of closed hourly cost rows (``streams.cost`` columns; rows of whole
    hours, so core-hours are the hour's mean cores), per cluster: its cost (idle
    included), each namespace's and team's (idle left out; a pod without a team is no
    team's), and each workload's CPU (cores), memory (working-set bytes), restarts and
    OOM kills (``restarts``: per pod and hour, ``streams.restarts``; 0 where none; pods
    without a controller are left out); and for each of ``labels`` (pod label keys),
    the cost of each of its values (``key=value``). Values are added up with
    ``math.fsum`` (exactly rounded: the same however the rows were batched), in hour
    order."""
    if rows.is_empty():
        return []
    allocated = rows.filter(~pl.col("is_idle"))
    workloads = allocated.filter(pl.col("controller_name") != "").rename(
        {"controller_kind": "workload_kind", "controller_name": "workload"}
    )
    pods = workloads.select("window_start", "cluster", "pod_uid", *WORKLOAD[1:]).unique()
    if restarts is None:
        restarts = pl.DataFrame(schema=RESTARTS)
    pods = pods.join(
        restarts.with_columns(
            pl.col("window_start").cast(pods.schema["window_start"]),
            pl.col("restarts", "oom_kills").cast(pl.Float64),
        ),
        on=["window_start", "cluster", "pod_uid"],
        how="left",
    ).with_columns(pl.col("restarts", "oom_kills").fill_null(0.0))
    groups = [
        (SeriesKind.COST, SeriesScope.CLUSTER, rows, ["cluster"]),
        (SeriesKind.COST, SeriesScope.NAMESPACE, allocated, ["cluster", "namespace"]),
        (
            SeriesKind.COST,
            SeriesScope.TEAM,
            allocated.filter(pl.col("team") != ""),
            ["cluster", "team"],
        ),
        (SeriesKind.CPU, SeriesScope.WORKLOAD, workloads, WORKLOAD),
        (SeriesKind.MEMORY, SeriesScope.WORKLOAD, workloads, WORKLOAD),
        (SeriesKind.RESTARTS, SeriesScope.WORKLOAD, pods, WORKLOAD),
        (SeriesKind.OOM_KILLS, SeriesScope.WORKLOAD, pods, WORKLOAD),
    ]
    for key in labels:
        labelled = allocated.with_columns(
            label=pl.col("labels")
            .list.eval(pl.element().filter(pl.element().struct.field("key") == key))
            .list.first()
            .struct.field("value")
        ).filter(pl.col("label").is_not_null())
        labelled = labelled.with_columns(label=pl.format("{}={}", pl.lit(key), "label"))
        groups.append((SeriesKind.COST, SeriesScope.LABEL, labelled, ["cluster", "label"]))
    points: list[Message] = []
    for kind, scope, frame, by in groups:
        scale = GIB if kind == SeriesKind.MEMORY else 1
        hours = (
            frame.group_by("window_start", *by).agg(pl.col(VALUES[kind])).sort("window_start", *by)
        )
        for row in hours.iter_rows(named=True):
            value = math.fsum(row.pop(VALUES[kind])) * scale
            points.append((Topic.SERIES, _point(kind, scope, value, row)))
    return sorted(points, key=lambda message: message[1].event_time())


WORKLOAD = ["cluster", "namespace", "workload_kind", "workload"]


def _point(kind: SeriesKind, scope: SeriesScope, value: float, row: dict[str, Any]) -> SeriesPoint:
    return SeriesPoint.model_construct(kind=kind, scope=scope, value=value, **{
        "namespace": "", "team": "", "workload_kind": "", "workload": "", "label": "", **row
    })  # fmt: skip


def subject_of(point: SeriesPoint) -> Subject:
    """What a series is of, as a finding's subject: a cluster, a namespace, a team (in a
    cluster) or a workload."""
    if point.scope == SeriesScope.WORKLOAD:
        return Subject(
            cluster=point.cluster, namespace=point.namespace, kind=point.workload_kind,
            name=point.workload,
        )  # fmt: skip
    if point.scope == SeriesScope.TEAM:
        return Subject(cluster=point.cluster, kind="Team", name=point.team)
    if point.scope == SeriesScope.LABEL:
        return Subject(cluster=point.cluster, kind="Label", name=point.label)
    if point.scope == SeriesScope.NAMESPACE:
        return Subject(
            cluster=point.cluster, namespace=point.namespace, kind="Namespace", name=point.namespace
        )
    return Subject(cluster=point.cluster, kind="Cluster", name=point.cluster)


def title(point: SeriesPoint) -> str:
    """The series' scope and name for people: ``namespace prod/shop``."""
    subject = subject_of(point)
    if point.scope == SeriesScope.WORKLOAD:
        return f"{subject.kind} {subject.cluster}/{subject.namespace}/{subject.name}"
    if point.scope == SeriesScope.NAMESPACE:
        return f"namespace {point.cluster}/{point.namespace}"
    if point.scope == SeriesScope.TEAM:
        return f"team {point.team} in {point.cluster}"
    if point.scope == SeriesScope.LABEL:
        return f"label {point.label} in {point.cluster}"
    return f"cluster {point.cluster}"
