"""Each remediation end to end on the real kube-apiserver, through the service's HTTP API,
the service acting with exactly its manifest's ClusterRole: requested (dry-run diff
worked out here by hand), approved by another identity, applied (the object on the API
server has the new state), audited with before and after, and undone (the object's
spec, labels and annotations exactly as before)."""

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from actions_tools import (
    CLUSTER,
    IMAGE,
    NAMESPACE,
    POLICY,
    Watching,
    audit_rows,
    create_deployment,
    edit,
    image,
    kept,
    lifecycle,
    node,
    pod,
    read,
    serving,
    undo,
    user,
    write_config,
)  # fmt: skip
from cli_tools import run_kubeopera, stored
from kubernetes import client
from receivers import PagerDuty

from kubeopera.collectors.kubernetes.api import send
from kubeopera.deploy.testcluster import LocalCluster
from kubeopera.settings import Settings
from kubeopera.sinks.clickhouse import ChdbBackend, Store


def test_scale_end_to_end(
    kube_admin: client.ApiClient, actions_service: Any, tokens: dict[str, str]
) -> None:
    create_deployment(kube_admin, "web", replicas=3)
    path = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/web"
    before = read(kube_admin, path)
    body = {"action": "scale", "kind": "Deployment", "namespace": NAMESPACE, "name": "web",
            "params": {"replicas": 5}, "comment": "sale traffic"}  # fmt: skip
    created = actions_service.call(tokens["alice"], "POST", "/v1/requests", body)
    assert created.status_code == 201, created.text
    request = created.json()
    assert request["state"] == "pending" and request["rule"] == "shop-requesters"
    assert [(d["path"], d["change"], d["old"], d["new"]) for d in request["diff"]] == [
        ("/spec/replicas", "MODIFIED", "3", "5")
    ]
    assert read(kube_admin, path)["spec"]["replicas"] == 3  # a dry-run changes nothing
    rid = request["id"]

    approved = actions_service.call(
        tokens["bob"], "POST", f"/v1/requests/{rid}/approve", {"comment": "ok"}
    )
    assert approved.status_code == 200, approved.text
    applied = actions_service.call(tokens["alice"], "POST", f"/v1/requests/{rid}/apply")
    assert applied.status_code == 200, applied.text
    assert applied.json()["state"] == "applied"
    after = read(kube_admin, path)
    assert after["spec"]["replicas"] == 5
    managers = [(m["manager"], m["operation"]) for m in after["metadata"]["managedFields"]]
    assert ("kubeopera-actions", "Update") in managers

    rows = audit_rows(actions_service, rid)
    assert [(r["event"], r["result"]) for r in rows] == [
        ("dry_run", "ok"),
        ("approve", "ok"),
        ("apply", "started"),  # written before the update is sent
        ("apply", "ok"),
    ]
    assert json.loads(rows[-1]["before"]) == {"/spec/replicas": "3"}
    assert json.loads(rows[-1]["after"]) == {"/spec/replicas": "5"}
    assert rows[1]["who"] == user("bob") and rows[3]["who"] == user("alice")

    undone = actions_service.call(tokens["bob"], "POST", f"/v1/requests/{rid}/undo")
    assert undone.status_code == 200, undone.text
    assert undone.json()["state"] == "undone"
    restored = read(kube_admin, path)
    assert kept(restored) == kept(before)
    last = audit_rows(actions_service, rid)[-1]
    assert (last["event"], json.loads(last["after"])) == ("undo", {"/spec/replicas": "3"})


def test_restart_end_to_end(
    kube_admin: client.ApiClient, actions_service: Any, tokens: dict[str, str]
) -> None:
    create_deployment(kube_admin, "api")
    path = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/api"
    before = read(kube_admin, path)
    body = {"action": "restart", "kind": "Deployment", "namespace": NAMESPACE, "name": "api"}
    created = actions_service.call(tokens["alice"], "POST", "/v1/requests", body).json()
    (change,) = created["diff"]  # the template had no annotations: all of them are new
    annotations = "/spec/template/metadata/annotations"
    assert (change["path"], change["change"], change["old"]) == (annotations, "ADDED", None)
    stamp = json.loads(change["new"])["kubectl.kubernetes.io/restartedAt"]
    assert created["created_at"][:19] == stamp.rstrip("Z")  # the time it was asked, UTC
    rid = created["id"]
    actions_service.call(tokens["bob"], "POST", f"/v1/requests/{rid}/approve")
    assert (
        actions_service.call(tokens["alice"], "POST", f"/v1/requests/{rid}/apply").status_code
        == 200
    )
    template = read(kube_admin, path)["spec"]["template"]["metadata"]
    assert template["annotations"] == {"kubectl.kubernetes.io/restartedAt": stamp}
    undo(actions_service, tokens, rid)
    assert kept(read(kube_admin, path)) == kept(before)


