"""``kubeopera replay``: a recorded topic dump through the embedded pipeline, run as a user
runs it, with costs worked out by hand."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from builders import namespace, node_price, pod, scrape
from cli_tools import stored
from polars.testing import assert_frame_equal
from replay_tools import replay, write_jsonl

from kubeopera.models import Contract, Topic

pytestmark = pytest.mark.slow  # `kubeopera replay` as a user runs it

START = datetime(2026, 3, 2, tzinfo=UTC)

# OpenCost's split of an m5.large's 0.096 USD/h over 2 vCPU and 8 GiB, r = CPU/RAM default.
R = 0.031611 / 0.004237
RAM = 0.096 / (2 * R + 8)  # USD per GiB-hour
CPU = RAM * R  # USD per core-hour
POD_COST = 1 * CPU + 2 * RAM  # 1 CPU and 2 GiB requested for the hour, usage below both

COSTS = "SELECT pod, is_idle, total_cost FROM cost_allocation_hourly FINAL ORDER BY pod"
COST_TABLE = (
    "SELECT * FROM cost_allocation_hourly FINAL ORDER BY cluster, node, namespace, pod, container"
)


def one_pod_hour(start: datetime = START) -> list[Contract]:
    """One m5.large, one pod requesting 1 CPU / 2 GiB, six 10-minute scrapes of an hour."""
    return [
        node_price("c1", "node-a", "m5.large", start),
        namespace("c1", "shop", start, team="payments"),
        pod("c1", "shop", "p1", "node-a", start, cpu_request=1, memory_request_gib=2),
        *(
            scrape(
                "c1",
                "node-a",
                start + timedelta(minutes=10 * i),
                10,
                (2, 8),
                {("shop", "p1"): (0.5, 1.0)},
            )
            for i in range(6)
        ),
    ]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``one_pod_hour`` as a replay file."""
    path = tmp_path_factory.mktemp("replay") / "one-pod-hour.jsonl"
    write_jsonl(path, one_pod_hour())
    return path


@pytest.fixture(scope="module")
def replayed(recorded: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The store ``recorded`` was replayed into with the default batch size."""
    data = tmp_path_factory.mktemp("default") / "clickhouse"
    result = replay(recorded, data)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        f"Replayed 9 messages (0 dead letters) into embedded ClickHouse (chDB) at {data}, "
        "database kubeopera: 2 cost rows\n"
    )
    return data


def test_the_pods_hour_costs_what_opencost_charges(replayed: Path) -> None:
    costs = stored(replayed, COSTS)
    assert costs["pod"].to_list() == ["__idle__", "p1"]
    pod_cost = costs.filter(pl.col("pod") == "p1")["total_cost"].item()
    assert pod_cost == pytest.approx(POD_COST, abs=1e-12)  # 0.0396236
    assert costs["total_cost"].sum() == pytest.approx(0.096, abs=1e-12)  # the node's hour
    assert stored(replayed, "SELECT count() FROM deadletter").item() == 0


def test_bad_lines_are_dead_lettered_with_their_line_number(
    recorded: Path, replayed: Path, tmp_path: Path
) -> None:
    lines = recorded.read_text().splitlines()
    negative = json.loads(lines[4])  # the second scrape, its CPU usage made negative
    negative["value"]["containers"]["cpu_cores"] = [-0.5]
    unknown = json.dumps({"topic": "kubeopera.bogus.v1", "key": "k", "value": {}})
    garbled = [
        *lines[:2],
        "",  # line 3, blank: skipped, still counted
        "not JSON {",  # line 4
        lines[2],
        unknown,  # line 6
        *lines[3:5],
        json.dumps(negative),  # line 9
        *lines[5:],
    ]
    path = tmp_path / "garbled.jsonl"
    path.write_text("\n".join(garbled) + "\n")
    data = tmp_path / "clickhouse"

    result = replay(path, data)

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Replayed 12 messages (3 dead letters) into ")
    assert_frame_equal(stored(data, COSTS), stored(replayed, COSTS), check_exact=True)
    letters = stored(
        data, "SELECT offset, source_topic, raw, error FROM deadletter ORDER BY offset"
    )
    assert letters["offset"].to_list() == [4, 6, 9]
    assert letters["source_topic"].to_list() == ["", "kubeopera.bogus.v1", Topic.METRICS.value]
    assert letters["raw"].to_list() == [garbled[3], unknown, json.dumps(negative)]
    assert letters["error"].to_list() == [
        "line 4: not JSON: Expecting value at column 1",
        "line 6: unknown topic 'kubeopera.bogus.v1'",
        "line 9: invalid kubeopera.metrics.v1 message: "
        "containers.cpu_cores.0: Input should be greater than or equal to 0",
    ]


@pytest.mark.parametrize("batch_size", ["1", "2"])
def test_the_batch_size_never_changes_the_costs(
    recorded: Path, replayed: Path, tmp_path: Path, batch_size: str
) -> None:
    data = tmp_path / "clickhouse"
    result = replay(recorded, data, "--batch-size", batch_size)
    assert result.returncode == 0, result.stderr
    assert_frame_equal(stored(data, COST_TABLE), stored(replayed, COST_TABLE), check_exact=True)


def test_standard_input_is_read_with_a_dash(recorded: Path, replayed: Path, tmp_path: Path) -> None:
    data = tmp_path / "clickhouse"
    result = replay("-", data, stdin=recorded.read_text())
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Replayed 9 messages (0 dead letters) into ")
    assert_frame_equal(stored(data, COST_TABLE), stored(replayed, COST_TABLE), check_exact=True)


def test_a_replay_adds_to_the_store_and_a_repeated_one_counts_once(
    recorded: Path, tmp_path: Path
) -> None:
    data = tmp_path / "clickhouse"
    next_hour = tmp_path / "next-hour.jsonl"
    write_jsonl(next_hour, one_pod_hour(START + timedelta(hours=1)))
    for path in (recorded, recorded, next_hour):
        result = replay(path, data)
        assert result.returncode == 0, result.stderr
    hours = stored(
        data,
        "SELECT window_start, sum(total_cost) AS usd FROM cost_allocation_hourly "
        "GROUP BY window_start ORDER BY window_start",
    )
    assert hours["window_start"].to_list() == [START, START + timedelta(hours=1)]
    assert hours["usd"].to_list() == pytest.approx([0.096, 0.096], abs=1e-12)


def test_bad_arguments_print_one_clear_line(tmp_path: Path) -> None:
    absent = tmp_path / "absent.jsonl"
    for args, message in [
        ([str(absent)], f"Invalid value for 'FILE': '{absent}': No such file or directory"),
        (["-", "--batch-size", "0"], "Invalid value for '--batch-size': 0 is not in the range"),
    ]:
        result = replay(args[0], tmp_path / "clickhouse", *args[1:], stdin="")
        assert result.returncode == 2
        assert result.stdout == ""
        lines = result.stderr.splitlines()
        assert len(lines) == 1, lines
        assert lines[0].startswith("kubeopera: error: ") and message in lines[0]
