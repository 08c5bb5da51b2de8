"""Each remediation end to end on the real kube-apiserver, through the service's HTTP API,
the service acting with exactly its manifest's ClusterRole: requested (dry-run diff
worked out here by hand), approved by another identity, applied (the object on the API
server has the new state), audited with before and after, and undone (the object's
spec, labels and annotations exactly as before)."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from actions_tools import (
    CLUSTER,
    STATIC_TOKEN,
    Watching,
    install,
    serving,
    token,
    user,
    write_config,
)
from cli_tools import run_kubeopera, stored
from kubernetes import client, config

from kubeopera.collectors.kubernetes.api import get_json, send
from kubeopera.deploy.testcluster import LocalCluster
from kubeopera.settings import Settings
from kubeopera.sinks.clickhouse import ChdbBackend, Store

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


def lifecycle(
    service: Any, tokens: dict[str, str], body: dict[str, Any], expected: list[tuple[Any, ...]]
) -> str:
    """Request as alice (the diff is ``expected``: path, change, old, new), approve as bob,
    apply as alice; the audit's apply record holds the diff's sides. The request's id."""
    created = service.call(tokens["alice"], "POST", "/v1/requests", body)
    assert created.status_code == 201, created.text
    request = created.json()
    assert [(d["path"], d["change"], d["old"], d["new"]) for d in request["diff"]] == expected
    rid = request["id"]
    approved = service.call(tokens["bob"], "POST", f"/v1/requests/{rid}/approve")
    assert approved.json()["state"] == "approved", approved.text
    applied = service.call(tokens["alice"], "POST", f"/v1/requests/{rid}/apply")
    assert applied.json()["state"] == "applied", applied.text
    record = audit_rows(service, rid)[-1]
    assert record["event"] == "apply" and record["result"] == "ok"
    assert json.loads(record["before"]) == {path: old for path, _, old, _ in expected}
    assert json.loads(record["after"]) == {path: new for path, _, _, new in expected}
    return str(rid)


def undo(service: Any, tokens: dict[str, str], rid: str) -> None:
    undone = service.call(tokens["bob"], "POST", f"/v1/requests/{rid}/undo")
    assert undone.status_code == 200, undone.text
    assert undone.json()["state"] == "undone"


def test_restart_end_to_end(admin: client.ApiClient, service: Any, tokens: dict[str, str]) -> None:
    create_deployment(admin, "api")
    path = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/api"
    before = read(admin, path)
    body = {"action": "restart", "kind": "Deployment", "namespace": NAMESPACE, "name": "api"}
    created = service.call(tokens["alice"], "POST", "/v1/requests", body).json()
    (change,) = created["diff"]  # the template had no annotations: all of them are new
    annotations = "/spec/template/metadata/annotations"
    assert (change["path"], change["change"], change["old"]) == (annotations, "ADDED", None)
    stamp = json.loads(change["new"])["kubectl.kubernetes.io/restartedAt"]
    assert created["created_at"][:19] == stamp.rstrip("Z")  # the time it was asked, UTC
    rid = created["id"]
    service.call(tokens["bob"], "POST", f"/v1/requests/{rid}/approve")
    assert service.call(tokens["alice"], "POST", f"/v1/requests/{rid}/apply").status_code == 200
    template = read(admin, path)["spec"]["template"]["metadata"]
    assert template["annotations"] == {"kubectl.kubernetes.io/restartedAt": stamp}
    undo(service, tokens, rid)
    assert kept(read(admin, path)) == kept(before)


