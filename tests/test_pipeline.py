"""The embedded pipeline end to end: simulator -> processors -> ClickHouse (chDB)."""

import os
import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from conftest import SHARED_DATA

from kubeopera.collectors.simulator import FleetSpec, simulate
from kubeopera.models.catalogue import Catalogue
from kubeopera.sinks.clickhouse import ChdbBackend, Store
from kubeopera.streams.embedded import EmbeddedEngine
from kubeopera.streams.pricing import Pricer

pytestmark = pytest.mark.slow  # simulated fleets through the embedded pipeline

START = (datetime.now(UTC) - timedelta(days=2)).replace(hour=0, minute=0, second=0, microsecond=0)
FULL_CATALOGUE = SHARED_DATA / "pricing" / "karpenter_instance_types_us-east-1.csv"
TABLES = {
    "cost_allocation_hourly": "cluster, namespace, window_start, node, pod, pod_uid, container",
    "raw_metrics": "cluster, namespace, pod, container, window_start, pod_uid",
    "raw_objects": "cluster, namespace, kind, name, observed_at, uid, change",
    "node_prices": "cluster, node, observed_at",
}


def catalogue() -> Catalogue:
    return Catalogue.from_csv(FULL_CATALOGUE) if FULL_CATALOGUE.exists() else Catalogue.builtin()


def run_fleet(folder: Path, seed: int) -> dict[str, pl.DataFrame]:
    spec = FleetSpec(
        clusters=2,
        pods_per_cluster=40,
        start=START,
        duration=timedelta(hours=5),
        resolution=timedelta(minutes=5),
        seed=seed,
        catalogue=catalogue(),
    )
    with Store(ChdbBackend(folder), raw_retention_days=0) as store:
        EmbeddedEngine(store, pricer=Pricer(spec.catalogue or Catalogue.builtin())).run(
            simulate(spec), batch_samples=5_000
        )
        return {
            table: store.query(f"SELECT * FROM {table} FINAL ORDER BY {order}")
            for table, order in TABLES.items()
        }


def test_same_seed_same_tables_other_seed_other_tables(tmp_path: Path) -> None:
    first = run_fleet(tmp_path / "a", seed=11)
    again = run_fleet(tmp_path / "b", seed=11)
    other = run_fleet(tmp_path / "c", seed=12)
    for table in TABLES:
        assert first[table].height > 0, table
        assert first[table].equals(again[table]), f"{table} differs between two runs of one seed"
    assert not first["cost_allocation_hourly"].equals(other["cost_allocation_hourly"])
    assert not first["raw_metrics"].equals(other["raw_metrics"])


def test_cost_of_a_simulated_fleet_equals_its_node_prices(tmp_path: Path) -> None:
    """Allocations + idle per cluster equal the sum of each node's price x scrape hours,
    recomputed here from the stored prices and node scrapes, not from cost rows; no
    allocation is negative (idle may be, on an overcommitted node)."""
    spec = FleetSpec(
        clusters=2,
        pods_per_cluster=40,
        start=START,
        duration=timedelta(hours=3),
        resolution=timedelta(minutes=10),
        seed=5,
        catalogue=catalogue(),
    )
    with Store(ChdbBackend(tmp_path), raw_retention_days=0) as store:
        EmbeddedEngine(store, pricer=Pricer(spec.catalogue or Catalogue.builtin())).run(
            simulate(spec)
        )
        expected = store.query(
            "SELECT s.cluster AS cluster, sum(p.usd_per_hour * "
            "dateDiff('millisecond', s.window_start, s.window_end) / 3600000) AS usd "
            "FROM raw_node_metrics AS s FINAL "
            "INNER JOIN (SELECT cluster, node, argMax(usd_per_hour, observed_at) AS usd_per_hour "
            "FROM node_prices GROUP BY cluster, node) AS p "
            "ON s.cluster = p.cluster AND s.node = p.node "
            "GROUP BY cluster ORDER BY cluster"
        )
        got = store.query(
            "SELECT cluster, sum(total_cost) AS usd FROM v_cost_hourly "
            "GROUP BY cluster ORDER BY cluster"
        )
        negative = store.query(
            "SELECT count() FROM v_cost_hourly WHERE total_cost < 0 AND NOT is_idle"
        ).item()
    assert got["cluster"].to_list() == expected["cluster"].to_list()
    for ours, reference in zip(got["usd"], expected["usd"], strict=True):
        assert ours == pytest.approx(reference, rel=1e-9)
    assert negative == 0


def test_demo_end_to_end_prints_what_the_store_holds(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "KUBEOPERA_STORAGE__PATH": str(tmp_path / "store"),
        "KUBEOPERA_STORAGE__RAW_RETENTION_DAYS": "0",
    }
    if FULL_CATALOGUE.exists():
        env["KUBEOPERA_PRICING__CATALOGUE_PATH"] = str(FULL_CATALOGUE)
    start = START.strftime("%Y-%m-%d")
    args = [
        "demo",
        "--clusters",
        "3",
        "--pods-per-cluster",
        "30",
        "--duration",
        "6h",
        "--resolution",
        "5m",
        "--start",
        start,
    ]
    result = subprocess.run(
        ["kubeopera", *args], capture_output=True, env=env, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr.decode()
    out = result.stdout.decode()
    total, allocated, idle = (
        float(x.replace(",", ""))
        for x in re.search(
            r"Total fleet cost: \$([\d,.]+) \(allocated \$([\d,.]+), idle \$([\d,.]+)\)", out
        ).groups()  # type: ignore[union-attr]
    )
    for section in (
        "Cost by team",
        "Cost by namespace",
        "Idle cost per cluster",
        "10 most expensive workloads",
    ):
        assert section in out
    assert "Data: embedded ClickHouse (chDB) at" in out and 'kubeopera sql "' in out

    query = ["kubeopera", "sql", "--format", "csv"]
    sums = (
        subprocess.run(
            [
                *query,
                "SELECT sum(total_cost) AS total, sumIf(total_cost, is_idle) AS idle "
                "FROM v_cost_hourly",
            ],
            capture_output=True,
            env=env,
            check=True,
        )
        .stdout.decode()
        .splitlines()[1]
        .split(",")
    )
    assert total == pytest.approx(round(float(sums[0]), 2), abs=0.006)
    assert idle == pytest.approx(round(float(sums[1]), 2), abs=0.006)
    assert allocated == pytest.approx(total - idle, abs=0.011)
    teams = (
        subprocess.run(
            [*query, "SELECT team, sum(total_cost) FROM v_cost_by_team_daily GROUP BY team"],
            capture_output=True,
            env=env,
            check=True,
        )
        .stdout.decode()
        .splitlines()[1:]
    )
    assert len(teams) >= 5
    for line in teams:
        team, cost = line.rsplit(",", 1)
        assert re.search(rf"│ {team.strip(chr(34))}\s+│\s+\${float(cost):,.2f} │", out), (
            team,
            cost,
        )
