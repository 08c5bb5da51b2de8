"""The production path on a real broker: Kafka -> Faust worker -> ClickHouse (chDB).

1. Throughput. A simulated fleet is published first; then, in the same run, a bare
   consumer (aiokafka, batches of the worker's size, decode + the raw inserts and
   nothing else) and the ``kubeopera worker`` (decode, state, cost allocation, all
   inserts, changelogs, commits after writes) each drain the ``metrics`` topic into a
   fresh store. Rates are container samples per second from ready (consumer assigned;
   worker's group stable) to the last scrape row written (``ingested_at``).
2. Steady load. A fresh broker and worker; metric batches are published at a steady
   rate (default 10k samples/s) for a while. Every second the group's lag (messages not
   yet committed) is sampled; afterwards each scrape's publish time is joined with the
   time its row was written: latency p50/p95/p99/max.
3. ClickHouse away. The same steady load; after 20 s ClickHouse goes away for a while
   (the worker of tests/outage_worker.py: every insert fails as a down server's would)
   while metrics keep arriving. Prints the worker's RSS before and during, the lag it
   built up, how long it took to drain once ClickHouse was back, and whether every
   scrape was written.

    python benchmarks/kafka_pipeline.py                  # 3 clusters, 8 h; 10k/s for 60 s
    python benchmarks/kafka_pipeline.py --duration 4h --rate 20000 --seconds 30
    python benchmarks/kafka_pipeline.py --only steady    # one of the three parts
"""

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
from aiokafka import AIOKafkaConsumer
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from machine import describe  # benchmarks/machine.py

from kubeopera.collectors.publisher import Publisher
from kubeopera.collectors.simulator import FleetSpec, simulate
from kubeopera.collectors.topics import ensure_topics
from kubeopera.deploy.kafka import Broker, free_port
from kubeopera.deploy.processes import stop_on_sigterm
from kubeopera.models import Message, MetricBatch, Topic
from kubeopera.settings.durations import parse_duration
from kubeopera.sinks.clickhouse import ChdbBackend, Store
from kubeopera.streams.decode import RawMessage, decode
from kubeopera.streams.embedded import EmbeddedEngine, tune_gc_for_batches
from kubeopera.streams.frames import samples_frame, scrapes_frame

CLEANUP = ExitStack()
"""Every broker and worker a run starts is stopped when the run ends, however it ends
(SIGTERM too: ``deploy.processes.stop_on_sigterm``)."""

START = datetime(2026, 3, 2, tzinfo=UTC)
BATCH = 2_000  # the worker's batch size (FaustOptions.batch_size)


@dataclass
class Fleet:
    spec: FleetSpec
    inventory: list[Message]
    metrics: Iterator[Message]


def fleet_metrics(simulated: Fleet) -> list[Message]:
    """The fleet's metrics again (``Fleet.metrics`` is read once)."""
    return [m for step in simulate(simulated.spec) for m in step if m[0] == Topic.METRICS]


def fleet(clusters: int, duration: timedelta) -> Fleet:
    """Inventory and prices first (as a live fleet has them), then metrics, lazily."""
    spec = FleetSpec(clusters=clusters, start=START, duration=duration)
    inventory = [m for step in simulate(spec) for m in step if m[0] != Topic.METRICS]
    metrics = (m for step in simulate(spec) for m in step if m[0] == Topic.METRICS)
    return Fleet(spec, inventory, metrics)


def samples_of(message: Message) -> int:
    assert isinstance(message[1], MetricBatch)
    return len(message[1].containers.pod)


def fresh_broker(folder: Path) -> Broker:
    broker = Broker(state=folder, port=free_port())
    CLEANUP.callback(broker.down)
    broker.up()
    ensure_topics(broker.bootstrap)
    return broker


