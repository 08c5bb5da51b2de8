"""What the action service refuses, on the real kube-apiserver: each refusal with the
status and reason it should have, nothing changed on the API server (the object's
resourceVersion the same), and every call audited (the audit's rows counted)."""

import time
from pathlib import Path
from typing import Any

import pytest
from actions_tools import (
    NAMESPACE,
    POLICY,
    Running,
    create_deployment,
    read,
    serving,
    user,
    write_config,
)
from kubernetes import client

from kubeopera.collectors.kubernetes.api import send

SCALE = {"action": "scale", "kind": "Deployment", "namespace": NAMESPACE}


def scale(name: str, replicas: int, namespace: str = NAMESPACE) -> dict[str, Any]:
    return {**SCALE, "namespace": namespace, "name": name, "params": {"replicas": replicas}}


def version(admin: client.ApiClient, name: str, namespace: str = NAMESPACE) -> str:
    path = f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}"
    return str(read(admin, path)["metadata"]["resourceVersion"])


def refused(
    service: Running, who: str | None, method: str, path: str, body: Any, status: int
) -> dict[str, Any]:
    """The call's answer, checked to be ``status``, and its one ``call`` audit record."""
    count = service.audit_count()
    answer = service.call(who, method, path, body)
    assert answer.status_code == status, answer.text
    assert service.audit_count() == count + 1  # the call, refused, audited
    (record,) = service.store.query(
        "SELECT event, result, who, status, reason FROM v_actions_audit ORDER BY at DESC LIMIT 1"
    ).to_dicts()
    assert (record["event"], record["result"], record["status"]) == ("call", "refused", status)
    problem: dict[str, Any] = answer.json()
    assert record["reason"] == problem["detail"]
    return problem | {"who": record["who"]}


def test_callers_without_a_valid_token_or_role_are_refused_and_audited(
    kube_admin: client.ApiClient, actions_service: Running, tokens: dict[str, str]
) -> None:
    create_deployment(kube_admin, "guarded-web", replicas=2)
    was = version(kube_admin, "guarded-web")
    body = scale("guarded-web", 3)
    assert refused(actions_service, None, "POST", "/v1/requests", body, 401)["detail"] == (
        "no bearer token"
    )
    bad = refused(actions_service, "not-a-token", "POST", "/v1/requests", body, 401)
    assert (bad["detail"], bad["who"]) == ("the token is not valid", "")
    nobody = refused(actions_service, tokens["mallory"], "POST", "/v1/requests", body, 403)
    assert nobody["detail"].startswith("asking for a remediation needs the requester role")
    assert nobody["who"] == user("mallory")
    viewer = refused(actions_service, tokens["carol"], "POST", "/v1/requests", body, 403)
    assert "carol holds viewer" in viewer["detail"]
    unknown_reader = refused(actions_service, tokens["mallory"], "GET", "/v1/requests", None, 403)
    assert unknown_reader["detail"].startswith("reading needs the viewer role")
    assert version(kube_admin, "guarded-web") == was


def test_protected_namespaces_and_limits_are_refused_with_their_rule(
    kube_admin: client.ApiClient, actions_service: Running, tokens: dict[str, str]
) -> None:
    path = "/apis/apps/v1/namespaces/kube-system/deployments"
    shop = create_deployment(kube_admin, "limited", replicas=3)["metadata"]["name"]
    send(kube_admin, "POST", path, [], {**_deployment("dns"),
         "metadata": {"name": "dns", "namespace": "kube-system"}})  # fmt: skip
    was = (version(kube_admin, "dns", "kube-system"), version(kube_admin, shop))
    system = refused(actions_service, tokens["bob"], "POST", "/v1/requests",
                     scale("dns", 3, "kube-system"), 403)  # fmt: skip
    assert system == {"detail": "namespace kube-system is protected",
                      "rule": "protected_namespaces", "who": user("bob")}  # fmt: skip
    beyond = refused(actions_service, tokens["alice"], "POST", "/v1/requests",
                     scale(shop, 7), 403)  # fmt: skip
    assert beyond["rule"] == "shop-requesters"
    assert beyond["detail"] == "replicas 3 -> 7 is more than a factor of 2"
    halved = actions_service.call(tokens["alice"], "POST", "/v1/requests", scale(shop, 2))
    assert halved.status_code == 201  # 3 -> 2 is within the factor either way
    no_rule = refused(actions_service, tokens["alice"], "POST", "/v1/requests",
                      {"action": "cordon", "kind": "Node", "name": "any"}, 403)  # fmt: skip
    assert no_rule["rule"] == "no rule"
    assert no_rule["detail"] == "no rule lets requester, viewer cordon in kube"
    assert (version(kube_admin, "dns", "kube-system"), version(kube_admin, shop)) == was


