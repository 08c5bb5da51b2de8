"""Cost cases a FinOps team reconciles against OpenCost, each a recorded input under
``tests/scenarios/`` replayed through ``kubeopera replay`` as a user would, with the
expected value worked out here by hand.

Unit prices of an m5.large (2 vCPU, 8 GiB, 0.096 USD/h from the catalogue), split as
OpenCost's ``GetNodeCost`` does with r = 0.031611 / 0.004237: ram = 0.096 / (2r + 8),
cpu = ram x r (0.0312471 USD per core-hour, 0.0041882 USD per GiB-hour).

Where batching could matter, each case is replayed in batches of 1, 2, 3 and all
messages, and every run must store the same table (``test_worker_cost_cases`` runs the
same files through the Kafka engine).
"""

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from cli_tools import run_kubeopera, stored
from polars.testing import assert_frame_equal
from replay_tools import replay

pytestmark = pytest.mark.slow  # each case runs `kubeopera replay` as a user would

SCENARIOS = Path(__file__).with_name("scenarios")
T0 = datetime(2026, 3, 2, tzinfo=UTC)
R = 0.031611 / 0.004237
RAM = 0.096 / (2 * R + 8)  # m5.large USD per GiB-hour
CPU = RAM * R  # m5.large USD per core-hour
FIRST_HOUR = f"window_start = toDateTime64('{T0:%Y-%m-%d %H:%M:%S}', 3, 'UTC')"
COSTS = (
    "SELECT * EXCEPT id FROM v_cost_hourly "
    "ORDER BY cluster, window_start, node, namespace, pod, pod_uid, container"
)
BATCHINGS = ["1", "2", "3", "100000"]


def replayed(tmp_path: Path, scenario: str, batch_size: str = "100000") -> Path:
    data = tmp_path / f"{scenario}-{batch_size}"
    result = replay(SCENARIOS / f"{scenario}.jsonl", data, "--batch-size", batch_size)
    assert result.returncode == 0, result.stderr
    assert "(0 dead letters)" in result.stdout, result.stdout
    return data


def first_hour(data: Path, key: str = "pod") -> dict[str, float]:
    """Total cost of the first hour by ``key``."""
    rows = stored(
        data, f"SELECT {key}, sum(total_cost) FROM v_cost_hourly WHERE {FIRST_HOUR} GROUP BY {key}"
    )
    return dict(rows.iter_rows())


def same_table_however_batched(tmp_path: Path, scenario: str) -> Path:
    """Replays ``scenario`` in every batching; returns one of the (identical) stores."""
    runs = [replayed(tmp_path, scenario, size) for size in BATCHINGS]
    tables = [stored(run, COSTS) for run in runs]
    for table in tables[1:]:
        assert_frame_equal(tables[0], table, check_exact=True)
    return runs[0]


