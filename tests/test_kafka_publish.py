"""Collectors on a real Apache Kafka broker: topics, keyed publishing, backpressure,
and a broker restart in the middle of publishing."""

import os
import re
import subprocess
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType
from kafka_tools import read_all

from kubeopera.collectors.publisher import Publisher
from kubeopera.collectors.simulator import FleetSpec, simulate
from kubeopera.collectors.topics import ensure_topics
from kubeopera.deploy.kafka import Broker, free_port
from kubeopera.models import TOPIC_MODELS, TOPIC_SETTINGS, Topic, message_key

pytestmark = pytest.mark.integration  # a real Kafka broker

START = datetime(2026, 3, 2, tzinfo=UTC)


def test_topics_are_created_once_with_their_settings(kafka: Broker) -> None:
    created = ensure_topics(kafka.bootstrap)
    assert sorted(created) == sorted(t.value for t in Topic)
    assert ensure_topics(kafka.bootstrap) == []
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    try:
        described = {
            t["name"]: len(t["partitions"]) for t in admin.describe_topics([t.value for t in Topic])
        }
        assert described == {t.value: s.partitions for t, s in TOPIC_SETTINGS.items()}
        resource = ConfigResource(ConfigResourceType.TOPIC, Topic.OBJECTS.value)
        entries = admin.describe_configs([resource])["topic"][Topic.OBJECTS.value]
        assert entries["cleanup.policy"]["value"] == "compact,delete"
        assert entries["retention.ms"]["value"] == str(14 * 24 * 3600 * 1000)
    finally:
        admin.close()


def test_a_simulated_fleet_arrives_keyed_and_intact(kafka: Broker) -> None:
    ensure_topics(kafka.bootstrap)
    spec = FleetSpec(
        clusters=1,
        pods_per_cluster=20,
        start=START,
        duration=timedelta(minutes=30),
        resolution=timedelta(minutes=5),
        seed=3,
    )
    messages = [m for step in simulate(spec) for m in step]
    with Publisher(kafka.bootstrap) as publisher:
        publisher.publish_all(messages)
    assert (publisher.stats.sent, publisher.stats.failed) == (len(messages), 0)
    for topic in (Topic.OBJECTS, Topic.EVENTS, Topic.METRICS, Topic.PRICES):
        sent = [m for t, m in messages if t == topic]
        records = read_all(kafka.bootstrap, topic.value)
        assert len(records) == len(sent), topic
        model = TOPIC_MODELS[topic]
        decoded = [(r.key.decode(), model.model_validate_json(r.value)) for r in records]
        assert all(key == message_key(m) for key, m in decoded)
        assert sorted(k for k, _ in decoded) == sorted(message_key(m) for m in sent)
        assert Counter(m.model_dump_json() for _, m in decoded) == Counter(
            m.model_dump_json() for m in sent
        )
        by_key: dict[str, list[int]] = {}
        for record in records:  # one key always lands in one partition, in publish order
            by_key.setdefault(record.key.decode(), []).append(record.partition)
        assert all(len(set(parts)) == 1 for parts in by_key.values())


def test_publishing_blocks_instead_of_buffering_without_bound(kafka: Broker) -> None:
    ensure_topics(kafka.bootstrap)
    spec = FleetSpec(clusters=1, pods_per_cluster=20, start=START, duration=timedelta(minutes=20))
    publisher = Publisher(kafka.bootstrap, max_in_flight=25, linger_ms=50)
    most = 0
    for topic, message in (m for step in simulate(spec) for m in step):
        publisher.publish(topic, message)
        most = max(most, len(publisher._pending))
    publisher.close()
    assert most == 25
    assert publisher.stats.failed == 0


def test_broker_restart_while_publishing_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    broker = Broker(state=tmp_path / "kafka", port=free_port())
    broker.up()
    try:
        ensure_topics(broker.bootstrap, partitions=3)
        spec = FleetSpec(
            clusters=2,
            pods_per_cluster=30,
            start=START,
            duration=timedelta(hours=2),
            resolution=timedelta(minutes=1),
            seed=9,
        )
        metrics = [m for step in simulate(spec) for t, m in step if t == Topic.METRICS]
        publisher = Publisher(broker.bootstrap, max_in_flight=500, delivery_timeout_s=120)
        progress = threading.Event()

        def publish() -> None:
            for index, message in enumerate(metrics):
                publisher.publish(Topic.METRICS, message)
                if index == len(metrics) // 3:
                    progress.set()
                time.sleep(0.0005)
            publisher.flush()

        worker = threading.Thread(target=publish)
        worker.start()
        assert progress.wait(60)
        broker.down()  # mid-stream: the publisher must block and retry, not drop
        time.sleep(3)
        broker.up()
        worker.join(180)
        assert not worker.is_alive()
        publisher.close()
        assert (publisher.stats.sent, publisher.stats.failed) == (len(metrics), 0)
        records = read_all(broker.bootstrap, Topic.METRICS.value)
        values = Counter(r.value for r in records)
        assert len(records) == len(metrics)
        assert values == Counter(m.model_dump_json().encode() for m in metrics)
    finally:
        broker.down()


def test_collect_command_publishes_what_it_reports(kafka: Broker, tmp_path: Path) -> None:
    env = {**os.environ, "KUBEOPERA_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap}
    ensure_topics(kafka.bootstrap)
    before = len(read_all(kafka.bootstrap, Topic.PRICES.value))
    result = subprocess.run(
        [
            "kubeopera",
            "collect",
            "--simulate",
            "--clusters",
            "1",
            "--pods-per-cluster",
            "10",
            "--duration",
            "15m",
            "--resolution",
            "5m",
            "--start",
            "2026-03-02",
        ],
        capture_output=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    published = int(
        re.search(r"published ([\d,]+) messages", result.stdout.decode())[1].replace(",", "")
    )  # type: ignore[index]
    topics = [t.value for t in (Topic.OBJECTS, Topic.EVENTS, Topic.METRICS, Topic.PRICES)]
    spec = FleetSpec(
        clusters=1,
        pods_per_cluster=10,
        start=START,
        duration=timedelta(minutes=15),
        resolution=timedelta(minutes=5),
    )
    assert published == sum(len(step) for step in simulate(spec))
    after = len(read_all(kafka.bootstrap, Topic.PRICES.value))
    assert after - before == sum(1 for step in simulate(spec) for t, _ in step if t == Topic.PRICES)
    assert all(read_all(kafka.bootstrap, t) for t in topics)
