"""The Faust worker on a real Apache Kafka broker: the same tables as the embedded
runner, every undecodable message dead-lettered with its reason, and nothing lost or
duplicated when it is killed again and again."""

import os
import random
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka_tools import (
    read_all,
    run_until_drained,
    sasl_env,
    start_worker,
    stop,
    wait_until_drained,
)

from kubeopera.collectors.publisher import Publisher
from kubeopera.collectors.simulator import FleetSpec, simulate
from kubeopera.collectors.topics import ensure_topics
from kubeopera.deploy.kafka import Broker, free_port
from kubeopera.models import MetricBatch, Topic
from kubeopera.sinks.clickhouse import ChdbBackend, Store
from kubeopera.streams.embedded import EmbeddedEngine

pytestmark = pytest.mark.integration  # starts its own Kafka brokers

START = datetime(2026, 3, 2, tzinfo=UTC)
SPEC = FleetSpec(
    clusters=2,
    pods_per_cluster=25,
    start=START,
    duration=timedelta(hours=4),
    resolution=timedelta(minutes=2),
    seed=21,
)
FLEET = FleetSpec(  # a longer stream: time to kill a worker mid-run, or to join one
    clusters=3,
    pods_per_cluster=40,
    start=START,
    duration=timedelta(hours=4),
    resolution=timedelta(minutes=1),
    seed=21,
)
CLOSED = START + timedelta(hours=3)  # the newest hour stays open until later data arrives
COST = (
    "SELECT * FROM cost_allocation_hourly FINAL "
    f"WHERE window_start < toDateTime64('{CLOSED:%Y-%m-%d %H:%M:%S}', 3, 'UTC') "
    "ORDER BY cluster, namespace, window_start, node, pod, pod_uid, container"
)
HISTORY = {
    "object_changes": "SELECT * FROM object_changes FINAL ORDER BY cluster, namespace, kind, "
    "name, observed_at, uid, resource_version, path",
    "findings": "SELECT * FROM findings FINAL ORDER BY cluster, namespace, fingerprint, last_seen",
    "series_hourly": "SELECT * FROM series_hourly FINAL "
    f"WHERE window_start < toDateTime64('{CLOSED:%Y-%m-%d %H:%M:%S}', 3, 'UTC') "
    "ORDER BY cluster, namespace, series_id, window_start",
}
"""The change timeline and the findings, whole: written as object changes arrive; the
anomaly detectors' hours (each with what its detector expected: a detector that lost
its state in a crash would expect otherwise), those closed."""
GARBAGE = [
    (Topic.METRICS, b"\xff\xfe not json"),
    (Topic.OBJECTS, b'{"schema_version": 1, "cluster": "c", "kind": "Pod", "na'),
    (
        Topic.PRICES,
        b'{"schema_version": 9, "cluster": "c", "node": "n", "observed_at": "2026"}',
    ),
    (Topic.EVENTS, b"[]"),
]


def loaded_broker(
    state: Path,
    spec: FleetSpec,
    metrics_until: datetime | None = None,
    sasl_users: dict[str, str] | None = None,
) -> Broker:
    """A broker of its own (other tests' messages must not reach these workers), holding
    the fleet's inventory, some garbage and its metrics (those before ``metrics_until``).
    With ``sasl_users`` it also has a SASL listener for them."""
    broker = Broker(state=state, port=free_port(), sasl_users=sasl_users or {})
    broker.up()
    ensure_topics(broker.bootstrap)
    messages = [m for step in simulate(spec) for m in step]
    with Publisher(broker.bootstrap) as publisher:  # inventory first, as a live fleet has it
        publisher.publish_all(m for m in messages if m[0] != Topic.METRICS)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    for topic, value in GARBAGE:
        producer.send(topic.value, key=b"garbage", value=value)
    producer.flush()
    producer.close()
    publish_metrics(broker, spec, START, metrics_until or spec.start + spec.duration)
    return broker


