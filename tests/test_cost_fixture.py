"""A fleet small enough to allocate by hand, checked to the cent.

Two nodes for 24 one-hour scrapes:
- ``a``: m5.large on-demand, 2 vCPU / 8 GiB, $0.096/h (catalogue price).
- ``b``: c5.xlarge spot, 4 vCPU / 8 GiB, $0.068/h given by the price facts.
Neither price comes split, so OpenCost's ratio r = 0.031611 / 0.004237 applies:
ram = total / (vcpu * r + ram_gib), cpu = ram * r.

Pods (requests -> usage, allocated = max of the two):
- p1 on a: 0.5 CPU / 1 GiB requested, uses 0.8 CPU / 0.5 GiB -> 0.8 CPU, 1 GiB
- p2 on a: no requests, uses 0.2 CPU / 2 GiB                 -> 0.2 CPU, 2 GiB
- p3 on a: 0.25 CPU / 0.5 GiB requested, uses 0.1 / 0.25     -> 0.25 CPU, 0.5 GiB
- p4 on b: 1 CPU / 2 GiB requested, uses 0.5 / 1             -> 1 CPU, 2 GiB
- p5 on b: 2 CPU / 4 GiB requested, uses 1.5 / 3             -> 2 CPU, 4 GiB
Idle: a has 0.75 CPU and 4.5 GiB left; b has 1 CPU and 2 GiB.

By hand, per day: on b each CPU+2 GiB is a quarter of the node, so p4 = 0.068*24/4 =
0.408, p5 = 0.816, idle_b = 0.408. On a, ram = 0.096 / (2r + 8) = 0.0041882246339504,
cpu = 0.0312471014641982, so p1 = 24 * (0.8 cpu + 1 ram) = 0.7004617393274,
p2 = 24 * (0.2 cpu + 2 ram) = 0.3510208694578, p3 = 24 * (0.25 cpu + 0.5 ram) =
0.2377413043926, idle_a = 24 * (0.75 cpu + 4.5 ram) = 1.0147760868222.
Node a costs 0.096 * 24 = 2.304, node b 0.068 * 24 = 1.632.
"""

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from builders import allocate_messages, namespace, node_price, pod, scrape

from kubeopera.models import IDLE, Message, Topic
from kubeopera.models.catalogue import Catalogue
from kubeopera.sinks.clickhouse import Store
from kubeopera.streams.embedded import EmbeddedEngine

START = datetime(2026, 3, 2, tzinfo=UTC)
EXPECTED = {
    "p1": 0.7004617393274163,
    "p2": 0.3510208694577731,
    "p3": 0.2377413043925946,
    "p4": 0.408,
    "p5": 0.816,
}
EXPECTED_IDLE = {"a": 1.0147760868222164, "b": 0.408}


def fixture_messages() -> list[Message]:
    messages: list[Message] = [
        (Topic.PRICES, node_price("c1", "a", "m5.large", START)),
        (Topic.PRICES, node_price("c1", "b", "c5.xlarge", START, spot_usd_per_hour=0.068)),
        (Topic.OBJECTS, namespace("c1", "shop", START, team="payments")),
        (
            Topic.OBJECTS,
            pod(
                "c1",
                "shop",
                "p1",
                "a",
                START,
                cpu_request=0.5,
                memory_request_gib=1,
                deployment="web",
            ),
        ),
        (Topic.OBJECTS, pod("c1", "shop", "p2", "a", START)),
        (
            Topic.OBJECTS,
            pod("c1", "shop", "p3", "a", START, cpu_request=0.25, memory_request_gib=0.5),
        ),
        (Topic.OBJECTS, pod("c1", "shop", "p4", "b", START, cpu_request=1, memory_request_gib=2)),
        (
            Topic.OBJECTS,
            pod(
                "c1",
                "shop",
                "p5",
                "b",
                START,
                cpu_request=2,
                memory_request_gib=4,
                labels={"team": "search"},
            ),
        ),
    ]
    for hour in range(24):
        at = START + timedelta(hours=hour)
        messages.append(
            (
                Topic.METRICS,
                scrape(
                    "c1",
                    "a",
                    at,
                    60,
                    (2, 8),
                    {
                        ("shop", "p1"): (0.8, 0.5),
                        ("shop", "p2"): (0.2, 2),
                        ("shop", "p3"): (0.1, 0.25),
                    },
                ),
            )
        )
        messages.append(
            (
                Topic.METRICS,
                scrape(
                    "c1",
                    "b",
                    at,
                    60,
                    (4, 8),
                    {
                        ("shop", "p4"): (0.5, 1),
                        ("shop", "p5"): (1.5, 3),
                    },
                ),
            )
        )
    return messages


def allocate_fixture() -> pl.DataFrame:
    return allocate_messages((m for _, m in fixture_messages()), Catalogue.builtin())