def start_worker(
    broker: Broker, folder: Path, app_id: str, outage: Path | None = None
) -> subprocess.Popen[bytes]:
    """``kubeopera worker``; with ``outage``, one whose ClickHouse is away while that file
    exists."""
    env = {
        **os.environ,
        "KUBEOPERA_KAFKA__BOOTSTRAP_SERVERS": broker.bootstrap,
        "KUBEOPERA_STORAGE__PATH": str(folder / "store"),
        "KUBEOPERA_STORAGE__RAW_RETENTION_DAYS": "0",
    }
    command = ["kubeopera"]
    if outage is not None:
        env["OUTAGE_FLAG"] = str(outage)
        tests = Path(__file__).resolve().parents[1] / "tests"
        command = [sys.executable, str(tests / "outage_worker.py")]
    log = (folder / f"{app_id}.log").open("ab")
    command += ["worker", "--app-id", app_id, "--data-dir", str(folder / "worker")]
    command += ["--log-level", os.environ.get("BENCH_WORKER_LOG_LEVEL", "warning")]
    worker = subprocess.Popen(command, env=env, stdout=log, stderr=log)
    CLEANUP.callback(lambda: worker.poll() is None and stop(worker))
    return worker


def stop(worker: subprocess.Popen[bytes]) -> int:
    """Stop the worker; returns its peak RSS in MiB."""
    peak = peak_rss_mib(worker.pid)
    worker.terminate()
    try:
        worker.wait(timeout=30)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()
    return peak


def peak_rss_mib(pid: int) -> int:
    return _status_mib(pid, "VmHWM:")


def rss_mib(pid: int) -> int:
    return _status_mib(pid, "VmRSS:")


def _status_mib(pid: int, field_name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name):
            return int(line.split()[1]) // 1024
    return 0


def group_stable(broker: Broker, app_id: str) -> bool:
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        group = admin.describe_groups([app_id])[app_id]
        return bool(group["group_state"] == "Stable" and group["members"])
    except KafkaError:
        return False
    finally:
        admin.close()


def lag(broker: Broker, app_id: str, topic: Topic) -> int:
    """Messages of ``topic`` the group has not committed yet."""
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap)
    try:
        try:
            committed = admin.list_group_offsets(app_id).get(app_id, {})
        except KafkaError:
            committed = {}
        partitions = [
            TopicPartition(topic.value, p) for p in consumer.partitions_for_topic(topic.value) or []
        ]
        ends = consumer.end_offsets(partitions)
        done = {tp: meta.offset for tp, meta in committed.items()}
        return sum(end - done.get(tp, 0) for tp, end in ends.items())
    finally:
        admin.close()
        consumer.close()


def wait_for(condition: object, what: str, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.2)


def written_scrapes(store: Path) -> pl.DataFrame:
    with Store(ChdbBackend(store), 0) as opened:
        return opened.query(
            "SELECT cluster, node, window_start, ingested_at FROM raw_node_metrics FINAL"
        )


# -- 1. throughput -------------------------------------------------------------------