def _deployment(name: str) -> dict[str, Any]:
    return {
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "app", "image": "dns:1"}]}}},
    }  # fmt: skip


def test_four_eyes_own_approval_and_someone_elses_apply_are_refused(
    kube_admin: client.ApiClient, actions_service: Running, tokens: dict[str, str]
) -> None:
    create_deployment(kube_admin, "eyes", replicas=2)
    was = version(kube_admin, "eyes")
    mine = actions_service.call(tokens["bob"], "POST", "/v1/requests", scale("eyes", 3)).json()
    path = f"/v1/requests/{mine['id']}"
    own = refused(actions_service, tokens["bob"], "POST", f"{path}/approve", None, 403)
    assert own["detail"].startswith("four eyes")
    not_approved = refused(actions_service, tokens["bob"], "POST", f"{path}/apply", None, 409)
    assert not_approved["detail"].endswith("is pending: it cannot be applied")
    by_requester = refused(actions_service, tokens["alice"], "POST", f"{path}/approve", None, 403)
    assert by_requester["detail"].startswith("approving needs the approver role")
    assert actions_service.call(tokens["dave"], "POST", f"{path}/approve").status_code == 200
    others = refused(actions_service, tokens["alice"], "POST", f"{path}/apply", None, 403)
    assert others["detail"].startswith("applying someone else's request needs the approver")
    assert version(kube_admin, "eyes") == was


def test_an_applied_request_is_applied_once_whatever_is_retried(
    kube_admin: client.ApiClient, actions_service: Running, tokens: dict[str, str]
) -> None:
    create_deployment(kube_admin, "once", replicas=2)
    created = actions_service.call(tokens["alice"], "POST", "/v1/requests", scale("once", 4))
    path = f"/v1/requests/{created.json()['id']}"
    actions_service.call(tokens["bob"], "POST", f"{path}/approve")
    first = actions_service.call(tokens["alice"], "POST", f"{path}/apply", key="apply-1")
    assert first.json()["state"] == "applied"
    was = version(kube_admin, "once")
    again = actions_service.call(tokens["alice"], "POST", f"{path}/apply", key="apply-1")
    assert (again.status_code, again.json()) == (200, first.json())  # the same answer
    assert again.headers["Idempotent-Replayed"] == "true"
    replay = refused(actions_service, tokens["alice"], "POST", f"{path}/apply", None, 409)
    assert replay["detail"].endswith("is applied already")
    by_approver = refused(actions_service, tokens["bob"], "POST", f"{path}/apply", None, 409)
    assert by_approver["detail"] == replay["detail"]
    assert version(kube_admin, "once") == was
    applies = actions_service.store.query(
        f"SELECT count() AS n FROM v_actions_audit WHERE event = 'apply' AND result = 'ok' "
        f"AND request_id = '{created.json()['id']}'"
    )["n"][0]
    assert applies == 1