def test_overcommit_is_charged_as_reserved_or_used_and_idle_goes_negative(tmp_path: Path) -> None:
    """n1: a requests 2 CPU / 1 GiB and uses 0.1 CPU; b requests nothing and uses 1.5 CPU
    and 1 GiB: 3.5 cores on a 2-core node. OpenCost charges a 2 core-hours (0.066682),
    b 1.5 (0.051059), and idle is 0.096 minus both (-0.021741), with 1.5 core-hours over
    capacity. n2's c is charged its request 0.5 CPU / 1 GiB; the cluster's idle nets
    both nodes."""
    data = replayed(tmp_path, "overcommit")
    rows = stored(
        data,
        "SELECT node, pod, cpu_core_hours, total_cost, cpu_overcommit_core_hours "
        f"FROM v_cost_hourly WHERE {FIRST_HOUR} ORDER BY node, pod",
    )
    by = {(r["node"], r["pod"]): r for r in rows.to_dicts()}
    a, b, idle = by[("n1", "a")], by[("n1", "b")], by[("n1", "__idle__")]
    assert a["cpu_core_hours"] == pytest.approx(2.0, abs=1e-12)
    assert b["cpu_core_hours"] == pytest.approx(1.5, abs=1e-12)
    assert a["total_cost"] == pytest.approx(2 * CPU + 1 * RAM, abs=1e-12)
    assert b["total_cost"] == pytest.approx(1.5 * CPU + 1 * RAM, abs=1e-12)
    assert round(a["total_cost"], 6) == 0.066682 and round(b["total_cost"], 6) == 0.051059
    n1_idle = 0.096 - (2 * CPU + RAM) - (1.5 * CPU + RAM)
    assert round(n1_idle, 6) == -0.021741
    assert idle["total_cost"] == pytest.approx(n1_idle, abs=1e-12)
    assert idle["cpu_core_hours"] == pytest.approx(2 - 3.5, abs=1e-12)
    assert idle["cpu_overcommit_core_hours"] == pytest.approx(1.5, abs=1e-12)
    assert by[("n2", "__idle__")]["cpu_overcommit_core_hours"] == 0
    n2_idle = 0.096 - (0.5 * CPU + 1 * RAM)
    assert by[("n2", "__idle__")]["total_cost"] == pytest.approx(n2_idle, abs=1e-12)

    overcommitted = stored(
        data, "SELECT node, cpu_overcommit_core_hours FROM v_overcommitted_node_hours"
    )
    assert overcommitted.rows() == [("n1", pytest.approx(1.5, abs=1e-12))]
    # The cluster's idle nets its nodes: n1's negative idle against n2's, plus the
    # minute that closes the hour (no samples: a's 2 CPU / 1 GiB and c's 0.5 / 1 are
    # still reserved, as their pods still run).
    closing_idle = (7 * RAM + (1.5 * CPU + 7 * RAM)) / 60
    cluster_idle = stored(data, "SELECT sum(idle_cost) FROM v_idle_by_cluster_daily").item()
    assert cluster_idle == pytest.approx(n1_idle + n2_idle + closing_idle, abs=1e-12)
    total = stored(data, "SELECT sum(total_cost) FROM v_cost_hourly").item()
    assert total == pytest.approx(2 * 0.096 * (1 + 1 / 60), abs=1e-12)
    report = cost_command(data, "--by", "namespace")
    assert "1 overcommitted node-hour (allocations above capacity" in report
    assert "Nodes by price source: catalogue 2." in report


def test_a_node_nobody_prices_costs_opencosts_default_unit_prices(tmp_path: Path) -> None:
    """An on-prem node with only a hostname label, 2 CPU / 8 GiB: 2 x 0.031611 + 8 x
    0.004237 = 0.097118 USD/h; a pod requesting 1 CPU / 2 GiB costs 0.040085 for the
    hour. The report counts the default-priced node."""
    data = replayed(tmp_path, "unpriced_node")
    costs = first_hour(data)
    assert costs["api"] == pytest.approx(1 * 0.031611 + 2 * 0.004237, abs=1e-12)
    assert sum(costs.values()) == pytest.approx(2 * 0.031611 + 8 * 0.004237, abs=1e-12)
    assert round(sum(costs.values()), 6) == 0.097118 and round(costs["api"], 6) == 0.040085
    sources = stored(data, "SELECT DISTINCT price_source FROM v_cost_hourly")["price_source"]
    assert sources.to_list() == ["default"]
    assert stored(data, "SELECT price_source FROM node_prices").item() == "default"
    report = cost_command(data, "--by", "namespace")
    assert "Nodes by price source: default 1." in report
    assert "1 node priced at OpenCost's default unit prices" in report