def test_set_resources_end_to_end(
    kube_admin: client.ApiClient, actions_service: Any, tokens: dict[str, str]
) -> None:
    create_deployment(kube_admin, "cart")
    path = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/cart"
    before = read(kube_admin, path)
    resources = {
        "container": "app",
        "requests": {"cpu": "0.25", "memory": "256Mi"},
        "limits": {"memory": "512Mi"},
    }  # fmt: skip (0.25 cores: the server's 250m)
    body = {"action": "set_resources", "kind": "Deployment", "namespace": NAMESPACE,
            "name": "cart", "params": {"resources": resources}}  # fmt: skip
    app = "/spec/template/spec/containers/[name=app]/resources"
    rid = lifecycle(actions_service, tokens, body, [
        (f"{app}/limits", "ADDED", None, '{"memory":"512Mi"}'),
        (f"{app}/requests/cpu", "MODIFIED", '"100m"', '"250m"'),
        (f"{app}/requests/memory", "MODIFIED", '"128Mi"', '"256Mi"'),
    ])  # fmt: skip
    container = read(kube_admin, path)["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"] == {
        "requests": {"cpu": "250m", "memory": "256Mi"},
        "limits": {"memory": "512Mi"},
    }
    undo(actions_service, tokens, rid)
    assert kept(read(kube_admin, path)) == kept(before)


def test_cordon_and_uncordon_end_to_end(
    kube_admin: client.ApiClient, actions_service: Any, tokens: dict[str, str]
) -> None:
    path = node(kube_admin, "n-cordon")
    before = read(kube_admin, path)
    body = {"action": "cordon", "kind": "Node", "name": "n-cordon"}
    created = actions_service.call(tokens["bob"], "POST", "/v1/requests", body).json()
    assert [(d["path"], d["change"], d["old"], d["new"]) for d in created["diff"]] == [
        ("/spec/unschedulable", "ADDED", None, "true")
    ]
    rid = created["id"]
    # four eyes: bob asked, so dave (another approver) approves; bob applies
    assert (
        actions_service.call(tokens["dave"], "POST", f"/v1/requests/{rid}/approve").status_code
        == 200
    )
    assert (
        actions_service.call(tokens["bob"], "POST", f"/v1/requests/{rid}/apply").status_code == 200
    )
    assert read(kube_admin, path)["spec"]["unschedulable"] is True
    uncordon = {"action": "uncordon", "kind": "Node", "name": "n-cordon"}
    second = actions_service.call(tokens["bob"], "POST", "/v1/requests", uncordon).json()
    assert [(d["path"], d["change"], d["old"], d["new"]) for d in second["diff"]] == [
        ("/spec/unschedulable", "DELETED", "true", None)
    ]
    sid = second["id"]
    actions_service.call(tokens["dave"], "POST", f"/v1/requests/{sid}/approve")
    assert (
        actions_service.call(tokens["dave"], "POST", f"/v1/requests/{sid}/apply").status_code == 200
    )
    assert "unschedulable" not in read(kube_admin, path)["spec"]
    undo(actions_service, tokens, sid)  # the uncordon undone: cordoned again
    assert read(kube_admin, path)["spec"]["unschedulable"] is True
    # the cordon's field is as its apply left it again: it can be undone, to the start
    undo(actions_service, tokens, rid)
    assert kept(read(kube_admin, path)) == kept(before)
    # an undone request is not undone twice
    again = actions_service.call(tokens["bob"], "POST", f"/v1/requests/{rid}/undo")
    assert again.status_code == 409


