"""The Faust worker on a real Apache Kafka broker: the same tables as the embedded
runner, every undecodable message dead-lettered with its reason, and nothing lost or
duplicated when it is killed again and again."""

import os
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError
from kafka_tools import read_all

from kubeopera.collectors.publisher import Publisher
from kubeopera.collectors.simulator import FleetSpec, simulate
from kubeopera.collectors.topics import ensure_topics
from kubeopera.deploy.kafka import Broker, free_port
from kubeopera.models import Topic
from kubeopera.models.catalogue import Catalogue
from kubeopera.sinks.clickhouse import ChdbBackend, Store
from kubeopera.streams.runner import EmbeddedRunner

START = datetime(2026, 3, 2, tzinfo=UTC)
SPEC = FleetSpec(
    clusters=2,
    pods_per_cluster=25,
    start=START,
    duration=timedelta(hours=4),
    resolution=timedelta(minutes=2),
    seed=21,
)
CLOSED = START + timedelta(hours=3)  # the newest hour stays open until later data arrives
COST = (
    "SELECT * FROM cost_allocation_hourly FINAL "
    f"WHERE window_start < toDateTime64('{CLOSED:%Y-%m-%d %H:%M:%S}', 3, 'UTC') "
    "ORDER BY cluster, namespace, window_start, node, pod, pod_uid, container"
)
GARBAGE = [
    (Topic.METRICS, b"\xff\xfe not json"),
    (Topic.OBJECTS, b'{"schema_version": 1, "cluster": "c", "kind": "Pod", "na'),
    (
        Topic.PRICES,
        b'{"schema_version": 9, "cluster": "c", "node": "n", "observed_at": "2026"}',
    ),
    (Topic.EVENTS, b"[]"),
]


def loaded_broker(state: Path, spec: FleetSpec) -> Broker:
    """A broker of its own (other tests' messages must not reach these workers), holding
    the fleet's streams and some garbage."""
    broker = Broker(state=state, port=free_port())
    broker.up()
    ensure_topics(broker.bootstrap)
    messages = [m for step in simulate(spec) for m in step]
    with Publisher(broker.bootstrap) as publisher:  # inventory first, as a live fleet has it
        publisher.publish_all(m for m in messages if m[0] != Topic.METRICS)
        publisher.publish_all(m for m in messages if m[0] == Topic.METRICS)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    for topic, value in GARBAGE:
        producer.send(topic.value, key=b"garbage", value=value)
    producer.flush()
    producer.close()
    return broker


def embedded_costs(folder: Path, spec: FleetSpec) -> pl.DataFrame:
    with Store(ChdbBackend(folder), 0) as store:
        EmbeddedRunner(store, Catalogue.builtin()).run(simulate(spec))
        return store.query(COST)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    broker = loaded_broker(tmp_path_factory.mktemp("kafka"), SPEC)
    yield broker
    broker.down()


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> pl.DataFrame:
    return embedded_costs(tmp_path_factory.mktemp("embedded"), SPEC)


def start_worker(broker: Broker, store: Path, app_id: str, data: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "KUBEOPERA_KAFKA__BOOTSTRAP_SERVERS": broker.bootstrap,
        "KUBEOPERA_STORAGE__PATH": str(store),
        "KUBEOPERA_STORAGE__RAW_RETENTION_DAYS": "0",
    }
    log = (data.parent / f"{app_id}.log").open("ab")
    return subprocess.Popen(
        ["kubeopera", "worker", "--app-id", app_id, "--data-dir", str(data)],
        env=env,
        stdout=log,
        stderr=log,
    )


def drained(broker: Broker, app_id: str) -> bool:
    """Every message of every input topic is committed by the group."""
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap)
    try:
        try:
            committed = admin.list_group_offsets(app_id).get(app_id, {})
        except KafkaError:  # the group's coordinator is not there yet
            return False
        inputs = [t.value for t in (Topic.PRICES, Topic.OBJECTS, Topic.EVENTS, Topic.METRICS)]
        partitions = [
            TopicPartition(t, p) for t in inputs for p in consumer.partitions_for_topic(t) or []
        ]
        ends = consumer.end_offsets(partitions)
        return all(
            ends[tp] == 0 or (tp in committed and committed[tp].offset >= ends[tp])
            for tp in partitions
        )
    finally:
        admin.close()
        consumer.close()


def run_until_drained(broker: Broker, store: Path, app_id: str, data: Path) -> None:
    worker = start_worker(broker, store, app_id, data)
    try:
        deadline = time.monotonic() + 240
        while not drained(broker, app_id):
            assert worker.poll() is None, f"the worker exited: see {data.parent / app_id}.log"
            assert time.monotonic() < deadline, "the worker did not drain the topics"
            time.sleep(1)
        time.sleep(2)  # the last acked batch is in ClickHouse before its offset commit
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()


def stored(store: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    with Store(ChdbBackend(store), 0) as opened:
        letters = opened.query(
            "SELECT source_topic, error FROM deadletter FINAL ORDER BY source_topic"
        )
        return opened.query(COST), letters


def rollup_and_hourly_totals(store: Path) -> tuple[float, float]:
    with Store(ChdbBackend(store), 0) as opened:
        rollup = opened.query("SELECT sum(total_cost) FROM v_cost_by_namespace_daily").item()
        hourly = opened.query("SELECT sum(total_cost) FROM v_cost_hourly").item()
        return float(rollup), float(hourly)


def test_worker_tables_equal_the_embedded_runner(
    broker: Broker, embedded: pl.DataFrame, tmp_path: Path
) -> None:
    run_until_drained(broker, tmp_path / "store", "equivalence", tmp_path / "worker")
    costs, letters = stored(tmp_path / "store")
    assert costs.height == embedded.height > 0
    assert costs.equals(embedded)
    reasons = dict(letters.iter_rows())  # every piece of garbage, with its reason
    assert sorted(reasons) == sorted(t.value for t, _ in GARBAGE)
    assert "Invalid JSON" in reasons[Topic.METRICS.value]
    assert "EOF while parsing" in reasons[Topic.OBJECTS.value]
    assert "schema_version: Input should be 1" in reasons[Topic.PRICES.value]
    assert "Input should be an object" in reasons[Topic.EVENTS.value]
    dead = read_all(broker.bootstrap, Topic.DEADLETTER.value)
    assert len(dead) == len(GARBAGE)


def test_killed_again_and_again_the_worker_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    """kill -9 at five random points of a run, restart each time: the final tables equal
    the embedded runner's, garbage is dead-lettered once, and the rollups fed by
    materialized views did not count a replayed hour twice."""
    spec = FleetSpec(
        clusters=3,
        pods_per_cluster=40,
        start=START,
        duration=timedelta(hours=4),
        resolution=timedelta(minutes=1),
        seed=21,
    )
    broker = loaded_broker(tmp_path / "kafka", spec)
    try:
        store, data, app_id = tmp_path / "store", tmp_path / "worker", "crashy"
        chance = random.Random(7)
        for _ in range(5):
            worker = start_worker(broker, store, app_id, data)
            time.sleep(chance.uniform(7, 12))  # start-up and recovery take ~5 s; then mid-stream
            worker.send_signal(signal.SIGKILL)
            worker.wait()
        run_until_drained(broker, store, app_id, data)
    finally:
        broker.down()
    costs, letters = stored(store)
    assert costs.equals(embedded_costs(tmp_path / "embedded", spec))
    assert letters.height == len(GARBAGE)
    rollup, hourly = rollup_and_hourly_totals(store)
    assert rollup == pytest.approx(hourly, rel=1e-12)