def test_set_resources_end_to_end(
    admin: client.ApiClient, service: Any, tokens: dict[str, str]
) -> None:
    create_deployment(admin, "cart")
    path = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/cart"
    before = read(admin, path)
    resources = {"container": "app", "requests": {"cpu": "250m", "memory": "256Mi"},
                 "limits": {"memory": "512Mi"}}  # fmt: skip
    body = {"action": "set_resources", "kind": "Deployment", "namespace": NAMESPACE,
            "name": "cart", "params": {"resources": resources}}  # fmt: skip
    app = "/spec/template/spec/containers/[name=app]/resources"
    rid = lifecycle(service, tokens, body, [
        (f"{app}/limits", "ADDED", None, '{"memory":"512Mi"}'),
        (f"{app}/requests/cpu", "MODIFIED", '"100m"', '"250m"'),
        (f"{app}/requests/memory", "MODIFIED", '"128Mi"', '"256Mi"'),
    ])  # fmt: skip
    container = read(admin, path)["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"] == {
        "requests": {"cpu": "250m", "memory": "256Mi"},
        "limits": {"memory": "512Mi"},
    }
    undo(service, tokens, rid)
    assert kept(read(admin, path)) == kept(before)


def node(admin: client.ApiClient, name: str, unschedulable: bool = False) -> str:
    path = "/api/v1/nodes"
    spec = {"unschedulable": True} if unschedulable else {}
    send(admin, "POST", path, [], {"metadata": {"name": name}, "spec": spec})
    return f"{path}/{name}"


def test_cordon_and_uncordon_end_to_end(
    admin: client.ApiClient, service: Any, tokens: dict[str, str]
) -> None:
    path = node(admin, "n-cordon")
    before = read(admin, path)
    body = {"action": "cordon", "kind": "Node", "name": "n-cordon"}
    created = service.call(tokens["bob"], "POST", "/v1/requests", body).json()
    assert [(d["path"], d["change"], d["old"], d["new"]) for d in created["diff"]] == [
        ("/spec/unschedulable", "ADDED", None, "true")
    ]
    rid = created["id"]
    # four eyes: bob asked, so dave (another approver) approves; bob applies
    assert service.call(tokens["dave"], "POST", f"/v1/requests/{rid}/approve").status_code == 200
    assert service.call(tokens["bob"], "POST", f"/v1/requests/{rid}/apply").status_code == 200
    assert read(admin, path)["spec"]["unschedulable"] is True
    uncordon = {"action": "uncordon", "kind": "Node", "name": "n-cordon"}
    second = service.call(tokens["bob"], "POST", "/v1/requests", uncordon).json()
    assert [(d["path"], d["change"], d["old"], d["new"]) for d in second["diff"]] == [
        ("/spec/unschedulable", "DELETED", "true", None)
    ]
    sid = second["id"]
    service.call(tokens["dave"], "POST", f"/v1/requests/{sid}/approve")
    assert service.call(tokens["dave"], "POST", f"/v1/requests/{sid}/apply").status_code == 200
    assert "unschedulable" not in read(admin, path)["spec"]
    undo(service, tokens, sid)  # the uncordon undone: cordoned again
    assert read(admin, path)["spec"]["unschedulable"] is True
    # the cordon is undone only on the object its apply left: refused now, changed since
    refused = service.call(tokens["bob"], "POST", f"/v1/requests/{rid}/undo")
    assert refused.status_code == 409, refused.text
    assert kept(before) != kept(read(admin, path))


def pod(admin: client.ApiClient, name: str, node_name: str, labels: dict[str, str],
        phase: str) -> str:  # fmt: skip
    """A pod bound to ``node_name`` in ``phase`` (set as the kubelet would: pods/status)."""
    path = f"/api/v1/namespaces/{NAMESPACE}/pods"
    created = send(admin, "POST", path, [], {
        "metadata": {"name": name, "labels": labels},
        "spec": {"nodeName": node_name, "containers": [{"name": "app", "image": "shop:1.4"}]},
    })  # fmt: skip
    status = {"phase": phase}
    if phase == "Running":
        status["conditions"] = [{"type": "Ready", "status": "True"}]  # type: ignore[assignment]
    send(admin, "PATCH", f"{path}/{name}/status", [], {"status": status},
         "application/merge-patch+json")  # fmt: skip
    return f"{path}/{created['metadata']['name']}"