def test_an_object_changed_since_the_dry_run_is_not_applied(
    kube_admin: client.ApiClient, actions_service: Running, tokens: dict[str, str]
) -> None:
    create_deployment(kube_admin, "moving", replicas=2)
    created = actions_service.call(tokens["alice"], "POST", "/v1/requests", scale("moving", 3))
    path = f"/v1/requests/{created.json()['id']}"
    actions_service.call(tokens["bob"], "POST", f"{path}/approve")
    deployment = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/moving"
    # what a person does (the spec) is a change; what a controller does (status) is not:
    # a second request, whose object only a controller touched since, applies
    other = actions_service.call(tokens["alice"], "POST", "/v1/requests", scale("moving", 4))
    other_path = f"/v1/requests/{other.json()['id']}"
    actions_service.call(tokens["bob"], "POST", f"{other_path}/approve")
    send(kube_admin, "PATCH", f"{deployment}/status", [], {"status": {"observedGeneration": 1}},
         "application/merge-patch+json")  # fmt: skip
    applied = actions_service.call(tokens["alice"], "POST", f"{other_path}/apply")
    assert applied.json()["state"] == "applied", applied.text
    assert actions_service.call(tokens["bob"], "POST", f"{other_path}/undo").status_code == 200
    send(kube_admin, "PATCH", deployment, [], {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": "shop:1.5-by-hand"}]}}}},
        "application/strategic-merge-patch+json")  # fmt: skip
    was = version(kube_admin, "moving")
    count = actions_service.audit_count()
    answer = actions_service.call(tokens["alice"], "POST", f"{path}/apply")
    assert answer.status_code == 409
    assert answer.json()["detail"].startswith("the object changed since the dry-run")
    assert actions_service.audit_count() == count + 2  # the call, and the apply refused
    live = read(kube_admin, deployment)
    assert (live["spec"]["replicas"], live["metadata"]["resourceVersion"]) == (2, was)
    shown = actions_service.call(tokens["carol"], "GET", path).json()
    assert shown["state"] == "failed"


def test_idempotency_keys_create_once_and_refuse_another_call(
    kube_admin: client.ApiClient, actions_service: Running, tokens: dict[str, str]
) -> None:
    create_deployment(kube_admin, "keyed", replicas=2)
    first = actions_service.call(tokens["alice"], "POST", "/v1/requests", scale("keyed", 3), "k1")
    again = actions_service.call(tokens["alice"], "POST", "/v1/requests", scale("keyed", 3), "k1")
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    other = actions_service.call(tokens["alice"], "POST", "/v1/requests", scale("keyed", 4), "k1")
    assert other.status_code == 422
    assert other.json()["detail"] == "this Idempotency-Key was used for another call"
    # another caller's key is its own
    bobs = actions_service.call(tokens["bob"], "POST", "/v1/requests", scale("keyed", 4), "k1")
    assert bobs.status_code == 201 and bobs.json()["id"] != first.json()["id"]
    listed = actions_service.call(tokens["carol"], "GET", "/v1/requests?name=keyed").json()
    assert listed["total"] == 2


def test_a_static_token_and_an_auto_approving_rule_need_no_second_person(
    kube_admin: client.ApiClient, tokens: dict[str, str], tmp_path: Path
) -> None:
    bot = {"name": "bot-restarts", "roles": ["requester"], "actions": ["restart"],
           "clusters": [".*"], "namespaces": [NAMESPACE], "auto_approve": True}  # fmt: skip
    policy = {**POLICY, "rules": [bot, *POLICY["rules"]]}  # the first rule that allows decides
    create_deployment(kube_admin, "bot-target")
    with serving(kube_admin, write_config(tmp_path / "c", policy), tmp_path / "s") as service:
        body = {"action": "restart", "kind": "Deployment", "namespace": NAMESPACE,
                "name": "bot-target"}  # fmt: skip
        created = service.call(tokens["ci-bot"], "POST", "/v1/requests", body).json()
        assert (created["state"], created["requester"]) == ("approved", "static:ci-bot")
        applied = service.call(tokens["ci-bot"], "POST", f"/v1/requests/{created['id']}/apply")
        assert applied.json()["state"] == "applied"
        wrong = service.call("ci-bot-token-but-not-that-one", "GET", "/v1/requests")
        assert wrong.status_code == 401


def test_an_expired_approval_is_not_applied(
    kube_admin: client.ApiClient, tokens: dict[str, str], tmp_path: Path
) -> None:
    create_deployment(kube_admin, "slow", replicas=2)
    settings = write_config(tmp_path / "c", POLICY, approval_ttl="1s")
    with serving(kube_admin, settings, tmp_path / "s") as service:
        created = service.call(tokens["alice"], "POST", "/v1/requests", scale("slow", 3)).json()
        path = f"/v1/requests/{created['id']}"
        service.call(tokens["bob"], "POST", f"{path}/approve")
        time.sleep(1.5)
        late = service.call(tokens["alice"], "POST", f"{path}/apply")
        assert late.status_code == 409 and "expired" in late.json()["detail"]
        assert service.call(tokens["carol"], "GET", path).json()["state"] == "pending"
        service.call(tokens["bob"], "POST", f"{path}/approve")
        assert service.call(tokens["alice"], "POST", f"{path}/apply").status_code == 200


@pytest.mark.parametrize("verb", ["approve", "reject", "apply", "undo"])
def test_a_request_that_does_not_exist_is_404(
    actions_service: Running, tokens: dict[str, str], verb: str
) -> None:
    answer = refused(actions_service, tokens["bob"], "POST",
                     f"/v1/requests/{'0' * 16}/{verb}", None, 404)  # fmt: skip
    assert answer["detail"] == f"no request {'0' * 16}"


def test_no_credential_leaves_the_cluster_through_a_request_or_its_audit(
    kube_admin: client.ApiClient, actions_service: Running, tokens: dict[str, str]
) -> None:
    secret = "hunter2-SUPERSECRET-value"
    manifest = _deployment("leaky")
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    container["env"] = [{"name": "DB_PASSWORD", "value": secret}]
    send(kube_admin, "POST", f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments", [],
         {**manifest, "metadata": {"name": "leaky", "namespace": NAMESPACE}})  # fmt: skip
    pod_path = f"/api/v1/namespaces/{NAMESPACE}/pods"
    send(kube_admin, "POST", pod_path, [], {"metadata": {"name": "leaky-crashed"}, "spec": {
        "containers": [{"name": "app", "image": "x:1",
                        "env": [{"name": "API_TOKEN", "value": secret}]}]}})  # fmt: skip
    send(kube_admin, "PATCH", f"{pod_path}/leaky-crashed/status", [],
         {"status": {"phase": "Failed"}}, "application/merge-patch+json")  # fmt: skip
    scaled = actions_service.call(tokens["alice"], "POST", "/v1/requests", scale("leaky", 2), "k")
    crashed = {"action": "delete_pod", "kind": "Pod", "namespace": NAMESPACE,
               "name": "leaky-crashed"}  # fmt: skip
    deleted = actions_service.call(tokens["alice"], "POST", "/v1/requests", crashed)
    assert scaled.status_code == deleted.status_code == 201
    assert "<redacted" in deleted.text  # the whole pod in the diff, its env value hidden
    shown = [
        actions_service.call(tokens["carol"], "GET", "/v1/requests").text,
        actions_service.call(tokens["carol"], "GET", "/v1/audit?limit=500").text,
        scaled.text,
        deleted.text,
    ]
    for table in ("action_requests", "action_audit", "action_idempotency"):
        shown.append(str(actions_service.store.query(f"SELECT * FROM {table}").to_dicts()))
    assert not [text for text in shown if secret in text]


def test_a_large_body_or_a_caller_without_a_token_is_refused_before_the_body_is_read(
    actions_service: Running, tokens: dict[str, str]
) -> None:
    big = "x" * (65 * 1024)
    too_large = actions_service.session.post(
        actions_service.url + "/v1/requests", data=big,
        headers={"Authorization": f"Bearer {tokens['alice']}", "Content-Type": "application/json"},
    )  # fmt: skip
    assert too_large.status_code == 413
    no_token = actions_service.session.post(actions_service.url + "/v1/requests", data="{not json")
    assert no_token.status_code == 401
    not_json = actions_service.session.post(
        actions_service.url + "/v1/requests", data="{not json",
        headers={"Authorization": f"Bearer {tokens['alice']}", "Content-Type": "application/json"},
    )  # fmt: skip
    assert (not_json.status_code, not_json.json()["detail"]) == (400, "the body is not JSON")
    (record,) = actions_service.store.query(
        "SELECT who, status FROM v_actions_audit ORDER BY at DESC LIMIT 1"
    ).rows()
    assert record == (user("alice"), 400)  # who sent it, though its body was not read
    typo = actions_service.call(tokens["carol"], "GET", "/v1/audit?requester=x")
    assert (typo.status_code, typo.json()["detail"]) == (422, "unknown query parameter requester")
    dry = actions_service.call(tokens["alice"], "POST", f"/v1/requests/{'0' * 16}/apply?dryRun=All")
    assert (dry.status_code, dry.json()["detail"]) == (422, "unknown query parameter dryRun")
    by_who = actions_service.call(tokens["carol"], "GET", "/v1/audit?who=x&limit=1")
    assert by_who.status_code == 200


def test_a_new_limit_is_measured_against_its_request(
    kube_admin: client.ApiClient, actions_service: Running, tokens: dict[str, str]
) -> None:
    create_deployment(kube_admin, "unlimited")  # requests cpu 100m, no limits
    ask = {"action": "set_resources", "kind": "Deployment", "namespace": NAMESPACE,
           "name": "unlimited", "params": {"resources": {"container": "app"}}}  # fmt: skip
    huge = refused(actions_service, tokens["alice"], "POST", "/v1/requests",
                   _with_limits(ask, {"cpu": "500"}), 403)  # fmt: skip
    assert huge["detail"] == (
        "app limits.cpu 0.1 -> 500 is more than a factor of 4 (new: against requests.cpu)"
    )
    within = actions_service.call(tokens["alice"], "POST", "/v1/requests",
                                  _with_limits(ask, {"cpu": "400m"}))  # fmt: skip
    assert within.status_code == 201, within.text
    nothing = refused(actions_service, tokens["alice"], "POST", "/v1/requests",
                      _with_limits(ask, {"memory": "1Ti", "cpu": "400m"}), 403)  # fmt: skip
    assert nothing["detail"] == "app limits.memory 1.34218e+08 -> 1.09951e+12 is more than a " \
        "factor of 4 (new: against requests.memory)"  # fmt: skip


def _with_limits(ask: dict[str, Any], limits: dict[str, str]) -> dict[str, Any]:
    resources = {**ask["params"]["resources"], "limits": limits}
    return {**ask, "params": {"resources": resources}}
