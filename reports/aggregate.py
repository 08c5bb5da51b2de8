"""Allocation reports: cost rows grouped by any key, with idle and shared costs spread.

OpenCost's sharing model (``core/pkg/opencost/allocation.go``, ``AggregateBy``):
- idle ``none`` keeps idle as its own ``__idle__`` group; ``weighted`` hands each
  group the cluster's (or node's) idle CPU, RAM and GPU cost in proportion to the
  group's own CPU, RAM and GPU cost (``computeIdleCoeffs``). Idle may be negative (an
  overcommitted node): each group's share is then negative, never more than its cost.
- shared namespaces (say ``kube-system``) are spread over the other groups of the
  whole report, across clusters as OpenCost does (``over="all"``), or of their own
  cluster (``over="cluster"``): ``even``ly, or ``weighted`` by each group's cost
  before idle (``computeShareCoeffs`` weighs before idle is shared).
Whatever is spread, the report's total equals the node cost of the rows it was given.
"""

from dataclasses import dataclass
from typing import Literal

import polars as pl

from kubeopera.models import IDLE, UNALLOCATED

GROUPS: dict[str, list[str]] = {
    "cluster": ["cluster"],
    "node": ["cluster", "node"],
    "namespace": ["namespace"],
    "controller": ["namespace", "controller_kind", "controller_name"],
    "controller_kind": ["controller_kind"],
    "pod": ["namespace", "pod"],
    "container": ["namespace", "pod", "container"],
    "team": ["team"],
}
"""Report keys and the columns each groups by; ``label:<k>`` and ``annotation:<k>``
group by a column of that name (the store's query extracts it)."""

RESOURCES = ("cpu", "ram", "gpu")
USAGE = [
    "cpu_core_hours",
    "cpu_request_core_hours",
    "cpu_usage_core_hours",
    "ram_gib_hours",
    "ram_request_gib_hours",
    "ram_usage_gib_hours",
    "gpu_hours",
]
COSTS = ["cpu_cost", "ram_cost", "gpu_cost"]
INPUT_MEASURES = [*COSTS, *USAGE]
"""The measures ``aggregate`` reads from each cost row."""


@dataclass(frozen=True)
class Sharing:
    """How a report spreads idle and shared cost (OpenCost's ``AggregateBy`` options).

    ``idle``: ``none`` keeps idle as the ``IDLE`` group, ``weighted`` spreads it over the
    groups of its ``idle_by`` scope (``cluster`` or ``node``) by their CPU, RAM and GPU
    cost (``computeIdleCoeffs``). ``shared_namespaces``: namespaces whose cost (with its
    share of idle) is spread over the other groups, ``even``ly or ``weighted`` by their
    cost before idle (``shared_split``, ``computeShareCoeffs``), over the whole report or
    each cluster (``shared_over``)."""

    idle: Literal["none", "weighted"] = "none"
    idle_by: Literal["cluster", "node"] = "cluster"
    shared_namespaces: tuple[str, ...] = ()
    shared_split: Literal["even", "weighted"] = "weighted"
    shared_over: Literal["all", "cluster"] = "all"


def key_columns(by: str) -> list[str]:
    """The columns a report key groups by, in order and without repeats: ``by`` is a
    comma-separated list of ``GROUPS`` keys, ``label:<k>`` and ``annotation:<k>``.

    Raises ``ValueError`` naming the known keys for an unknown one."""
    columns: list[str] = []
    for part in (p.strip() for p in by.split(",")):
        if part in GROUPS:
            columns += [c for c in GROUPS[part] if c not in columns]
        elif part.partition(":")[0] in ("label", "annotation") and part.partition(":")[2]:
            columns.append(part)
        else:
            known = ", ".join([*GROUPS, "label:<key>", "annotation:<key>"])
            raise ValueError(f"unknown report key {part!r}; use one of {known}")
    return columns


