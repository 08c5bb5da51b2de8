"""The pure parts of the action service: what each remediation makes of an object, what
the policy's limits are shown of it, and who a token is (roles, static hashes, the
review's cache). Expected objects are written out by hand."""

from datetime import UTC, datetime
from typing import Any

import pytest

from kubeopera.actions.auth import Authenticator, Binding, StaticToken, hash_token
from kubeopera.actions.policy import Action, Role
from kubeopera.actions.remediations import (
    ContainerResources,
    FieldValue,
    Params,
    RemediationError,
    Target,
    change,
    check_params,
    drift_fields,
    holds,
    reverse,
    rollback_fields,
    writes,
    written,
)
from kubeopera.streams.drift import against
from kubeopera.streams.object_diff import LONGEST, _shown

NOW = datetime(2026, 3, 6, 9, 30, 15, tzinfo=UTC)
APP = "/spec/template/spec/containers/[name=app]"


def live() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", "resourceVersion": "41",
                     "labels": {"app": "web"}, "managedFields": [{"manager": "kubectl"}]},
        "spec": {"replicas": 3, "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
            "containers": [{"name": "app", "image": "shop:1.4", "resources": {
                "requests": {"cpu": "100m", "memory": "128Mi"}}},
                {"name": "proxy", "image": "envoy:1"}]}}},
        "status": {"replicas": 3},
    }  # fmt: skip


def desired(
    action: Action, obj: dict[str, Any], params: Params, fields: list[FieldValue] | None = None
) -> dict[str, Any]:
    return written(obj, writes(action, obj, params, NOW, fields or []))


def test_scale_restart_and_cordon_change_only_their_field_and_keep_the_precondition() -> None:
    scaled = desired(Action.SCALE, live(), Params(replicas=5))
    expected = live()
    del expected["status"], expected["metadata"]["managedFields"]
    expected["spec"]["replicas"] = 5
    assert scaled == expected  # resourceVersion 41 kept: the update's precondition
    restarted = desired(Action.RESTART, live(), Params())
    assert restarted["spec"]["template"]["metadata"] == {
        "labels": {"app": "web"},
        "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-03-06T09:30:15Z"},
    }
    node = {"metadata": {"name": "n1", "resourceVersion": "7"}, "spec": {"podCIDR": "10.0.0.0/24"}}
    cordoned = desired(Action.CORDON, node, Params())
    assert cordoned["spec"] == {"podCIDR": "10.0.0.0/24", "unschedulable": True}
    assert desired(Action.UNCORDON, cordoned, Params())["spec"] == node["spec"]


def test_undo_writes_back_each_written_field_as_it_was() -> None:
    wanted = ContainerResources(container="app", requests={"cpu": "250m"},
                                limits={"memory": "512Mi"})  # fmt: skip
    fields = writes(Action.SET_RESOURCES, live(), Params(resources=wanted), NOW)
    assert fields == [
        FieldValue(path=f"{APP}/resources/requests/cpu", value='"250m"'),
        FieldValue(path=f"{APP}/resources/limits/memory", value='"512Mi"'),
    ]
    back = reverse(live(), fields)
    assert back == [
        FieldValue(path=f"{APP}/resources/requests/cpu", value='"100m"'),
        FieldValue(path=f"{APP}/resources/limits/memory", value=None),  # it had none
    ]
    after = written(live(), fields)
    assert holds(after, fields) and not holds(after, back)
    restored = written(after, back)
    container = restored["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"] == {
        "requests": {"cpu": "100m", "memory": "128Mi"},
        "limits": {},
    }  # fmt: skip (the API server drops it)
    assert holds(restored, back)


def test_set_resources_changes_one_container_and_the_limits_see_both_sides() -> None:
    wanted = ContainerResources(container="app", requests={"cpu": "250m"},
                                limits={"memory": "512Mi"})  # fmt: skip
    after = desired(Action.SET_RESOURCES, live(), Params(resources=wanted))
    containers = after["spec"]["template"]["spec"]["containers"]
    assert containers[0]["resources"] == {
        "requests": {"cpu": "250m", "memory": "128Mi"},
        "limits": {"memory": "512Mi"},
    }
    assert containers[1] == {"name": "proxy", "image": "envoy:1"}
    judged = change(Action.SET_RESOURCES, live(), after)
    assert judged.resources == (
        {"app": {"requests.cpu": 0.1, "requests.memory": 128 * 2**20}, "proxy": {}},
        {"app": {"requests.cpu": 0.25, "requests.memory": 128 * 2**20,
                 "limits.memory": 512 * 2**20}, "proxy": {}},
    )  # fmt: skip
    with pytest.raises(RemediationError, match=r"no container sidecar \(it has app, proxy\)"):
        desired(Action.SET_RESOURCES, live(),
                Params(resources=ContainerResources(container="sidecar")))  # fmt: skip
    with pytest.raises(ValueError, match="should match pattern"):
        ContainerResources(container="app", requests={"cpu": "lots"})