def test_drain_end_to_end_keeps_the_disruption_budget(
    kube_admin: client.ApiClient, actions_service: Any, tokens: dict[str, str]
) -> None:
    path = node(kube_admin, "n-drain")
    before = read(kube_admin, path)
    free = pod(kube_admin, "free", "n-drain", {"app": "free"}, "Running")
    guarded = pod(kube_admin, "guarded", "n-drain", {"app": "guarded"}, "Running")
    budgets = f"/apis/policy/v1/namespaces/{NAMESPACE}/poddisruptionbudgets"
    budget = send(kube_admin, "POST", budgets, [], {
        "metadata": {"name": "guarded"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "guarded"}}},
    })  # fmt: skip
    # as the disruption controller would: one healthy pod, none may go
    send(kube_admin, "PATCH", f"{budgets}/guarded/status", [], {"status": {
        "observedGeneration": budget["metadata"]["generation"], "disruptionsAllowed": 0,
        "currentHealthy": 1, "desiredHealthy": 1, "expectedPods": 1}},
        "application/merge-patch+json")  # fmt: skip
    system = pod(kube_admin, "dns", "n-drain", {"app": "dns"}, "Running", "kube-system")
    body = {"action": "drain", "kind": "Node", "name": "n-drain"}
    created = actions_service.call(tokens["bob"], "POST", "/v1/requests", body).json()
    assert created["evictions"]["kube-system/dns"] == "not evicted: its namespace is protected"
    late = pod(kube_admin, "late", "n-drain", {"app": "late"}, "Running")  # after the dry-run
    assert [(d["path"], d["new"]) for d in created["diff"]] == [("/spec/unschedulable", "true")]
    assert created["evictions"][f"{NAMESPACE}/free"] == "allowed"
    assert "disruption budget" in created["evictions"][f"{NAMESPACE}/guarded"]
    assert "deletionTimestamp" not in read(kube_admin, free)["metadata"]  # dry-run evicts nothing
    rid = created["id"]
    actions_service.call(tokens["dave"], "POST", f"/v1/requests/{rid}/approve")
    applied = actions_service.call(tokens["bob"], "POST", f"/v1/requests/{rid}/apply").json()
    assert applied["state"] == "applied"
    assert applied["reason"].startswith(
        "2 of 3 pods not evicted: kube-system/dns: not evicted: its namespace is protected; "
        "shop/guarded: Cannot evict pod as it would violate the pod's disruption budget"
    )
    assert read(kube_admin, path)["spec"]["unschedulable"] is True
    assert "deletionTimestamp" in read(kube_admin, free)["metadata"]  # evicted: terminating
    assert "deletionTimestamp" not in read(kube_admin, guarded)["metadata"]
    # only what the approver saw is evicted: not the protected pod, nor the one since
    assert "deletionTimestamp" not in read(kube_admin, system)["metadata"]
    assert "deletionTimestamp" not in read(kube_admin, late)["metadata"]
    undo(
        actions_service, tokens, rid
    )  # uncordons; evicted pods are their controllers' to bring back
    assert kept(read(kube_admin, path)) == kept(before)


def test_delete_a_failed_pod_end_to_end(
    kube_admin: client.ApiClient, actions_service: Any, tokens: dict[str, str]
) -> None:
    node(kube_admin, "n-pods")
    running = pod(kube_admin, "still-running", "n-pods", {"app": "x"}, "Running")
    ask = {"action": "delete_pod", "kind": "Pod", "namespace": NAMESPACE, "name": "still-running"}
    refused = actions_service.call(tokens["alice"], "POST", "/v1/requests", ask)
    assert refused.status_code == 422 and "not Failed" in refused.json()["detail"]
    assert read(kube_admin, running)["status"]["phase"] == "Running"
    failed = pod(kube_admin, "crashed", "n-pods", {"app": "x"}, "Failed")
    before = read(kube_admin, failed)
    body = {"action": "delete_pod", "kind": "Pod", "namespace": NAMESPACE, "name": "crashed"}
    created = actions_service.call(tokens["alice"], "POST", "/v1/requests", body).json()
    assert [(d["path"], d["change"], d["new"]) for d in created["diff"]] == [
        ("/metadata", "DELETED", None),
        ("/spec", "DELETED", None),
    ]  # the whole object goes
    rid = created["id"]
    actions_service.call(tokens["bob"], "POST", f"/v1/requests/{rid}/approve")
    assert (
        actions_service.call(tokens["alice"], "POST", f"/v1/requests/{rid}/apply").status_code
        == 200
    )
    with pytest.raises(client.ApiException) as gone:
        read(kube_admin, failed)
    assert gone.value.status == 404
    # a deleted pod is not made again (its controller makes a new one): the service keeps
    # no copy of it, and its role may not create pods
    refused = actions_service.call(tokens["bob"], "POST", f"/v1/requests/{rid}/undo")
    assert refused.status_code == 409
    assert refused.json()["detail"].endswith("a deleted pod is not made again: its controller "
                                             "makes a new one")  # fmt: skip
    assert before["metadata"]["name"] == "crashed"