def test_drain_end_to_end_keeps_the_disruption_budget(
    admin: client.ApiClient, service: Any, tokens: dict[str, str]
) -> None:
    path = node(admin, "n-drain")
    before = read(admin, path)
    free = pod(admin, "free", "n-drain", {"app": "free"}, "Running")
    guarded = pod(admin, "guarded", "n-drain", {"app": "guarded"}, "Running")
    budgets = f"/apis/policy/v1/namespaces/{NAMESPACE}/poddisruptionbudgets"
    budget = send(admin, "POST", budgets, [], {
        "metadata": {"name": "guarded"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "guarded"}}},
    })  # fmt: skip
    # as the disruption controller would: one healthy pod, none may go
    send(admin, "PATCH", f"{budgets}/guarded/status", [], {"status": {
        "observedGeneration": budget["metadata"]["generation"], "disruptionsAllowed": 0,
        "currentHealthy": 1, "desiredHealthy": 1, "expectedPods": 1}},
        "application/merge-patch+json")  # fmt: skip
    body = {"action": "drain", "kind": "Node", "name": "n-drain"}
    created = service.call(tokens["bob"], "POST", "/v1/requests", body).json()
    assert [(d["path"], d["new"]) for d in created["diff"]] == [("/spec/unschedulable", "true")]
    assert created["evictions"][f"{NAMESPACE}/free"] == ""
    assert "disruption budget" in created["evictions"][f"{NAMESPACE}/guarded"]
    assert "deletionTimestamp" not in read(admin, free)["metadata"]  # dry-run evicts nothing
    rid = created["id"]
    service.call(tokens["dave"], "POST", f"/v1/requests/{rid}/approve")
    applied = service.call(tokens["bob"], "POST", f"/v1/requests/{rid}/apply").json()
    assert applied["state"] == "applied"
    assert applied["reason"].startswith("1 of 2 pods not evicted: shop/guarded:")
    assert read(admin, path)["spec"]["unschedulable"] is True
    assert "deletionTimestamp" in read(admin, free)["metadata"]  # evicted: terminating
    assert "deletionTimestamp" not in read(admin, guarded)["metadata"]
    undo(service, tokens, rid)  # uncordons; evicted pods are their controllers' to bring back
    assert kept(read(admin, path)) == kept(before)


def test_delete_a_failed_pod_end_to_end(
    admin: client.ApiClient, service: Any, tokens: dict[str, str]
) -> None:
    node(admin, "n-pods")
    running = pod(admin, "still-running", "n-pods", {"app": "x"}, "Running")
    ask = {"action": "delete_pod", "kind": "Pod", "namespace": NAMESPACE, "name": "still-running"}
    refused = service.call(tokens["alice"], "POST", "/v1/requests", ask)
    assert refused.status_code == 422 and "not Failed" in refused.json()["detail"]
    assert read(admin, running)["status"]["phase"] == "Running"
    failed = pod(admin, "crashed", "n-pods", {"app": "x"}, "Failed")
    before = read(admin, failed)
    body = {"action": "delete_pod", "kind": "Pod", "namespace": NAMESPACE, "name": "crashed"}
    created = service.call(tokens["alice"], "POST", "/v1/requests", body).json()
    assert [(d["path"], d["change"], d["new"]) for d in created["diff"]] == [
        ("/metadata", "DELETED", None),
        ("/spec", "DELETED", None),
    ]  # the whole object goes
    rid = created["id"]
    service.call(tokens["bob"], "POST", f"/v1/requests/{rid}/approve")
    assert service.call(tokens["alice"], "POST", f"/v1/requests/{rid}/apply").status_code == 200
    with pytest.raises(client.ApiException) as gone:
        read(admin, failed)
    assert gone.value.status == 404
    undo(service, tokens, rid)  # the pod made again from its recorded state
    assert kept(read(admin, failed)) == kept(before)