def publish_metrics(broker: Broker, spec: FleetSpec, since: datetime, until: datetime) -> None:
    with Publisher(broker.bootstrap) as publisher:
        publisher.publish_all(
            (topic, m)
            for step in simulate(spec)
            for topic, m in step
            if isinstance(m, MetricBatch) and since <= m.window_start < until
        )


def embedded_costs(folder: Path, spec: FleetSpec) -> pl.DataFrame:
    with Store(ChdbBackend(folder), 0) as store:
        EmbeddedEngine(store).run(simulate(spec))
        return store.query(COST)


SASL_USER = ("worker", "s3cret-for-tests")


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    broker = loaded_broker(tmp_path_factory.mktemp("kafka"), SPEC, sasl_users=dict([SASL_USER]))
    yield broker
    broker.down()


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> pl.DataFrame:
    return embedded_costs(tmp_path_factory.mktemp("embedded"), SPEC)


@pytest.fixture(scope="module")
def fleet_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    broker = loaded_broker(tmp_path_factory.mktemp("kafka"), FLEET)
    yield broker
    broker.down()


@pytest.fixture(scope="module")
def fleet_embedded_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("embedded")
    embedded_costs(folder, FLEET)
    return folder


@pytest.fixture(scope="module")
def fleet_embedded(fleet_embedded_store: Path) -> pl.DataFrame:
    return stored(fleet_embedded_store)[0]


def committed(broker: Broker, app_id: str, topic: Topic) -> dict[int, int]:
    """The group's committed offsets of ``topic``, by partition."""
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        offsets = admin.list_group_offsets(app_id).get(app_id, {})
        return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}
    finally:
        admin.close()