def test_revert_drift_writes_each_drifted_field_back_to_the_baselines_value() -> None:
    baseline = live()
    drifted = live()
    drifted["spec"]["template"]["spec"]["containers"][0]["image"] = "shop:1.6-hotfix"
    drifted["metadata"]["labels"]["hotfix"] = "true"
    del drifted["spec"]["template"]["spec"]["containers"][1]  # the proxy removed
    evidence = {"entries": [d.as_dict() for d in against(baseline, drifted, declared=False)]}
    fields = drift_fields(evidence)
    reverted = desired(Action.REVERT_DRIFT, drifted, Params(finding="f"), fields)
    expected = live()
    del expected["status"], expected["metadata"]["managedFields"]
    assert reverted == expected


def test_rollback_takes_each_fields_value_before_its_first_change_since() -> None:
    rows = [
        {"path": f"{APP}/image", "old": '"shop:1.3"', "observed_at": 2},
        {"path": f"{APP}/image", "old": '"shop:1.4"', "observed_at": 3},
        {"path": f"{APP}/env", "old": None, "observed_at": 3},
    ]
    assert rollback_fields(rows) == [
        FieldValue(path=f"{APP}/env", value=None),
        FieldValue(path=f"{APP}/image", value='"shop:1.3"'),
    ]
    now = live()
    now["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "A", "value": "1"}]
    back = desired(Action.ROLLBACK, now, Params(), rollback_fields(rows))
    assert back["spec"]["template"]["spec"]["containers"][0] == {
        "name": "app", "image": "shop:1.3",
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
    }  # fmt: skip


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (_shown(["--flag=" + "x" * LONGEST]), "only the start of its value is kept"),
        ('"<redacted hmac-sha256:0123456789abcdef>"', "its value was redacted"),
    ],
)
def test_a_value_the_timeline_does_not_hold_whole_is_never_written(value: str, why: str) -> None:
    fields = [FieldValue(path=f"{APP}/args", value=value)]
    with pytest.raises(RemediationError, match=why):
        desired(Action.ROLLBACK, live(), Params(), fields)


def test_what_cannot_be_asked_is_refused_before_the_api_server_is() -> None:
    web = Target(cluster="c", kind="Deployment", namespace="shop", name="web")
    with pytest.raises(RemediationError, match="cordon changes a Node, not a Deployment"):
        check_params(Action.CORDON, web, Params())
    with pytest.raises(RemediationError, match=r"scale needs params\.replicas"):
        check_params(Action.SCALE, web, Params())
    with pytest.raises(RemediationError, match="a Node has no namespace"):
        check_params(Action.CORDON, Target(cluster="c", kind="Node", namespace="x", name="n"),
                     Params())  # fmt: skip
    running = {"metadata": {"name": "p"}, "status": {"phase": "Running"}}
    with pytest.raises(RemediationError, match="the pod is Running, not Failed"):
        desired(Action.DELETE_POD, running, Params())
    with pytest.raises(ValueError):
        Target(cluster="c", kind="Deployment", namespace="Bad_NS", name="web")


def test_roles_come_from_bindings_ranked_and_static_tokens_only_by_their_hash() -> None:
    reviews: list[str] = []

    def review(token: str) -> tuple[str, list[str]] | None:
        reviews.append(token)
        return {"t-alice": ("alice", ["developers"]), "t-sre": ("sam", ["sre"])}.get(token)

    now = [0.0]
    bindings = [Binding(role=Role.REQUESTER, groups=["developers"]),
                Binding(role=Role.APPROVER, users=["sam"])]  # fmt: skip
    bot_token = "t-bot-" + "0" * 40
    bot = StaticToken(name="ci", hash=hash_token(bot_token), roles=[Role.REQUESTER])
    auth = Authenticator(bindings, [bot], review, ttl=10, clock=lambda: now[0])
    alice = auth.identify("t-alice")
    assert alice is not None and alice.roles == {Role.REQUESTER, Role.VIEWER}
    sam = auth.identify("t-sre")
    assert sam is not None and sam.roles == {Role.APPROVER, Role.REQUESTER, Role.VIEWER}
    ci = auth.identify(bot_token)
    assert ci is not None and (ci.name, ci.via) == ("static:ci", "static")
    assert auth.identify("nope") is None
    assert reviews == ["t-alice", "t-sre", "nope"]  # the static token is never sent away
    auth.identify("t-alice")
    auth.identify("nope")
    assert len(reviews) == 3  # answers kept for the ttl, misses too
    now[0] = 10.5
    auth.identify("t-alice")
    assert reviews[-1] == "t-alice"
    for weak in ("plain-token", "sha256$AAAA$AAAA", "scrypt$16384$8$1$c2FsdA==$ZGlnZXN0"):
        with pytest.raises(ValueError, match="not a hash"):
            StaticToken(name="x", hash=weak, roles=[Role.VIEWER])