def collect(data: Path, kubeconfig: Path) -> None:
    """The real collector, once, into the store at ``data`` (the change timeline, drift)."""
    result = run_kubeopera(
        data, "collect", "--kubeconfig", str(kubeconfig), "--cluster-name", CLUSTER,
        "--embedded", "--stop-after", "4", "--scrape-seconds", "0",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_rollback_to_before_the_newest_template_change_from_the_timeline(
    kube_admin: client.ApiClient, tokens: dict[str, str], tmp_path: Path
) -> None:
    data, settings = tmp_path / "store", write_config(tmp_path / "config", POLICY)
    path = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/front"
    create_deployment(kube_admin, "front", image="shop:1.4")
    watching = Watching(kube_admin)  # the real collector: the change timeline
    try:
        watching.wait_for("Deployment", 1)
        seen = watching.collector.counts["Deployment"]
        edit(kube_admin, "front", image("front", "shop:1.5"))
        watching.wait_for("Deployment", seen + 1)
        before = read(kube_admin, path)
        with Store(ChdbBackend(data), raw_retention_days=0) as store:
            engine = Settings().engine(store)
            engine.process(watching.take())
            with serving(kube_admin, settings, data, store) as service:
                body = {"action": "rollback", "kind": "Deployment", "namespace": NAMESPACE,
                        "name": "front"}  # fmt: skip
                expected = [(IMAGE, "MODIFIED", '"shop:1.5"', '"shop:1.4"')]
                rid = lifecycle(service, tokens, body, expected)
                image_now = read(kube_admin, path)["spec"]["template"]["spec"]["containers"][0]
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
    assert kept(read(kube_admin, path)) == kept(before)


def test_revert_drift_from_a_finding(
    kube_admin: client.ApiClient,
    actions_cluster: LocalCluster,
    tokens: dict[str, str],
    tmp_path: Path,
) -> None:
    data, settings = tmp_path / "store", write_config(tmp_path / "config", POLICY)
    path = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/checkout"
    create_deployment(kube_admin, "checkout", image="shop:1.4")
    collect(data, actions_cluster.kubeconfig)
    approved = run_kubeopera(data, "drift", "approve", "--cluster", CLUSTER, "--namespace",
                             NAMESPACE, "--kind", "Deployment", "--name", "checkout")  # fmt: skip
    assert approved.returncode == 0, approved.stderr
    edit(kube_admin, "checkout", {**image("checkout", "shop:1.6-hotfix"),
                             "metadata": {"labels": {"hotfix": "true"}}})  # fmt: skip
    collect(data, actions_cluster.kubeconfig)
    open_drift = "SELECT fingerprint FROM v_findings WHERE status = 'open' AND name = 'checkout'"
    (fingerprint,) = stored(data, open_drift)["fingerprint"]
    drifted = read(kube_admin, path)
    with serving(kube_admin, settings, data) as service:
        rid = lifecycle(service, tokens, {"from_finding": fingerprint}, [
            ("/metadata/labels/hotfix", "DELETED", '"true"', None),
            (IMAGE, "MODIFIED", '"shop:1.6-hotfix"', '"shop:1.4"'),
        ])  # fmt: skip
        live = read(kube_admin, path)
        assert live["metadata"]["labels"] == {"app": "checkout"}
        assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "shop:1.4"
        shown = service.call(tokens["carol"], "GET", f"/v1/requests/{rid}").json()
        assert (shown["action"], shown["finding"]) == ("revert_drift", fingerprint)
        undo(service, tokens, rid)
    assert kept(read(kube_admin, path)) == kept(drifted)


def test_applies_and_undos_are_pagerduty_change_events_when_subscriptions_say_so(
    kube_admin: client.ApiClient, tokens: dict[str, str], tmp_path: Path
) -> None:
    key = "R0UT1NGK3Y0123456789abcdefABCDEF"
    create_deployment(kube_admin, "paged", replicas=2)
    with PagerDuty() as pagerduty, PagerDuty() as quiet:
        (tmp_path / "c").mkdir()
        (tmp_path / "c" / "subscriptions.yaml").write_text(yaml.safe_dump({"subscriptions": [
            {"name": "changes", "match": {"include": [{"kind": ["drift"]}]},
             "receiver": {"pagerduty": {"routing_key": {"env": "PD_KEY"},
                                        "url": pagerduty.url, "change_events": True}}},
            {"name": "alerts-only", "match": {"include": [{"kind": ["drift"]}]},
             "receiver": {"pagerduty": {"routing_key": {"env": "PD_KEY"}, "url": quiet.url}}},
        ]}))  # fmt: skip
        settings = write_config(tmp_path / "c", POLICY, subscriptions="subscriptions.yaml")
        os.environ["PD_KEY"] = key
        try:
            with serving(kube_admin, settings, tmp_path / "s") as service:
                body = {"action": "scale", "kind": "Deployment", "namespace": NAMESPACE,
                        "name": "paged", "params": {"replicas": 3}}  # fmt: skip
                expected = [("/spec/replicas", "MODIFIED", "2", "3")]
                rid = lifecycle(service, tokens, body, expected)
                undo(service, tokens, rid)
        finally:
            del os.environ["PD_KEY"]
        assert quiet.received == []  # its receiver did not ask for change events
        first, second = pagerduty.changes()
    assert first["routing_key"] == key
    assert first["payload"]["summary"] == (
        f"KubeOpera scale applied: Deployment shop/paged in kube (by {user('alice')})"
    )
    assert first["payload"]["custom_details"]["changes"] == {
        "/spec/replicas": {"old": "2", "new": "3"}
    }
    assert first["payload"]["custom_details"]["approved_by"] == [user("bob")]
    assert second["payload"]["summary"] == (
        f"KubeOpera scale undone: Deployment shop/paged in kube (by {user('bob')})"
    )