def collect(data: Path, kubeconfig: Path) -> None:
    """The real collector, once, into the store at ``data`` (the change timeline, drift)."""
    result = run_kubeopera(
        data, "collect", "--kubeconfig", str(kubeconfig), "--cluster-name", CLUSTER,
        "--embedded", "--stop-after", "4", "--scrape-seconds", "0",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def edit(admin: client.ApiClient, name: str, patch: dict[str, Any]) -> None:
    """``kubectl edit``: a strategic merge patch under kubectl-edit's field manager."""
    path = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{name}"
    send(admin, "PATCH", path, [("fieldManager", "kubectl-edit")], patch,
         "application/strategic-merge-patch+json")  # fmt: skip


def image(name: str, tag: str) -> dict[str, Any]:
    return {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": tag}]}}}}


IMAGE = "/spec/template/spec/containers/[name=app]/image"


def test_rollback_to_before_the_newest_template_change_from_the_timeline(
    admin: client.ApiClient, tokens: dict[str, str], tmp_path: Path
) -> None:
    data, settings = tmp_path / "store", write_config(tmp_path / "config", POLICY)
    path = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/front"
    create_deployment(admin, "front", image="shop:1.4")
    watching = Watching(admin)  # the real collector: the change timeline
    try:
        watching.wait_for("Deployment", 1)
        seen = watching.collector.counts["Deployment"]
        edit(admin, "front", image("front", "shop:1.5"))
        watching.wait_for("Deployment", seen + 1)
        before = read(admin, path)
        with Store(ChdbBackend(data), raw_retention_days=0) as store:
            engine = Settings().engine(store)
            engine.process(watching.take())
            with serving(admin, settings, data, store) as service:
                body = {"action": "rollback", "kind": "Deployment", "namespace": NAMESPACE,
                        "name": "front"}  # fmt: skip
                expected = [(IMAGE, "MODIFIED", '"shop:1.5"', '"shop:1.4"')]
                rid = lifecycle(service, tokens, body, expected)
                image_now = read(admin, path)["spec"]["template"]["spec"]["containers"][0]
                assert image_now["image"] == "shop:1.4"
                watching.wait_for("Deployment", seen + 2)
                engine.process(watching.take())
                engine.finish()
                changes = store.query(
                    f"SELECT new, manager FROM v_changes WHERE name = 'front' "
                    f"AND path = '{IMAGE}' ORDER BY at"
                ).rows()
                # the edit, then the rollback under the service's field manager
                assert [new for new, _ in changes] == ['"shop:1.5"', '"shop:1.4"']
                assert changes[-1][1] == "kubeopera-actions"
                undo(service, tokens, rid)
    finally:
        watching.stop()
    assert kept(read(admin, path)) == kept(before)


def test_revert_drift_from_a_finding(
    admin: client.ApiClient, kube_cluster: LocalCluster, tokens: dict[str, str], tmp_path: Path
) -> None:
    data, settings = tmp_path / "store", write_config(tmp_path / "config", POLICY)
    path = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/checkout"
    create_deployment(admin, "checkout", image="shop:1.4")
    collect(data, kube_cluster.kubeconfig)
    approved = run_kubeopera(data, "drift", "approve", "--cluster", CLUSTER, "--namespace",
                             NAMESPACE, "--kind", "Deployment", "--name", "checkout")  # fmt: skip
    assert approved.returncode == 0, approved.stderr
    edit(admin, "checkout", {**image("checkout", "shop:1.6-hotfix"),
                             "metadata": {"labels": {"hotfix": "true"}}})  # fmt: skip
    collect(data, kube_cluster.kubeconfig)
    open_drift = "SELECT fingerprint FROM v_findings WHERE status = 'open' AND name = 'checkout'"
    (fingerprint,) = stored(data, open_drift)["fingerprint"]
    drifted = read(admin, path)
    with serving(admin, settings, data) as service:
        rid = lifecycle(service, tokens, {"from_finding": fingerprint}, [
            ("/metadata/labels/hotfix", "DELETED", '"true"', None),
            (IMAGE, "MODIFIED", '"shop:1.6-hotfix"', '"shop:1.4"'),
        ])  # fmt: skip
        live = read(admin, path)
        assert live["metadata"]["labels"] == {"app": "checkout"}
        assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "shop:1.4"
        shown = service.call(tokens["carol"], "GET", f"/v1/requests/{rid}").json()
        assert (shown["action"], shown["finding"]) == ("revert_drift", fingerprint)
        undo(service, tokens, rid)
    assert kept(read(admin, path)) == kept(drifted)