def test_allocations_and_idle_match_the_hand_computation() -> None:
    rows = allocate_fixture()
    by_pod = dict(rows.group_by("pod").agg(pl.col("total_cost").sum()).iter_rows())
    for name, cost in EXPECTED.items():
        assert by_pod[name] == pytest.approx(cost, abs=1e-9)
        assert round(by_pod[name], 2) == round(cost, 2)
    idle = rows.filter(pl.col("pod") == IDLE).group_by("node").agg(pl.col("total_cost").sum())
    for node, cost in idle.iter_rows():
        assert cost == pytest.approx(EXPECTED_IDLE[node], abs=1e-9)
    assert rows["total_cost"].sum() == pytest.approx(2.304 + 1.632, abs=1e-9)


def test_allocation_uses_max_of_request_and_usage() -> None:
    rows = (
        allocate_fixture()
        .group_by("pod")
        .agg(
            pl.col(
                "cpu_core_hours", "ram_gib_hours", "cpu_usage_core_hours", "cpu_request_core_hours"
            ).sum()
        )
    )
    table = {r["pod"]: r for r in rows.to_dicts()}
    assert table["p1"]["cpu_core_hours"] == pytest.approx(0.8 * 24)  # usage above request
    assert table["p1"]["cpu_request_core_hours"] == pytest.approx(0.5 * 24)
    assert table["p2"]["cpu_core_hours"] == pytest.approx(0.2 * 24)  # no request: usage
    assert table["p2"]["ram_gib_hours"] == pytest.approx(2 * 24)
    assert table["p3"]["cpu_core_hours"] == pytest.approx(0.25 * 24)  # request above usage
    assert table[IDLE]["cpu_core_hours"] == pytest.approx((0.75 + 1) * 24)


def test_rows_carry_controller_team_and_capacity_type() -> None:
    rows = allocate_fixture().filter(pl.col("window_start") == START)
    p1 = rows.filter(pl.col("pod") == "p1").row(0, named=True)
    assert (p1["controller_kind"], p1["controller_name"]) == ("Deployment", "web")
    assert p1["team"] == "payments"  # from the namespace label
    p5 = rows.filter(pl.col("pod") == "p5").row(0, named=True)
    assert p5["team"] == "search"  # a pod label overrides its namespace's
    assert p5["capacity_type"] == "spot"
    assert {r["key"]: r["value"] for r in p5["labels"]} == {"team": "search"}


def test_fixture_through_the_embedded_runner_lands_in_clickhouse(store: Store) -> None:
    runner = EmbeddedEngine(store)
    runner.run([fixture_messages()])
    stored = store.query(
        "SELECT pod, sum(total_cost) AS cost FROM v_cost_hourly GROUP BY pod ORDER BY pod"
    )
    got = dict(stored.iter_rows())
    for name, cost in EXPECTED.items():
        assert got[name] == pytest.approx(cost, abs=1e-9)
    assert got[IDLE] == pytest.approx(sum(EXPECTED_IDLE.values()), abs=1e-9)
    daily = store.query(
        "SELECT namespace, total_cost FROM v_cost_by_namespace_daily ORDER BY namespace"
    )
    assert dict(daily.iter_rows()) == pytest.approx(
        {IDLE: sum(EXPECTED_IDLE.values()), "shop": sum(EXPECTED.values())}, abs=1e-9
    )
    team = store.query("SELECT team, sum(total_cost) FROM v_cost_by_team_daily GROUP BY team")
    assert dict(team.iter_rows()) == pytest.approx(
        {
            IDLE: sum(EXPECTED_IDLE.values()),
            "search": EXPECTED["p5"],
            "payments": sum(EXPECTED.values()) - EXPECTED["p5"],
        },
        abs=1e-9,
    )


def test_gpu_node_split_by_default_prices() -> None:
    """g4dn.xlarge: 4 vCPU, 16 GiB, 1 GPU, $0.526/h. Weights at the default prices:
    4 * 0.031611 + 16 * 0.004237 + 1 * 0.95 = 1.144236, so every default price is scaled
    by 0.526 / 1.144236. A pod asking 2 CPU, 8 GiB and the GPU for an hour costs
    (2 * 0.031611 + 8 * 0.004237 + 0.95) * 0.526 / 1.144236 = 0.48135500...; idle is
    (2 * 0.031611 + 8 * 0.004237) * 0.526 / 1.144236 = 0.04464499...
    """
    messages = [
        node_price("c1", "g", "g4dn.xlarge", START),
        pod("c1", "ml", "train", "g", START, cpu_request=2, memory_request_gib=8, gpus=1),
        scrape("c1", "g", START, 60, (4, 16), {("ml", "train"): (1.5, 6)}, gpus=1),
    ]
    rows = allocate_messages(messages, Catalogue.builtin())
    scale = 0.526 / 1.144236
    train = rows.filter(pl.col("pod") == "train").row(0, named=True)
    assert train["gpu_hours"] == pytest.approx(1)
    assert train["gpu_cost"] == pytest.approx(0.95 * scale, abs=1e-12)
    assert train["total_cost"] == pytest.approx(1.047118 * scale, abs=1e-12)
    idle = rows.filter(pl.col("pod") == IDLE)["total_cost"].item()
    assert idle == pytest.approx(0.097118 * scale, abs=1e-12)
    assert train["total_cost"] + idle == pytest.approx(0.526, abs=1e-12)
