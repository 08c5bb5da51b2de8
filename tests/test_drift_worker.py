"""A baseline published while the cluster is quiet reaches a running worker: with no
object change to carry it, the worker takes the new reference data in on its timer, and
the drift is found once the objects' partition watermark passes the baseline's time (the
idle-partition advance, never past the wall clock)."""

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kafka_tools import read_all, start_worker, stop, wait_until_drained

from kubeopera.collectors.publisher import Publisher
from kubeopera.collectors.topics import ensure_topics
from kubeopera.deploy.kafka import Broker, free_port
from kubeopera.models import Baseline, BaselineKind, ChangeType, Finding, ObjectChange, Topic

pytestmark = pytest.mark.integration  # starts its own Kafka broker

MANIFEST = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "shop"},
    "spec": {"replicas": 2, "template": {"spec": {"containers": [
        {"name": "web", "image": "shop:1.4"}]}}},
}  # fmt: skip


def test_a_baseline_published_to_a_quiet_cluster_opens_drift(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broker = Broker(state=tmp_path / "kafka", port=free_port())
    broker.up()
    monkeypatch.setenv("KUBEOPERA_PROCESSORS", '["archive", "drift"]')
    worker = None
    try:
        ensure_topics(broker.bootstrap)
        live = {**MANIFEST, "metadata": {**MANIFEST["metadata"], "uid": "u1"}}
        created = ObjectChange(
            cluster="quiet", api_version="apps/v1", kind="Deployment", namespace="shop",
            name="web", uid="u1", observed_at=datetime.now(UTC), change=ChangeType.ADDED,
            object=live,
        )  # fmt: skip
        with Publisher(broker.bootstrap) as publisher:
            publisher.publish(Topic.OBJECTS, created)
        app = "quiet"
        worker = start_worker(
            broker, tmp_path / "store", app, tmp_path / "worker", options=("--idle-after", "5s")
        )
        wait_until_drained(broker, app, worker)
        declared = {**MANIFEST, "spec": {**MANIFEST["spec"], "replicas": 3}}
        with Publisher(broker.bootstrap) as publisher:
            publisher.publish(
                Topic.BASELINES,
                Baseline(
                    baseline=BaselineKind.DECLARED, origin="manifests/", cluster="quiet",
                    api_version="apps/v1", kind="Deployment", namespace="shop", name="web",
                    object=declared, recorded_at=datetime.now(UTC),
                ),
            )  # fmt: skip
        deadline, found = time.monotonic() + 90, []
        while not found and time.monotonic() < deadline:
            time.sleep(2)
            found = read_all(broker.bootstrap, Topic.FINDINGS.value)
        assert worker.poll() is None, "the worker exited"
    finally:
        if worker is not None:
            stop(worker)
        broker.down()
    (record,) = found
    finding = Finding.model_validate_json(record.value)
    assert (finding.status, finding.subject.name) == ("open", "web")
    assert finding.evidence["entries"] == [
        {"path": "/spec/replicas", "change": "changed", "expected": "3", "live": "2",
         "category": "replicas"}
    ]  # fmt: skip
