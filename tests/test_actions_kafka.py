"""The action service's audit on the ``actions`` topic of a real broker: every record the
store holds, a call refused for want of a token too, is a message keyed by its request
(or, naming none, by itself), carrying the same record."""

from pathlib import Path

from actions_tools import NAMESPACE, POLICY, create_deployment, serving, write_config
from kafka_tools import read_all
from kubernetes import client

from kubeopera.collectors.publisher import Publisher
from kubeopera.collectors.topics import ensure_topics
from kubeopera.deploy.kafka import Broker
from kubeopera.models import Topic
from kubeopera.models.actions import ActionAudit


def test_every_audit_record_is_a_message_on_the_actions_topic(
    actions_broker: Broker, kube_admin: client.ApiClient, tokens: dict[str, str], tmp_path: Path
) -> None:
    ensure_topics(actions_broker.bootstrap, partitions=1)
    create_deployment(kube_admin, "announced", replicas=2)
    settings = write_config(tmp_path / "c", POLICY)
    with (
        Publisher(actions_broker.bootstrap, client_id="kubeopera-actions") as publisher,
        serving(kube_admin, settings, tmp_path / "s", publisher=publisher) as service,
    ):
        assert service.call(None, "GET", "/v1/requests").status_code == 401
        body = {"action": "scale", "kind": "Deployment", "namespace": NAMESPACE,
                "name": "announced", "params": {"replicas": 3}}  # fmt: skip
        rid = service.call(tokens["alice"], "POST", "/v1/requests", body).json()["id"]
        assert service.call(tokens["bob"], "POST", f"/v1/requests/{rid}/approve").ok
        stored = {
            row["audit_id"]: row
            for row in service.store.query(
                "SELECT audit_id, request_id FROM v_actions_audit"
            ).to_dicts()
        }
    records = read_all(actions_broker.bootstrap, Topic.ACTIONS.value)
    messages = {
        m.audit_id: (record.key.decode(), m)
        for record in records
        for m in [ActionAudit.model_validate_json(record.value)]
    }
    assert set(messages) == set(stored)  # 1 refused call, 2 calls, a dry-run, an approval
    assert len(stored) == 5
    for audit_id, (key, message) in messages.items():
        assert key == (stored[audit_id]["request_id"] or audit_id)
        assert message.request_id == stored[audit_id]["request_id"]
    refused = [m for _, m in messages.values() if m.status == 401]
    assert [(m.who, m.result, m.reason) for m in refused] == [("", "refused", "no bearer token")]
