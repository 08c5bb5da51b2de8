"""Kafka for tests: reading a topic back whole, and running ``kubeopera worker`` on a
broker until it has committed everything."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError

from kubeopera.deploy.kafka import Broker
from kubeopera.models import Topic


def read_all(bootstrap: str, topic: str) -> list[ConsumerRecord]:
    """Every record of ``topic`` from the beginning to its current end, partition by partition."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    try:
        partitions = [
            TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        end = consumer.end_offsets(partitions)
        records: list[ConsumerRecord] = []
        while any(consumer.position(p) < end[p] for p in partitions):
            for batch in consumer.poll(timeout_ms=1000).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()


LOGS = ("--log-level", "info")  # rebalances and each batch acked, for a failure's report


def start_worker(
    broker: Broker,
    store: Path,
    app_id: str,
    data: Path,
    outage: Path | None = None,
    sasl: tuple[str, str] | None = None,
    options: tuple[str, ...] = (),
) -> subprocess.Popen[bytes]:
    """``kubeopera worker [OPTIONS]``; with ``outage``, one whose ClickHouse is away while
    that file exists (see outage_worker.py); with ``sasl``, one that logs in as that
    user."""
    env = {
        **os.environ,
        "KUBEOPERA_KAFKA__BOOTSTRAP_SERVERS": broker.bootstrap,
        "KUBEOPERA_STORAGE__PATH": str(store),
        "KUBEOPERA_STORAGE__RAW_RETENTION_DAYS": "0",
    }
    if sasl is not None:
        env |= sasl_env(broker, *sasl)
    command = ["kubeopera"]
    if outage is not None:
        env["OUTAGE_FLAG"] = str(outage)
        command = [sys.executable, str(Path(__file__).with_name("outage_worker.py"))]
    log = (data.parent / f"{app_id}.log").open("ab")
    return subprocess.Popen(
        [*command, "worker", "--app-id", app_id, "--data-dir", str(data), *LOGS, *options],
        env=env,
        stdout=log,
        stderr=log,
    )


def lag(broker: Broker, app_id: str) -> dict[str, tuple[int, int]]:
    """``topic[partition]`` -> (committed, end) for each input partition the group has not
    committed to its end."""
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap)
    try:
        try:
            committed = admin.list_group_offsets(app_id).get(app_id, {})
        except KafkaError:  # the group's coordinator is not there yet
            committed = {}
        inputs = [
            t.value
            for t in (Topic.PRICES, Topic.OBJECTS, Topic.EVENTS, Topic.METRICS, Topic.SERIES)
        ]
        partitions = [
            TopicPartition(t, p) for t in inputs for p in consumer.partitions_for_topic(t) or []
        ]
        ends = consumer.end_offsets(partitions)
        done = {tp: committed[tp].offset if tp in committed else 0 for tp in partitions}
        return {
            f"{tp.topic}[{tp.partition}]": (done[tp], ends[tp])
            for tp in partitions
            if done[tp] < ends[tp]
        }
    finally:
        admin.close()
        consumer.close()


def sasl_env(broker: Broker, user: str, password: str) -> dict[str, str]:
    return {
        "KUBEOPERA_KAFKA__BOOTSTRAP_SERVERS": broker.sasl_bootstrap,
        "KUBEOPERA_KAFKA__SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "KUBEOPERA_KAFKA__SASL_MECHANISM": "PLAIN",
        "KUBEOPERA_KAFKA__SASL_USERNAME": user,
        "KUBEOPERA_KAFKA__SASL_PASSWORD": password,
    }


def wait_until_drained(broker: Broker, app_id: str, *workers: subprocess.Popen[bytes]) -> None:
    """Until the group has committed every message of every input topic."""
    deadline = time.monotonic() + 240
    while behind := lag(broker, app_id):
        for worker in workers:
            assert worker.poll() is None, f"a worker exited: see {app_id}.log"
        if time.monotonic() > deadline:
            for worker in workers:
                print(log_tail(worker))  # shown with the failure
            raise AssertionError(f"the workers did not drain the topics: {behind}")
        time.sleep(1)
    time.sleep(2)  # the last acked batch is in ClickHouse before its offset commit


def log_tail(worker: subprocess.Popen[bytes], lines: int = 200) -> str:
    """The end of the log ``start_worker`` gave ``worker``."""
    args = [str(a) for a in worker.args]  # type: ignore[union-attr]
    data, app_id = Path(args[args.index("--data-dir") + 1]), args[args.index("--app-id") + 1]
    text = (data.parent / f"{app_id}.log").read_text(errors="replace")
    return "\n".join(text.splitlines()[-lines:])


def stop(*workers: subprocess.Popen[bytes]) -> None:
    for worker in workers:
        worker.send_signal(signal.SIGKILL)
        worker.wait()


def run_until_drained(
    broker: Broker,
    store: Path,
    app_id: str,
    data: Path,
    sasl: tuple[str, str] | None = None,
    options: tuple[str, ...] = (),
) -> None:
    worker = start_worker(broker, store, app_id, data, sasl=sasl, options=options)
    try:
        wait_until_drained(broker, app_id, worker)
    finally:
        stop(worker)