def stored(store: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    with Store(ChdbBackend(store), 0) as opened:
        letters = opened.query(
            "SELECT source_topic, error FROM deadletter FINAL ORDER BY source_topic"
        )
        return opened.query(COST), letters


def history(store: Path) -> dict[str, pl.DataFrame]:
    with Store(ChdbBackend(store), 0) as opened:
        return {table: opened.query(sql) for table, sql in HISTORY.items()}


def rollup_and_hourly_totals(store: Path) -> tuple[float, float]:
    with Store(ChdbBackend(store), 0) as opened:
        rollup = opened.query("SELECT sum(total_cost) FROM v_cost_by_namespace_daily").item()
        hourly = opened.query("SELECT sum(total_cost) FROM v_cost_hourly").item()
        return float(rollup), float(hourly)


def test_worker_tables_equal_the_embedded_runner(
    broker: Broker, embedded: pl.DataFrame, tmp_path: Path
) -> None:
    """Through the broker's SASL listener (PLAIN), as a secured production Kafka has it."""
    run_until_drained(
        broker, tmp_path / "store", "equivalence", tmp_path / "worker", sasl=SASL_USER
    )
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


def test_a_wrong_kafka_password_is_one_clear_line(broker: Broker, tmp_path: Path) -> None:
    env = {
        **os.environ,
        **sasl_env(broker, SASL_USER[0], "wrong"),
        "KUBEOPERA_STORAGE__PATH": str(tmp_path / "store"),
    }
    result = subprocess.run(
        ["kubeopera", "worker", "--data-dir", str(tmp_path / "worker")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"kubeopera: error: cannot reach Kafka at {broker.sasl_bootstrap}")
    assert "over SASL_PLAINTEXT" in line and "credentials" in line


def test_killed_again_and_again_the_worker_loses_and_duplicates_nothing(
    fleet_broker: Broker, fleet_embedded: pl.DataFrame, fleet_embedded_store: Path, tmp_path: Path
) -> None:
    """kill -9 at five random points of a run, restart each time: the final tables (costs,
    the change timeline, the findings, the anomaly detectors' hours) equal the embedded
    engine's, garbage is
    dead-lettered once, and the rollups fed by materialized views did not count a
    replayed hour twice."""
    store, data, app_id = tmp_path / "store", tmp_path / "worker", "crashy"
    chance = random.Random(7)
    for _ in range(5):
        worker = start_worker(fleet_broker, store, app_id, data)
        time.sleep(chance.uniform(7, 12))  # start-up and recovery take ~5 s; then mid-stream
        stop(worker)
        # Kafka keeps a killed member until its session times out (10 s): restart after
        # it left, as a Deployment's restart back-off does. (Restarted at once, the new
        # worker can be handed the dead member's partitions in a first generation; once,
        # under CI's load, the rebalance that follows the expiry left it there for
        # minutes. Not explained yet: see the issue 16 note.)
        wait_until_empty(fleet_broker, app_id)
    run_until_drained(fleet_broker, store, app_id, data)
    costs, letters = stored(store)
    assert costs.equals(fleet_embedded)
    expected = history(fleet_embedded_store)
    for table, frame in history(store).items():
        assert expected[table].height, f"{table}: nothing to compare"
        assert frame.drop("ingested_at", strict=False).equals(
            expected[table].drop("ingested_at", strict=False)
        ), table
    assert letters.height == len(GARBAGE)
    rollup, hourly = rollup_and_hourly_totals(store)
    assert rollup == pytest.approx(hourly, rel=1e-12)


def test_clickhouse_away_the_worker_pauses_then_resumes_and_loses_nothing(
    embedded: pl.DataFrame, tmp_path: Path
) -> None:
    """ClickHouse goes away once the worker runs, and then the metrics arrive: the
    worker retries, commits no offset of what it could not write, stays in its group,
    and once ClickHouse is back it writes exactly the embedded engine's table."""
    app_id, outage = "outage", tmp_path / "outage"
    broker = loaded_broker(tmp_path / "kafka", SPEC, metrics_until=START)  # no metrics yet
    worker = start_worker(broker, tmp_path / "store", app_id, tmp_path / "worker", outage)
    try:
        wait_until_drained(broker, app_id, worker)  # the inventory is in
        outage.touch()  # ClickHouse goes away
        before = committed(broker, app_id, Topic.METRICS)  # the garbage scrape was written
        publish_metrics(broker, SPEC, START, SPEC.start + SPEC.duration)
        refused = outage.with_suffix(".refused")
        deadline = time.monotonic() + 60
        while "raw_metrics" not in (refused.read_text() if refused.exists() else ""):
            assert worker.poll() is None and time.monotonic() < deadline, "no insert tried"
            time.sleep(0.5)
        time.sleep(10)  # retrying meanwhile
        assert worker.poll() is None
        assert members(broker, app_id) == 1  # heartbeats went on: still in its group
        assert committed(broker, app_id, Topic.METRICS) == before  # nothing written, no commit
        outage.unlink()  # ClickHouse is back
        wait_until_drained(broker, app_id, worker)
    finally:
        stop(worker)
        broker.down()
    assert refused.read_text().split().count("raw_metrics") >= 2  # it did retry
    costs, letters = stored(tmp_path / "store")
    assert costs.equals(embedded)
    assert letters.height == len(GARBAGE)


def wait_until_empty(broker: Broker, app_id: str) -> None:
    """Until the group has no member (a killed one's session expired)."""
    deadline = time.monotonic() + 60
    while members(broker, app_id, stable_only=False):
        assert time.monotonic() < deadline, f"{app_id}: a dead member stayed in the group"
        time.sleep(0.5)


def members(broker: Broker, app_id: str, stable_only: bool = True) -> int:
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        group = admin.describe_groups([app_id])[app_id]
        stable = group["group_state"] == "Stable"
        return len(group["members"]) if stable or not stable_only else 0
    finally:
        admin.close()


def test_a_second_worker_joining_mid_run_splits_the_work_and_the_totals_hold(
    embedded: pl.DataFrame, tmp_path: Path
) -> None:
    """Two workers in one group, the second joining mid-stream: the first takes the
    first two hours alone, the second joins, then the last two hours arrive. The
    partitions are split (both write cost rows) and together the workers write exactly
    the embedded engine's table. Each worker has its own chDB store (no ClickHouse
    server that runs the schema exists here), so the union of the two stores stands for
    the shared ReplacingMergeTree table: an hour closed by both across the rebalance
    must be the identical row, which that table (and ``unique`` here) keeps once."""
    app_id, half = "pair", START + timedelta(hours=2)
    broker = loaded_broker(tmp_path / "kafka", SPEC, metrics_until=half)
    workers = [start_worker(broker, tmp_path / "store-1", app_id, tmp_path / "worker-1")]
    try:
        wait_until_drained(broker, app_id, *workers)
        workers.append(start_worker(broker, tmp_path / "store-2", app_id, tmp_path / "worker-2"))
        deadline = time.monotonic() + 120
        while members(broker, app_id) < 2:
            assert time.monotonic() < deadline, "the second worker did not join"
            time.sleep(0.5)
        publish_metrics(broker, SPEC, half, SPEC.start + SPEC.duration)
        wait_until_drained(broker, app_id, *workers)
    finally:
        stop(*workers)
        broker.down()
    one, letters_one = stored(tmp_path / "store-1")
    two, letters_two = stored(tmp_path / "store-2")
    assert one.height > 0 and two.height > 0
    union = pl.concat([one, two]).unique()
    assert union.sort(union.columns).equals(embedded.sort(embedded.columns))
    letters = pl.concat([letters_one, letters_two]).unique()  # a shared table's FINAL
    assert sorted(letters["source_topic"]) == sorted(t.value for t, _ in GARBAGE)


def test_the_worker_says_what_it_is_doing_and_answers_its_probes(
    broker: Broker, tmp_path: Path
) -> None:
    """One line when it holds its partitions (broker, group, partitions, store), a
    progress line on schedule, and the probes a Deployment points at."""
    import re
    import urllib.error
    import urllib.request

    port = free_port()
    worker = start_worker(
        broker, tmp_path / "store", "talking", tmp_path / "worker",
        sasl=SASL_USER, options=("--progress-every", "0.2m", "--health-port", str(port)),
    )  # fmt: skip
    log = tmp_path / "talking.log"

    def said(pattern: str) -> re.Match[str] | None:
        return re.search(pattern, log.read_text(errors="replace"))

    def status(path: str) -> int:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
                return int(answer.status)
        except urllib.error.HTTPError as error:
            return error.code
        except OSError:
            return 0

    try:
        deadline = time.monotonic() + 180
        while not (ready := said(r"kubeopera worker: ready: broker (\S+), group talking, "
                                 r"partitions (.*), store (.*)")):  # fmt: skip
            assert worker.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
        assert ready[1].rstrip(",") in broker.sasl_bootstrap + broker.bootstrap
        assert "kubeopera.metrics.v1 0-11" in ready[2]
        assert str(tmp_path / "store") in ready[3]
        assert status("/healthz") == 200 and status("/readyz") == 200
        pattern = (
            r"progress: lag ([\d,]+) messages; ([\d,]+) messages in [\d,]+ batches, "
            r"([\d,]+) rows written, ([\d,]+) dead letters"
        )
        while True:  # the latest progress line, once the worker has read everything
            lines = re.findall(pattern, log.read_text(errors="replace"))
            numbers = [int(n.replace(",", "")) for n in lines[-1]] if lines else None
            if numbers and numbers[0] == 0 and numbers[3] == len(GARBAGE):
                break
            assert worker.poll() is None and time.monotonic() < deadline + 120, lines
            time.sleep(1)
        assert numbers[1] > 0 and numbers[2] > 0
    finally:
        stop(worker)
