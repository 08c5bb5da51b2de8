"""Reports with idle and shared costs spread, on rows whose shares are worked by hand.

Cluster c1 holds (CPU $, RAM $): a (3, 1), b (1, 3), kube-system (2, 0), idle (4, 2);
cluster c2 holds a (1, 1) and idle (0, 2). Total 16 + 4 = 20.
Weighted idle in c1: CPU 4 over 3:1:2 -> a 2, b 2/3, kube-system 4/3; RAM 2 over 1:3:0
-> a 0.5, b 1.5. Own cost: a 6.5, b 37/6, kube-system 10/3.
kube-system shared weighted: a gets (10/3)(6.5 / (6.5 + 37/6)) = 1.7105263157894737,
b gets 1.6228070175438596; shared evenly: 5/3 each.
In c2 all idle (RAM 2) goes to a.
"""

import polars as pl
import pytest

from kubeopera.models import IDLE
from kubeopera.reports.aggregate import Sharing, aggregate, key_columns


def rows() -> pl.DataFrame:
    def row(cluster: str, namespace: str, team: str, cpu: float, ram: float) -> dict[str, object]:
        idle = namespace == IDLE
        return {
            "cluster": cluster,
            "node": f"{cluster}-n1",
            "namespace": namespace,
            "team": team,
            "is_idle": idle,
            "cpu_cost": cpu,
            "ram_cost": ram,
            "gpu_cost": 0.0,
            "cpu_core_hours": cpu,
            "cpu_request_core_hours": 2 * cpu,
            "cpu_usage_core_hours": cpu,
            "ram_gib_hours": ram,
            "ram_request_gib_hours": ram,
            "ram_usage_gib_hours": ram / 2,
            "gpu_hours": 0.0,
        }

    return pl.DataFrame(
        [
            row("c1", "a", "x", 3, 1),
            row("c1", "b", "y", 1, 3),
            row("c1", "kube-system", "platform", 2, 0),
            row("c1", IDLE, "", 4, 2),
            row("c2", "a", "x", 1, 1),
            row("c2", IDLE, "", 0, 2),
        ]
    )


def totals(report: pl.DataFrame, key: str) -> dict[str, float]:
    return dict(report.select(key, "total_cost").iter_rows())


def test_no_sharing_keeps_idle_as_its_own_group() -> None:
    report = aggregate(rows(), "namespace")
    assert totals(report, "namespace") == pytest.approx({"a": 6, "b": 4, "kube-system": 2, IDLE: 8})
    assert report["namespace"].to_list()[0] == IDLE  # largest first


def test_weighted_idle_goes_by_each_resource_share() -> None:
    report = aggregate(rows(), "namespace", Sharing(idle="weighted"))
    assert totals(report, "namespace") == pytest.approx(
        {"a": 6.5 + 4, "b": 37 / 6, "kube-system": 10 / 3}
    )
    assert report["total_cost"].sum() == pytest.approx(20)


def test_shared_namespace_spread_over_every_cluster_by_cost_before_idle_and_evenly() -> None:
    """OpenCost spreads a shared namespace over the groups of the whole query, weighted
    by their cost before idle: (c1, a) 4, (c1, b) 4, (c2, a) 2 of 10 share kube-system's
    10/3 (its own cost with its idle share) as 4/3, 4/3 and 2/3; evenly 10/9 each."""
    shared = ("kube-system",)
    weighted = aggregate(rows(), "cluster,namespace", Sharing("weighted", shared_namespaces=shared))
    got = {(r["cluster"], r["namespace"]): r["total_cost"] for r in weighted.to_dicts()}
    assert got == pytest.approx(
        {("c1", "a"): 6.5 + 4 / 3, ("c1", "b"): 37 / 6 + 4 / 3, ("c2", "a"): 4 + 2 / 3}
    )
    even = aggregate(
        rows(),
        "cluster,namespace",
        Sharing("weighted", shared_namespaces=shared, shared_split="even"),
    )
    got = {(r["cluster"], r["namespace"]): r["total_cost"] for r in even.to_dicts()}
    assert got == pytest.approx(
        {("c1", "a"): 6.5 + 10 / 9, ("c1", "b"): 37 / 6 + 10 / 9, ("c2", "a"): 4 + 10 / 9}
    )
    assert even["shared_cost"].sum() == pytest.approx(10 / 3)
    by_namespace = aggregate(
        rows(), "namespace", Sharing(shared_namespaces=shared, shared_split="even")
    )
    assert totals(by_namespace, "namespace") == pytest.approx({"a": 6 + 1, "b": 4 + 1, IDLE: 8})


