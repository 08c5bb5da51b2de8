"""Properties of cost allocation over generated fleets (hypothesis).

For any fleet and window: allocations + idle (+ shared) == the node cost of every
cluster, computed independently as price x scrape hours; no allocation is negative or
scaled below its request or usage; idle may be negative (an overcommitted node), and
then shows how far in its overcommit columns.
"""

from datetime import UTC, datetime, timedelta

import polars as pl
from builders import allocate_messages, node_price, pod, scrape
from hypothesis import given, settings
from hypothesis import strategies as st

from kubeopera.models import IDLE
from kubeopera.models.catalogue import Catalogue
from kubeopera.reports.aggregate import Sharing, aggregate, key_columns

CATALOGUE = Catalogue.builtin()
TYPES = sorted(t.name for t in CATALOGUE.priced() if t.gpus == 0)[:40]
START = datetime(2026, 3, 2, tzinfo=UTC)
NAMESPACES = ["a", "b", "kube-system"]


@st.composite
def fleets(draw: st.DrawFn) -> tuple[list[object], dict[tuple[str, datetime], float]]:
    """Messages of a random fleet, and each cluster's node cost per hour worked out directly."""
    messages: list[object] = []
    expected: dict[tuple[str, datetime], float] = {}
    for c in range(draw(st.integers(1, 3))):
        cluster = f"c{c}"
        for n in range(draw(st.integers(1, 3))):
            node = f"{cluster}-n{n}"
            kind = CATALOGUE[draw(st.sampled_from(TYPES))]
            spot = draw(st.none() | st.floats(0.001, 5, allow_nan=False))
            messages.append(node_price(cluster, node, kind.name, START, spot_usd_per_hour=spot))
            hourly = spot if spot is not None else kind.usd_per_hour
            assert hourly is not None
            pods = {}
            for p in range(draw(st.integers(0, 5))):
                name = f"{node}-p{p}"
                ns = draw(st.sampled_from(NAMESPACES))
                pods[(ns, name)] = None
                messages.append(
                    pod(
                        cluster,
                        ns,
                        name,
                        node,
                        START,
                        cpu_request=draw(st.floats(0, kind.vcpu)),
                        memory_request_gib=draw(st.floats(0, kind.memory_gib)),
                    )
                )
            minutes = draw(st.sampled_from([1, 5, 15, 60]))
            for step in range(draw(st.integers(1, 6))):
                usage = {
                    key: (
                        draw(st.floats(0, kind.vcpu * 2)),
                        draw(st.floats(0, kind.memory_gib * 2)),
                    )
                    for key in pods
                }  # usage may exceed capacity: idle then goes negative
                at = START + timedelta(minutes=minutes * step)
                messages.append(
                    scrape(cluster, node, at, minutes, (kind.vcpu, kind.memory_gib), usage)
                )
                hour = (cluster, at.replace(minute=0))
                expected[hour] = expected.get(hour, 0.0) + hourly * minutes / 60
    return messages, expected


def allocate_all(messages: list[object]) -> pl.DataFrame:
    return allocate_messages(messages, CATALOGUE)


def close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(abs(a), abs(b), 1e-12)


@settings(max_examples=150, deadline=None)
@given(fleets())
def test_allocations_plus_idle_equal_node_cost_every_hour(
    fleet: tuple[list[object], dict[tuple[str, datetime], float]],
) -> None:
    messages, expected = fleet
    rows = allocate_all(messages)
    costs = ["cpu_cost", "ram_cost", "gpu_cost", "total_cost", "cpu_core_hours", "ram_gib_hours"]
    allocations, idle = rows.filter(~pl.col("is_idle")), rows.filter(pl.col("is_idle"))
    assert allocations.filter(pl.any_horizontal(pl.col(costs) < 0)).height == 0
    for allocated, requested, used in [
        ("cpu_core_hours", "cpu_request_core_hours", "cpu_usage_core_hours"),
        ("ram_gib_hours", "ram_request_gib_hours", "ram_usage_gib_hours"),
    ]:  # never scaled down
        floor = pl.max_horizontal(requested, used) * (1 - 1e-12)
        assert allocations.filter(pl.col(allocated) < floor).height == 0
    overcommitted = idle.filter(pl.col("cpu_core_hours") < 0)
    assert (overcommitted["cpu_overcommit_core_hours"] > 0).all()
    got = {
        (cluster, hour): cost
        for cluster, hour, cost in rows.group_by("cluster", "window_start")
        .agg(pl.col("total_cost").sum())
        .iter_rows()
    }
    assert set(got) == set(expected)
    for key, cost in expected.items():
        assert close(got[key], cost), (key, got[key], cost)


def per_cluster(expected: dict[tuple[str, datetime], float]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for (cluster, _), cost in expected.items():
        totals[cluster] = totals.get(cluster, 0.0) + cost
    return totals


@settings(max_examples=100, deadline=None)
@given(
    fleets(),
    st.sampled_from(["namespace", "team", "cluster", "node", "pod", "controller"]),
    st.sampled_from(["none", "weighted"]),
    st.sampled_from(["cluster", "node"]),
    st.sampled_from([(), ("kube-system",)]),
    st.sampled_from(["even", "weighted"]),
    st.sampled_from(["all", "cluster"]),
)
def test_reports_keep_the_total_whatever_is_shared(
    fleet: tuple[list[object], dict[tuple[str, datetime], float]],
    by: str,
    idle: str,
    idle_by: str,
    shared: tuple[str, ...],
    split: str,
    over: str,
) -> None:
    """The report's total is the fleet's node cost; each cluster keeps its own unless a
    shared namespace is spread over every cluster's groups."""
    messages, expected = fleet
    sharing = Sharing(idle, idle_by, shared, split, over)  # type: ignore[arg-type]
    report = aggregate(allocate_all(messages), f"cluster,{by}", sharing)
    key = key_columns(by)[-1]
    groups = report.filter(pl.col(key) != IDLE) if by != "cluster" else report
    if idle == "weighted" or by != "cluster":  # only idle itself may be negative
        assert groups.filter(pl.col("total_cost") < -1e-12).height == 0
    assert close(report["total_cost"].sum(), sum(expected.values()))
    if over == "cluster" or not shared:
        got = dict(report.group_by("cluster").agg(pl.col("total_cost").sum()).iter_rows())
        for cluster, cost in per_cluster(expected).items():
            assert close(got[cluster], cost), (cluster, got[cluster], cost, sharing)