def aggregate(rows: pl.DataFrame, by: str, sharing: Sharing = Sharing()) -> pl.DataFrame:
    """Cost per group of ``by`` (e.g. ``"namespace"``, ``"team,label:env"``), largest first.

    ``rows`` need the key columns, ``cluster``, ``node``, ``namespace``, ``is_idle``
    and the cost and usage measures of ``cost_allocation_hourly`` (``INPUT_MEASURES``:
    costs in USD, CPU in core-hours, RAM in GiB-hours, GPU in GPU-hours).

    One row per group: the key columns (strings; idle rows grouped as ``IDLE`` in every
    key but ``cluster``, rows without a value of the key, such as a label they lack, as
    ``UNALLOCATED``), the summed usage measures and costs, ``idle_cost`` (USD of idle
    in the group: spread onto it with ``idle="weighted"``, and the idle that stays idle, so
    the ``IDLE`` group's idle_cost is its whole cost), ``shared_cost`` (shared namespaces
    spread onto it), ``total_cost`` (USD: its costs, the idle spread onto it and its
    share of the shared namespaces), and ``cpu_efficiency`` / ``ram_efficiency``
    (usage / request, null without requests). Sorted by ``total_cost`` descending, then
    by key. The totals add up to the node cost of ``rows`` whatever ``sharing`` says.
    Raises ``ValueError`` for an unknown key (``key_columns``).
    """
    keys = key_columns(by)
    scope = ["cluster", "node"] if sharing.idle_by == "node" else ["cluster"]
    rows = rows.with_columns(
        kind=pl.when(pl.col("is_idle"))
        .then(pl.lit("idle"))
        .when(pl.col("namespace").is_in(list(sharing.shared_namespaces)))
        .then(pl.lit("shared"))
        .otherwise(pl.lit("own"))
    )
    if sharing.idle == "weighted":
        rows = _spread_idle(rows, scope)
    else:
        rows = rows.with_columns(idle_cost=pl.lit(0.0))
    # Idle that stays idle (all of it with idle="none"): shown in its group's idle_cost.
    rows = rows.with_columns(
        idle_kept=pl.when(pl.col("kind") == "idle").then(pl.sum_horizontal(*COSTS)).otherwise(0.0)
    )
    spread_over = ["cluster"] if sharing.shared_over == "cluster" else []
    groups = (
        rows.with_columns(
            # Idle keeps its cluster, so a per-cluster report shows each cluster's idle.
            pl.when(pl.col("kind") == "idle")
            .then(pl.lit(IDLE))
            .when(pl.col(k).cast(pl.String).fill_null("") == "")
            .then(pl.lit(UNALLOCATED))
            .otherwise(pl.col(k).cast(pl.String))
            .alias(k)
            for k in keys
            if k != "cluster"
        )
        .group_by(list(dict.fromkeys([*spread_over, "kind", *keys])))
        .agg(pl.col(*USAGE, *COSTS, "idle_cost", "idle_kept").sum())
        .with_columns(
            cost=pl.sum_horizontal(*COSTS),
            own_cost=pl.sum_horizontal(*COSTS) + pl.col("idle_cost"),
        )
    )
    if sharing.idle == "weighted":
        groups = groups.filter((pl.col("kind") != "idle") | (pl.col("own_cost") != 0))
    groups = _spread_shared(groups, sharing.shared_split, spread_over)
    report = (
        groups.group_by(keys)
        .agg(pl.col(*USAGE, *COSTS, "idle_cost", "idle_kept", "shared_cost").sum())
        .with_columns(  # all at once: total_cost counts idle kept once, in COSTS
            total_cost=pl.sum_horizontal(*COSTS, "idle_cost", "shared_cost"),
            idle_cost=pl.col("idle_cost") + pl.col("idle_kept"),
            cpu_efficiency=_ratio("cpu_usage_core_hours", "cpu_request_core_hours"),
            ram_efficiency=_ratio("ram_usage_gib_hours", "ram_request_gib_hours"),
        )
    )
    report = report.drop("idle_kept")
    return report.sort(["total_cost", *keys], descending=[True, *[False] * len(keys)])


def _spread_idle(rows: pl.DataFrame, scope: list[str]) -> pl.DataFrame:
    """Give each non-idle row its share of idle, resource by resource, within ``scope``.

    Idle of a resource that no row in the scope uses cannot be shared: it stays idle.
    """
    idle = pl.col("kind") == "idle"
    shares, left = [], []
    for resource in RESOURCES:
        cost = pl.col(f"{resource}_cost")
        idle_total = cost.filter(idle).sum().over(scope)
        used_total = cost.filter(~idle).sum().over(scope)
        shareable = used_total > 0
        shares.append(
            pl.when(~idle & shareable).then(idle_total * cost / used_total).otherwise(0.0)
        )
        left.append(pl.when(idle & ~shareable).then(cost).otherwise(0.0))
    rows = rows.with_columns(
        idle_cost=pl.sum_horizontal(shares),
        **{
            f"{r}_cost": pl.when(idle).then(kept).otherwise(pl.col(f"{r}_cost"))
            for r, kept in zip(RESOURCES, left, strict=True)
        },
    )
    return rows


def _spread_shared(groups: pl.DataFrame, split: str, over: list[str]) -> pl.DataFrame:
    """Move the shared namespaces' cost (with its share of idle) onto the other groups
    of the scope ``over`` (no column: the whole report), evenly or by cost before idle."""

    def in_scope(expr: pl.Expr) -> pl.Expr:
        return expr.over(over) if over else expr

    own = pl.col("kind") == "own"
    shared_total = in_scope(pl.col("own_cost").filter(pl.col("kind") == "shared").sum())
    owners = in_scope(own.sum())
    owned_cost = in_scope(pl.col("cost").filter(own).sum())
    weight = (
        pl.lit(1.0) / owners
        if split == "even"
        else pl.when(owned_cost > 0).then(pl.col("cost") / owned_cost).otherwise(1.0 / owners)
    )
    groups = groups.with_columns(
        shared_cost=pl.when(own & (owners > 0)).then(shared_total * weight).otherwise(0.0),
        movable=(pl.col("kind") == "shared") & (owners > 0),
    )
    return groups.filter(~pl.col("movable")).drop("movable")


def _ratio(numerator: str, denominator: str) -> pl.Expr:
    return pl.when(pl.col(denominator) > 0).then(pl.col(numerator) / pl.col(denominator))