def test_a_spot_node_without_a_market_price_gets_its_on_demand_price_unless_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OpenCost's AWS provider without a spot feed prices a spot m5.large at its on-demand
    0.096 USD/h; the estimate (0.096 x 0.006655 / 0.031611 = 0.020211) is a setting."""
    on_demand = first_hour(replayed(tmp_path, "spot_without_market_price"))
    assert on_demand == {"__idle__": pytest.approx(0.096, abs=1e-12)}
    monkeypatch.setenv("KUBEOPERA_PRICING__SPOT_FALLBACK", "estimate")
    data = replayed(tmp_path / "estimate", "spot_without_market_price")
    estimate = first_hour(data)["__idle__"]
    assert estimate == pytest.approx(0.096 * 0.006655 / 0.031611, abs=1e-12)
    assert round(estimate, 6) == 0.020211
    sources = stored(data, "SELECT DISTINCT capacity_type, price_source FROM v_cost_hourly")
    assert sources.rows() == [("spot", "catalogue_spot_estimate")]


def test_a_known_gpu_price_is_taken_off_before_the_cpu_ram_split(tmp_path: Path) -> None:
    """4 vCPU / 16 GiB / 1 GPU, 0.526 USD/h with the GPU at 0.40: the other 0.126 split by
    OpenCost's ratio, ram = 0.126 / (4r + 16) = 0.002749, cpu = ram x r = 0.020506. A pod
    requesting the GPU, 1 CPU and 2 GiB costs 0.40 + cpu + 2 ram for the hour."""
    data = replayed(tmp_path, "gpu_node_with_a_gpu_price")
    ram = 0.126 / (4 * R + 16)
    cpu = ram * R
    assert round(ram, 6) == 0.002749 and round(cpu, 6) == 0.020506
    rows = stored(
        data,
        f"SELECT pod, gpu_cost, cpu_cost, ram_cost FROM v_cost_hourly WHERE {FIRST_HOUR} "
        "ORDER BY pod",
    )
    train = rows.filter(pl.col("pod") == "train").row(0, named=True)
    assert train["gpu_cost"] == pytest.approx(0.40, abs=1e-12)
    assert train["cpu_cost"] == pytest.approx(cpu, abs=1e-12)
    assert train["ram_cost"] == pytest.approx(2 * ram, abs=1e-12)
    total = rows.select(pl.sum_horizontal("gpu_cost", "cpu_cost", "ram_cost").sum()).item()
    assert total == pytest.approx(0.526, abs=1e-12)


def test_a_shared_namespace_is_spread_over_the_groups_of_every_cluster(tmp_path: Path) -> None:
    """c1 runs kube-system (1 CPU requested: 0.031247) and app1, c2 runs app2. Spread
    evenly as OpenCost does, app1 and app2 get 0.015624 each; spread within its cluster
    (the option), app1 gets it all."""
    data = replayed(tmp_path, "shared_namespace")
    shared = {"--share-namespaces": "kube-system", "--share-split": "even"}
    options = [x for pair in shared.items() for x in pair]
    every = report_csv(data, "--by", "namespace", *options)
    assert every["shared_cost"] == {
        "app1": pytest.approx(CPU / 2, abs=1e-12),
        "app2": pytest.approx(CPU / 2, abs=1e-12),
        "__idle__": 0.0,
    }
    assert round(CPU / 2, 6) == 0.015624
    per_cluster = report_csv(data, "--by", "namespace", *options, "--share-over", "cluster")
    assert per_cluster["shared_cost"]["app1"] == pytest.approx(CPU, abs=1e-12)
    assert per_cluster["shared_cost"]["app2"] == 0.0


@pytest.mark.parametrize("batch_size", BATCHINGS)
def test_a_price_change_applies_from_its_time_however_batched(
    tmp_path: Path, batch_size: str
) -> None:
    """A c5.xlarge spot node at 0.068 USD/h from 00:00 and 0.136 from 00:30, scraped every
    10 minutes: 3 x 0.068 / 6 + 3 x 0.136 / 6 = 0.102 for the hour."""
    costs = first_hour(replayed(tmp_path, "price_change_mid_hour", batch_size))
    assert costs == {"__idle__": pytest.approx(3 * 0.068 / 6 + 3 * 0.136 / 6, abs=1e-12)}


def test_event_time_cases_store_the_same_table_however_batched(tmp_path: Path) -> None:
    for scenario in ("price_change_mid_hour", "metrics_server_gap", "duplicate_samples"):
        same_table_however_batched(tmp_path, scenario)


def test_a_pod_missing_from_a_scrape_is_still_charged_its_request(tmp_path: Path) -> None:
    """metrics-server leaves a running pod (500m / 1 GiB requested) out of one of three
    1-minute answers: its request is still reserved, 0.05 h x (0.5 cpu + 1 ram) =
    0.00099059 USD."""
    costs = first_hour(replayed(tmp_path, "metrics_server_gap", "1"))
    assert costs["api"] == pytest.approx(0.05 * (0.5 * CPU + 1 * RAM), abs=1e-15)
    assert round(costs["api"], 8) == 0.00099059


def test_a_native_sidecar_is_charged_its_requests(tmp_path: Path) -> None:
    """istio-proxy (an init container with restartPolicy Always) requests 500m / 512 MiB
    and uses 0.05 CPU / 100 MiB for the hour: 0.5 cpu + 0.5 ram = 0.0177177 USD."""
    data = replayed(tmp_path, "native_sidecar")
    costs = first_hour(data, "container")
    assert costs["istio-proxy"] == pytest.approx(0.5 * CPU + 0.5 * RAM, abs=1e-12)
    assert round(costs["istio-proxy"], 7) == 0.0177177
    assert costs["app"] == pytest.approx(0.25 * CPU + 0.25 * RAM, abs=1e-12)


def test_a_container_listed_twice_in_a_scrape_counts_once(tmp_path: Path) -> None:
    """Samples of 0.2 and 0.3 CPU of one container requesting 1 CPU / 2 GiB: 1 core-hour
    and 2 GiB-hours, 0.0396236 USD, not twice that."""
    data = replayed(tmp_path, "duplicate_samples")
    rows = stored(
        data,
        "SELECT cpu_core_hours, cpu_usage_core_hours, ram_gib_hours, total_cost "
        f"FROM v_cost_hourly WHERE pod = 'worker' AND {FIRST_HOUR}",
    ).row(0, named=True)
    assert rows["cpu_core_hours"] == pytest.approx(1.0, abs=1e-12)
    assert rows["cpu_usage_core_hours"] == pytest.approx(0.3, abs=1e-12)  # the larger sample
    assert rows["total_cost"] == pytest.approx(1 * CPU + 2 * RAM, abs=1e-12)
    assert round(rows["total_cost"], 6) == pytest.approx(0.039624, abs=1e-6)
    raw = stored(
        data, "SELECT count(), uniqExact(window_start) FROM raw_metrics WHERE pod = 'worker'"
    )
    assert raw.row(0) == (6, 6)  # one sample per scrape


def test_a_completed_owner_chain_moves_the_hour_to_the_deployment(tmp_path: Path) -> None:
    """A pod first published with its chain cut at ReplicaSet web-7d9f, completed to
    Deployment web at 00:15 (the collector's RESYNC once the owner arrived): the hour's
    cost lands on the Deployment, the attributes of its latest sample."""
    data = replayed(tmp_path, "owner_chain_completed")
    rows = stored(
        data,
        "SELECT controller_kind, controller_name FROM v_cost_hourly "
        f"WHERE NOT is_idle AND {FIRST_HOUR}",
    )
    assert rows.rows() == [("Deployment", "web")]


def test_a_window_across_an_hour_boundary_is_split_at_it(tmp_path: Path) -> None:
    """20-minute scrapes from 00:10: the one from 00:50 to 01:10 gives 10 minutes to each
    hour, so the first hour holds 50 minutes (0.08 USD of the m5.large) and the second 30
    (0.048); the pod (1 CPU / 1 GiB requested) is charged 50/60 of cpu + ram, then 30/60."""
    data = replayed(tmp_path, "window_across_hours")
    hours = stored(
        data,
        "SELECT window_start, pod, sum(total_cost) AS usd, sum(hours) AS hours "
        "FROM v_cost_hourly GROUP BY window_start, pod ORDER BY window_start, pod",
    )
    api = hours.filter(pl.col("pod") == "api")
    assert api["hours"].to_list()[:2] == [pytest.approx(50 / 60), pytest.approx(30 / 60)]
    assert api["usd"].to_list()[:2] == [
        pytest.approx((CPU + RAM) * 50 / 60, abs=1e-12),
        pytest.approx((CPU + RAM) * 30 / 60, abs=1e-12),
    ]
    nodes = hours.group_by("window_start").agg(pl.col("usd").sum()).sort("window_start")
    assert nodes["usd"].to_list()[:2] == [
        pytest.approx(0.08, abs=1e-12),
        pytest.approx(0.048, abs=1e-12),
    ]


def cost_command(data: Path, *options: str) -> str:
    """``kubeopera cost ... --window 1000d`` on the store at ``data``, as printed."""
    result = run_kubeopera(data, "cost", *options, "--window", "1000d")
    assert result.returncode == 0, result.stderr
    return result.stdout


def report_csv(data: Path, *options: str) -> dict[str, dict[str, float]]:
    """A ``kubeopera cost`` report as CSV: column -> namespace -> value."""
    frame = pl.read_csv(cost_command(data, *options, "--format", "csv").encode())
    return {
        column: dict(zip(frame["namespace"], frame[column], strict=True))
        for column in frame.columns
        if column != "namespace"
    }