def test_shared_namespace_spread_within_its_cluster_when_asked() -> None:
    """Per cluster, c1's kube-system goes to c1's a and b (cost 4 each: 5/3 each); c2's a
    gets none."""
    sharing = Sharing("weighted", shared_namespaces=("kube-system",), shared_over="cluster")
    report = aggregate(rows(), "cluster,namespace", sharing)
    got = {(r["cluster"], r["namespace"]): r["total_cost"] for r in report.to_dicts()}
    assert got == pytest.approx(
        {("c1", "a"): 6.5 + 5 / 3, ("c1", "b"): 37 / 6 + 5 / 3, ("c2", "a"): 4}
    )


def test_by_team_and_efficiency() -> None:
    report = aggregate(rows(), "team")
    x = report.filter(pl.col("team") == "x").row(0, named=True)
    assert x["total_cost"] == pytest.approx(6)
    assert x["cpu_efficiency"] == pytest.approx(0.5)  # usage = half the request
    assert x["ram_efficiency"] == pytest.approx(0.5)


def test_idle_that_no_allocation_can_take_stays_idle() -> None:
    only_idle = rows().filter(pl.col("cluster") == "c2", pl.col("is_idle"))
    report = aggregate(only_idle, "namespace", Sharing(idle="weighted"))
    assert totals(report, "namespace") == pytest.approx({IDLE: 2})


def test_unknown_key_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown report key 'nmspace'; use one of cluster"):
        key_columns("nmspace")
    assert key_columns("team,label:env") == ["team", "label:env"]
    assert key_columns("pod,container") == ["namespace", "pod", "container"]


def test_idle_cost_shows_the_idle_of_each_group() -> None:
    """idle_cost is the idle in a group: the IDLE group's whole cost when idle stays apart
    (c1 4 + 2, c2 0 + 2: 8), the cluster's own idle by cluster, the shares when spread."""
    idle = dict(aggregate(rows(), "namespace").select("namespace", "idle_cost").iter_rows())
    assert idle == pytest.approx({"a": 0, "b": 0, "kube-system": 0, IDLE: 8})
    by_cluster = aggregate(rows(), "cluster")
    assert dict(by_cluster.select("cluster", "idle_cost").iter_rows()) == pytest.approx(
        {"c1": 6, "c2": 2}
    )
    assert totals(by_cluster, "cluster") == pytest.approx({"c1": 16, "c2": 4})  # counted once
    spread = aggregate(rows(), "namespace", Sharing(idle="weighted"))
    assert dict(spread.select("namespace", "idle_cost").iter_rows()) == pytest.approx(
        {"a": 2 + 0.5 + 2, "b": 2 / 3 + 1.5, "kube-system": 4 / 3}  # c2's RAM idle goes to a
    )


def test_rows_without_the_key_group_as_unallocated() -> None:
    """As OpenCost: allocations that lack the label (or team) are ``__unallocated__``."""
    from kubeopera.models import UNALLOCATED

    unlabelled = rows().with_columns(
        team=pl.when(pl.col("namespace") == "b").then(pl.lit("")).otherwise(pl.col("team"))
    )
    report = totals(aggregate(unlabelled, "team"), "team")
    assert report == pytest.approx({"x": 6, "platform": 2, UNALLOCATED: 4, IDLE: 8})  # 20 in all
