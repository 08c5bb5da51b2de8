"""The event-time cost cases through the Kafka engine: the recorded inputs of
``tests/scenarios/`` published to a real broker as the collectors publish them, and the
Faust worker taking them one message at a time and in large batches, must store what
``kubeopera replay`` stores and the values worked out by hand in test_cost_cases.py.
"""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_tools import stored
from kafka import KafkaProducer
from kafka_tools import run_until_drained
from polars.testing import assert_frame_equal
from replay_tools import replay
from test_cost_cases import CPU, RAM, SCENARIOS

from kubeopera.collectors.topics import ensure_topics
from kubeopera.deploy.kafka import Broker, free_port

pytestmark = pytest.mark.integration  # starts its own Kafka broker

CASES = ["price_change_mid_hour", "metrics_server_gap", "duplicate_samples"]
FIRST_HOUR_COSTS = (
    "SELECT * EXCEPT id FROM v_cost_hourly "
    "WHERE window_start < toDateTime64('2026-03-02 01:00:00', 3, 'UTC') "
    "ORDER BY cluster, window_start, node, namespace, pod, pod_uid, container"
)
"""The hour every case is about (the worker leaves the last hour of a partition open
until later data arrives)."""


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """A broker of its own holding the cases' messages, published line by line in the
    order of their time, as the clusters' collectors would publish them live (the worker
    closes an hour for all nodes of a partition once its scrapes pass it)."""
    broker = Broker(state=tmp_path_factory.mktemp("kafka"), port=free_port())
    broker.up()
    ensure_topics(broker.bootstrap)
    records = [
        json.loads(line)
        for case in CASES
        for line in (SCENARIOS / f"{case}.jsonl").read_text().splitlines()
    ]
    records.sort(key=lambda r: r["value"].get("observed_at") or r["value"]["window_start"])
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    for record in records:
        producer.send(
            record["topic"],
            key=record["key"].encode(),
            value=json.dumps(record["value"]).encode(),
        )
    producer.flush()
    producer.close()
    yield broker
    broker.down()


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same cases through the embedded engine, one message at a time."""
    data = tmp_path_factory.mktemp("replayed")
    for case in CASES:
        result = replay(SCENARIOS / f"{case}.jsonl", data, "--batch-size", "1")
        assert result.returncode == 0, result.stderr
    return data


@pytest.mark.parametrize("batch_size", ["1", "5000"])
def test_the_worker_costs_the_event_time_cases_as_the_embedded_engine(
    broker: Broker, replayed: Path, tmp_path: Path, batch_size: str
) -> None:
    store = tmp_path / "store"
    app_id = f"cases-{batch_size}"
    options = ("--batch-size", batch_size)
    run_until_drained(broker, store, app_id, tmp_path / "worker", options=options)
    assert_frame_equal(
        stored(replayed, FIRST_HOUR_COSTS), stored(store, FIRST_HOUR_COSTS), check_exact=True
    )
    by_pod = dict(
        stored(
            store,
            "SELECT concat(cluster, '/', pod), sum(total_cost) FROM v_cost_hourly "
            "WHERE window_start = toDateTime64('2026-03-02 00:00:00', 3, 'UTC') "
            "GROUP BY cluster, pod",
        ).iter_rows()
    )
    assert by_pod["spotmarket/__idle__"] == pytest.approx(3 * 0.068 / 6 + 3 * 0.136 / 6, abs=1e-12)
    assert by_pod["gaps/api"] == pytest.approx(0.05 * (0.5 * CPU + 1 * RAM), abs=1e-15)
    assert by_pod["restarts/worker"] == pytest.approx(1 * CPU + 2 * RAM, abs=1e-12)
