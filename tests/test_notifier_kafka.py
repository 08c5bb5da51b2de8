"""``kubeopera alerts run`` on the real broker's findings topic, against a loopback
PagerDuty: a finding that opens and resolves is one trigger and one resolve with its
fingerprint as dedup_key, whether the notifier restarts between them or is killed -9
while PagerDuty is taking the trigger (then it is sent at most once more, and PagerDuty
keeps one incident)."""

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cli_tools import stored
from kafka import KafkaProducer
from receivers import PagerDuty

from kubeopera.collectors.topics import ensure_topics
from kubeopera.deploy.kafka import Broker
from kubeopera.models import Finding, Subject, Topic

pytestmark = pytest.mark.slow

ROUTING_KEY = "R0UT1NGK3Y0123456789abcdefABCDEF"


@pytest.fixture
def pagerduty() -> Iterator[PagerDuty]:
    with PagerDuty() as server:
        yield server


@pytest.fixture
def cluster() -> str:
    """A cluster of this test's own: the shared broker's topic holds other tests' findings."""
    return f"notifier-{uuid.uuid4().hex[:8]}"


def subscriptions(folder: Path, pagerduty: PagerDuty, cluster: str) -> Path:
    path = folder / "subscriptions.yaml"
    path.write_text(
        f"""subscriptions:
  - name: oncall
    match:
      include:
        - cluster: ["{cluster}"]
    receiver:
      pagerduty:
        routing_key: {{env: PD_ROUTING_KEY}}
        url: {pagerduty.url}
    group_wait: 0s
    group_interval: 1s
delivery:
  initial_backoff: 0.2s
"""
    )
    return path


def publish(kafka: Broker, finding: Finding | bytes) -> None:
    ensure_topics(kafka.bootstrap)
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap)
    if isinstance(finding, bytes):
        producer.send(Topic.FINDINGS.value, key=b"garbage", value=finding)
    else:
        producer.send(
            Topic.FINDINGS.value,
            key=finding.fingerprint.encode(),
            value=finding.model_dump_json().encode(),
        )
    producer.flush()
    producer.close()


def finding(cluster: str, status: str = "open") -> Finding:
    at = datetime.now(UTC)
    return Finding(
        kind="drift",
        severity="critical",
        fingerprint=f"{cluster}-web",
        subject=Subject(cluster=cluster, namespace="shop", kind="Deployment", name="web"),
        first_seen=at,
        last_seen=at,
        status=status,
        summary=f"Deployment shop/web in {cluster} drifted",
    )


@contextmanager
def running(
    kafka: Broker, path: Path, folder: Path, stop_with: int = signal.SIGTERM
) -> Iterator[subprocess.Popen[bytes]]:
    """``kubeopera alerts run`` while inside; stopped with ``stop_with`` on leaving."""
    notifier = start(kafka, path, folder)
    try:
        yield notifier
    finally:
        notifier.send_signal(stop_with)
        notifier.wait(30)


def start(kafka: Broker, path: Path, folder: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "KUBEOPERA_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap,
        "KUBEOPERA_STORAGE__PATH": str(folder / "store"),
        "PD_ROUTING_KEY": ROUTING_KEY,
    }
    env.pop("KUBEOPERA_CONFIG", None)
    log = (folder / "notifier.log").open("ab")
    return subprocess.Popen(
        ["kubeopera", "alerts", "run", "-s", str(path)], env=env, stdout=log, stderr=log
    )


def wait_for(what: Callable[[], bool], notifier: subprocess.Popen[bytes], folder: Path) -> None:
    deadline = time.monotonic() + 90
    while not what():
        log = (folder / "notifier.log").read_text(errors="replace")
        assert notifier.poll() is None, f"the notifier exited:\n{log[-3000:]}"
        assert time.monotonic() < deadline, f"nothing came:\n{log[-3000:]}"
        time.sleep(0.2)


def events(pagerduty: PagerDuty) -> list[tuple[str, str]]:
    return [(r.body["event_action"], r.body["dedup_key"]) for r in pagerduty.received]


def test_open_then_resolve_across_a_restart_is_one_trigger_and_one_resolve(
    kafka: Broker, pagerduty: PagerDuty, cluster: str, tmp_path: Path
) -> None:
    path = subscriptions(tmp_path, pagerduty, cluster)
    garbage = f'{{"kind": "drift", "cluster": "{cluster}"}}'.encode()  # not a finding
    publish(kafka, garbage)
    publish(kafka, finding(cluster))
    with running(kafka, path, tmp_path) as notifier:
        wait_for(lambda: len(pagerduty.received) == 1, notifier, tmp_path)
        time.sleep(3)  # flushes every second: nothing more comes
    publish(kafka, finding(cluster, "resolved"))
    with running(kafka, path, tmp_path) as notifier:  # reads the topic again, from its start
        wait_for(lambda: len(pagerduty.received) == 2, notifier, tmp_path)
        time.sleep(3)
    key = f"{cluster}-web"
    assert events(pagerduty) == [("trigger", key), ("resolve", key)]
    assert pagerduty.incidents == [key] and pagerduty.open == set()
    log = (tmp_path / "notifier.log").read_text()
    assert "1 groups told before" in log  # the second start read the log back
    assert ROUTING_KEY not in log
    letters = stored(
        tmp_path / "store",
        f"SELECT count() AS n, any(error) AS error FROM deadletter FINAL WHERE source_topic = "
        f"'{Topic.FINDINGS.value}' AND position(raw, '{cluster}') > 0",
    ).row(0, named=True)
    assert letters["n"] == 1  # read by both starts, recorded once
    assert letters["error"].startswith(f"invalid {Topic.FINDINGS.value} message: ")


def test_killed_during_a_delivery_it_sends_at_most_once_more_and_one_incident_stays(
    kafka: Broker, pagerduty: PagerDuty, cluster: str, tmp_path: Path
) -> None:
    path = subscriptions(tmp_path, pagerduty, cluster)
    pagerduty.slow.append(5.0)  # PagerDuty takes the trigger, and answers 5 s later
    publish(kafka, finding(cluster))
    with running(kafka, path, tmp_path, stop_with=signal.SIGKILL) as notifier:
        wait_for(lambda: len(pagerduty.received) == 1, notifier, tmp_path)
        # killed on leaving, while it waits for the answer
    with running(kafka, path, tmp_path) as notifier:
        wait_for(lambda: len(pagerduty.received) == 2, notifier, tmp_path)  # sent again
        publish(kafka, finding(cluster, "resolved"))
        wait_for(lambda: len(pagerduty.received) == 3, notifier, tmp_path)
        time.sleep(3)
    key = f"{cluster}-web"
    assert events(pagerduty) == [("trigger", key), ("trigger", key), ("resolve", key)]
    assert pagerduty.incidents == [key] and pagerduty.open == set()  # one incident