async def bare_consumer(broker: Broker, store: Store, messages: int) -> float:
    """Drain ``metrics`` with only decode + the raw inserts; returns the seconds taken."""
    consumer = AIOKafkaConsumer(
        Topic.METRICS.value,
        bootstrap_servers=broker.bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        while not consumer.assignment():
            await asyncio.sleep(0.05)
        began, seen = time.perf_counter(), 0
        while seen < messages:
            fetched = await consumer.getmany(timeout_ms=1000, max_records=BATCH)
            records = [r for rs in fetched.values() for r in rs]
            seen += len(records)
            decoded = [decode(RawMessage(topic=r.topic, value=r.value)) for r in records]
            batches = [m for m in decoded if isinstance(m, MetricBatch)]
            store.insert("raw_metrics", samples_frame(batches))
            store.insert("raw_node_metrics", scrapes_frame(batches))
        return time.perf_counter() - began
    finally:
        await consumer.stop()


def throughput(folder: Path, clusters: int, duration: timedelta) -> None:
    simulated = fleet(clusters, duration)
    broker = fresh_broker(folder / "kafka")
    try:
        metrics = list(simulated.metrics)
        scrapes, samples = len(metrics), sum(samples_of(m) for m in metrics)
        with Publisher(broker.bootstrap) as publisher:
            publisher.publish_all(simulated.inventory)
            publisher.publish_all(metrics)
        print(f"published {scrapes:,} scrapes, {samples:,} container samples")
        del metrics

        with Store(ChdbBackend(folder / "bare"), 0) as store:
            bare_s = asyncio.run(bare_consumer(broker, store, scrapes))
        bare_rate = samples / bare_s
        print(f"bare consumer (decode + raw inserts): {bare_s:.1f} s, {bare_rate:,.0f} samples/s")

        began = time.time()
        worker = start_worker(broker, folder, "bench-throughput")
        wait_for(lambda: group_stable(broker, "bench-throughput"), "the worker's group")
        ready = time.time()
        wait_for(lambda: lag(broker, "bench-throughput", Topic.METRICS) == 0, "the drain")
        peak = stop(worker)
        rows = written_scrapes(folder / "store")
        last = rows["ingested_at"].max()
        assert isinstance(last, datetime)
        worker_s = last.timestamp() - ready
        worker_rate = samples / worker_s
        print(
            f"Faust worker (full pipeline): {worker_s:.1f} s from ready "
            f"({last.timestamp() - began:.1f} s from start), {worker_rate:,.0f} samples/s, "
            f"peak RSS {peak} MiB"
        )
        print(f"ratio worker / bare: {worker_rate / bare_rate:.2f} (target >= 0.8)")
        embedded_rate = embedded(folder / "embedded", simulated)
        print(f"embedded engine (same input, same pipeline): {embedded_rate:,.0f} samples/s")
        print(f"ratio worker / embedded: {worker_rate / embedded_rate:.2f} (target >= 0.5)")
    finally:
        broker.down()


def embedded(folder: Path, simulated: Fleet) -> float:
    """The embedded engine on the same messages as bytes (as the worker reads them), in
    batches of the worker's size: samples per second of decoding, processing and
    writing (the bytes are in memory first)."""
    messages = [*simulated.inventory, *fleet_metrics(simulated)]
    samples = sum(samples_of(m) for m in messages if m[0] == Topic.METRICS)
    raws = [RawMessage(topic.value, m.model_dump_json().encode()) for topic, m in messages]
    del messages
    tune_gc_for_batches()  # as the worker does
    with Store(ChdbBackend(folder), 0) as store:
        engine = EmbeddedEngine(store)
        began = time.perf_counter()
        for start in range(0, len(raws), BATCH):
            engine.process_raw(raws[start : start + BATCH])
        engine.finish()
        return samples / (time.perf_counter() - began)


# -- 2. steady load ------------------------------------------------------------------


@dataclass
class SteadyLoad:
    """Metric batches published at a steady rate, remembering when each went out."""

    broker: Broker
    metrics: Iterator[Message]
    rate: int  # container samples per second
    published: dict[tuple[str, str, datetime], float] = field(default_factory=dict)
    sent: int = 0  # samples

    def run(self, seconds: float, every_second: Callable[[], None]) -> float:
        """Publish for ``seconds``, calling ``every_second``; returns the time taken."""
        began = next_tick = time.monotonic()
        quota = self.sent
        with Publisher(self.broker.bootstrap) as publisher:
            while (now := time.monotonic()) - began < seconds:
                while self.sent - quota < self.rate * (now - began):
                    topic, message = next(self.metrics)
                    assert isinstance(message, MetricBatch)
                    publisher.publish(topic, message)
                    key = (message.cluster, message.node, message.window_start)
                    self.published[key] = time.time()
                    self.sent += samples_of((topic, message))
                publisher.flush()
                if now >= next_tick:
                    every_second()
                    next_tick += 1.0
                time.sleep(0.02)
        return time.monotonic() - began


def ready_worker(
    folder: Path, clusters: int, app_id: str, outage: Path | None = None
) -> tuple[Broker, subprocess.Popen[bytes], Iterator[Message]]:
    """A fresh broker holding a fleet's inventory, and a worker that has read it."""
    simulated = fleet(clusters, timedelta(days=30))  # far more than a run publishes
    broker = fresh_broker(folder / "kafka")
    with Publisher(broker.bootstrap) as publisher:
        publisher.publish_all(simulated.inventory)
    worker = start_worker(broker, folder, app_id, outage)
    wait_for(lambda: group_stable(broker, app_id), "the worker's group")
    wait_for(lambda: lag(broker, app_id, Topic.OBJECTS) == 0, "the inventory")
    return broker, worker, simulated.metrics


def steady(folder: Path, clusters: int, rate: int, seconds: float) -> None:
    app_id = "bench-steady"
    broker, worker, metrics = ready_worker(folder, clusters, app_id)
    try:
        load = SteadyLoad(broker, metrics, rate)
        lags: list[int] = []
        elapsed = load.run(seconds, lambda: lags.append(lag(broker, app_id, Topic.METRICS)))
        wait_for(lambda: lag(broker, app_id, Topic.METRICS) == 0, "the drain")
        peak = stop(worker)
    finally:
        broker.down()
    rows = written_scrapes(folder / "store")
    latencies = sorted(
        at.timestamp() - load.published[(cluster, node, start.replace(tzinfo=UTC))]
        for cluster, node, start, at in rows.iter_rows()
    )
    q = statistics.quantiles(latencies, n=100)
    print(
        f"steady {load.sent / elapsed:,.0f} samples/s for {elapsed:.0f} s "
        f"({len(load.published):,} scrapes published, {len(latencies):,} written)"
    )
    print(
        f"consumer lag (messages): mean {statistics.fmean(lags):.0f}, max {max(lags)}; "
        f"publish -> row latency: p50 {q[49]:.2f} s, p95 {q[94]:.2f} s, "
        f"p99 {q[98]:.2f} s, max {latencies[-1]:.2f} s; worker peak RSS {peak} MiB"
    )


# -- 3. ClickHouse away --------------------------------------------------------------


def outage(folder: Path, clusters: int, rate: int, seconds: float) -> None:
    app_id, flag = "bench-outage", folder / "outage"
    broker, worker, metrics = ready_worker(folder, clusters, app_id, outage=flag)
    try:
        load = SteadyLoad(broker, metrics, rate)
        before: list[int] = []
        load.run(20, lambda: before.append(rss_mib(worker.pid)))
        flag.touch()
        during: list[int] = []
        load.run(seconds, lambda: during.append(rss_mib(worker.pid)))
        backlog = lag(broker, app_id, Topic.METRICS)
        flag.unlink()
        back = time.monotonic()
        wait_for(lambda: lag(broker, app_id, Topic.METRICS) == 0, "the drain")
        recovered = time.monotonic() - back
        stop(worker)
    finally:
        broker.down()
    written = written_scrapes(folder / "store").height
    print(
        f"ClickHouse away {seconds:.0f} s under {rate:,} samples/s: worker RSS "
        f"{max(before)} MiB before, {min(during)}-{max(during)} MiB while away "
        f"(first/last second {during[0]}/{during[-1]} MiB); lag {backlog:,} messages when "
        f"it came back, drained {recovered:.1f} s later; "
        f"{written:,} of {len(load.published):,} scrapes written"
    )


def main() -> None:
    print(describe(), flush=True)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clusters", type=int, default=3)
    parser.add_argument("--duration", default="8h", help="simulated span for the throughput run")
    parser.add_argument("--rate", type=int, default=10_000, help="steady samples/s")
    parser.add_argument("--seconds", type=float, default=60, help="length of the steady run")
    parser.add_argument("--outage", type=float, default=60, help="seconds ClickHouse is away")
    parser.add_argument(
        "--only", choices=["throughput", "steady", "outage"], help="run one part of the three"
    )
    args = parser.parse_args()
    stop_on_sigterm()
    with CLEANUP:
        run(args)


def run(args: argparse.Namespace) -> None:
    """The parts asked for, each in a temporary folder that goes after its processes
    (``CLEANUP`` unwinds in reverse)."""
    if args.only in (None, "throughput"):
        throughput(folder(), args.clusters, parse_duration(args.duration))
    if args.only in (None, "steady"):
        steady(folder(), args.clusters, args.rate, args.seconds)
    if args.only in (None, "outage"):
        outage(folder(), args.clusters, args.rate, args.outage)


def folder() -> Path:
    return Path(CLEANUP.enter_context(tempfile.TemporaryDirectory()))


if __name__ == "__main__":
    main()
