"""Each remediation end to end on the real kube-apiserver, through the service's HTTP API,
the service acting with exactly its manifest's ClusterRole: requested (dry-run diff
worked out here by hand), approved by another identity, applied (the object on the API
server has the new state), audited with before and after, and undone (the object's
spec, labels and annotations exactly as before)."""

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from actions_tools import CLUSTER, STATIC_TOKEN, install, serving, token, user, write_config
from kubernetes import client, config

from kubeopera.collectors.kubernetes.api import get_json, send
from kubeopera.deploy.testcluster import LocalCluster

NAMESPACE = "shop"

POLICY: dict[str, Any] = {
    "protected_namespaces": ["kube-system"],
    "rules": [
        {"name": "shop-requesters", "roles": ["requester"],
         "actions": ["scale", "restart", "set_resources", "rollback", "revert_drift"],
         "clusters": [CLUSTER], "namespaces": [NAMESPACE],
         "limits": {"replicas_factor": 2, "resources_factor": 4}},
        {"name": "failed-pods", "roles": ["requester"], "actions": ["delete_pod"],
         "clusters": [CLUSTER], "namespaces": [".*"]},
        {"name": "sre", "roles": ["approver"],
         "actions": ["cordon", "uncordon", "drain", "scale", "restart"],
         "clusters": [".*"], "namespaces": [".*"]},
    ],
}  # fmt: skip


@pytest.fixture(scope="module")
def admin(kube_cluster: LocalCluster) -> Iterator[client.ApiClient]:
    with config.new_client_from_config(config_file=str(kube_cluster.kubeconfig)) as api:
        install(api)
        try:
            client.CoreV1Api(api).create_namespace(
                client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE))
            )
        except client.ApiException as error:
            assert error.status == 409
        yield api


@pytest.fixture
def tokens(admin: client.ApiClient) -> dict[str, str]:
    names = ("alice", "bob", "carol", "dave", "mallory")
    return {name: token(admin, name) for name in names} | {"ci-bot": STATIC_TOKEN}


@pytest.fixture
def service(admin: client.ApiClient, tmp_path: Path) -> Iterator[Any]:
    with serving(admin, write_config(tmp_path / "config", POLICY), tmp_path / "store") as running:
        yield running


def deployment(name: str, replicas: int = 2, image: str = "shop:1.4") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"app": name}},
        "spec": {
            "replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [
                {"name": "app", "image": image,
                 "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]}},
        },
    }  # fmt: skip


def create_deployment(admin: client.ApiClient, name: str, **fields: Any) -> dict[str, Any]:
    path = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments"
    return send(admin, "POST", path, [], deployment(name, **fields))


def read(admin: client.ApiClient, path: str) -> dict[str, Any]:
    return get_json(admin, path)


def kept(obj: dict[str, Any]) -> dict[str, Any]:
    """What undo restores and the test compares: spec, labels, annotations."""
    metadata = obj["metadata"]
    return {
        "spec": obj["spec"],
        "labels": metadata.get("labels"),
        "annotations": metadata.get("annotations"),
    }


def audit_rows(service: Any, request_id: str) -> list[dict[str, Any]]:
    return service.store.query(
        "SELECT event, result, who, before, after, reason FROM v_actions_audit "
        f"WHERE request_id = '{request_id}' AND event != 'call' ORDER BY at"
    ).to_dicts()


def test_scale_end_to_end(admin: client.ApiClient, service: Any, tokens: dict[str, str]) -> None:
    create_deployment(admin, "web", replicas=3)
    path = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/web"
    before = read(admin, path)
    body = {"action": "scale", "kind": "Deployment", "namespace": NAMESPACE, "name": "web",
            "params": {"replicas": 5}, "comment": "sale traffic"}  # fmt: skip
    created = service.call(tokens["alice"], "POST", "/v1/requests", body)
    assert created.status_code == 201, created.text
    request = created.json()
    assert request["state"] == "pending" and request["rule"] == "shop-requesters"
    assert [(d["path"], d["change"], d["old"], d["new"]) for d in request["diff"]] == [
        ("/spec/replicas", "MODIFIED", "3", "5")
    ]
    assert read(admin, path)["spec"]["replicas"] == 3  # a dry-run changes nothing
    rid = request["id"]

    approved = service.call(tokens["bob"], "POST", f"/v1/requests/{rid}/approve", {"comment": "ok"})
    assert approved.status_code == 200, approved.text
    applied = service.call(tokens["alice"], "POST", f"/v1/requests/{rid}/apply")
    assert applied.status_code == 200, applied.text
    assert applied.json()["state"] == "applied"
    after = read(admin, path)
    assert after["spec"]["replicas"] == 5
    managers = [(m["manager"], m["operation"]) for m in after["metadata"]["managedFields"]]
    assert ("kubeopera-actions", "Update") in managers

    rows = audit_rows(service, rid)
    assert [(r["event"], r["result"]) for r in rows] == [
        ("dry_run", "ok"),
        ("approve", "ok"),
        ("apply", "ok"),
    ]
    assert json.loads(rows[-1]["before"]) == {"/spec/replicas": "3"}
    assert json.loads(rows[-1]["after"]) == {"/spec/replicas": "5"}
    assert rows[1]["who"] == user("bob") and rows[2]["who"] == user("alice")

    undone = service.call(tokens["bob"], "POST", f"/v1/requests/{rid}/undo")
    assert undone.status_code == 200, undone.text
    assert undone.json()["state"] == "undone"
    restored = read(admin, path)
    assert kept(restored) == kept(before)
    last = audit_rows(service, rid)[-1]
    assert (last["event"], json.loads(last["after"])) == ("undo", {"/spec/replicas": "3"})


def _unused(obj: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(obj)
