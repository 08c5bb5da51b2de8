"""API fuzzing of the action service with schemathesis, from the OpenAPI document the
running service serves (``/openapi.json``): the service on the real kube-apiserver, as
the ServiceAccount of its manifest, with two Deployments of namespace ``shop`` to act on
and a few requests in each state to find.

Every operation is called with generated data, valid and (but for the callers without a
token) invalid, as each caller: bob (approver), alice (requester), ci-bot (the static
token, requester), carol (viewer), mallory (a valid token, no role) and nobody. Each
answer must pass every schemathesis check: no 5xx, a documented status code, content type
and headers, a body of the documented schema, data the schema forbids refused, data it
allows not refused as malformed, and ``ignored_auth`` (the same call without the token,
and with a wrong one, refused). Beyond those: mallory never succeeds and carol never
changes anything; without a token, with one the API server does not know, or with a
malformed ``Authorization`` header, every operation is answered 401 with
``WWW-Authenticate: Bearer``.

Some path ids are swapped for ids of existing requests and some bodies for requests
about the real Deployments, so the handlers run past "not found" too. Generation is
deterministic (``derandomize``) and small (``MAX_EXAMPLES`` an operation and caller).
"""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from actions_tools import STATIC_TOKEN, Running, install, serving, token, write_config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kubernetes import client, config
from schemathesis import APIOperation, BaseSchema, Case, CheckContext, GenerationMode, Response

from kubeopera.actions.policy import Action
from kubeopera.collectors.kubernetes.api import send
from kubeopera.deploy.testcluster import LocalCluster

NAMESPACE = "shop"
DEPLOYMENTS = ("web", "api")
MAX_EXAMPLES = 25

POLICY: dict[str, Any] = {
    "protected_namespaces": ["kube-system"],
    "rules": [
        {"name": "shop-requesters", "roles": ["requester"],
         "actions": ["scale", "restart", "set_resources", "rollback"],
         "clusters": ["kube"], "namespaces": [NAMESPACE],
         "limits": {"replicas_factor": 4, "resources_factor": 4}},
        {"name": "sre", "roles": ["approver"], "actions": [a.value for a in Action],
         "clusters": [".*"], "namespaces": [".*"], "auto_approve": True},
    ],
}  # fmt: skip

CALLERS = ("bob", "alice", "ci-bot", "carol", "mallory", "nobody")
"""Who calls: approver, requester, static requester, viewer, no role, no token."""

READS = ("GET",)


@pytest.fixture(scope="module")
def admin(kube_cluster: LocalCluster) -> Iterator[client.ApiClient]:
    with config.new_client_from_config(config_file=str(kube_cluster.kubeconfig)) as api:
        install(api)
        core = client.CoreV1Api(api)
        try:
            core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE)))
        except client.ApiException as error:
            assert error.status == 409
        for name in DEPLOYMENTS:
            try:
                send(api, "POST", f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments", [],
                     _deployment(name))  # fmt: skip
            except client.ApiException as error:
                assert error.status == 409
        yield api


def _deployment(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"app": name}},
        "spec": {
            "replicas": 2, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [
                {"name": "app", "image": f"{name}:1.0",
                 "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]}},
        },
    }  # fmt: skip


@pytest.fixture(scope="module")
def tokens(admin: client.ApiClient) -> dict[str, str]:
    names = ("alice", "bob", "carol", "mallory")
    return {name: token(admin, name) for name in names} | {"ci-bot": STATIC_TOKEN}


@pytest.fixture(scope="module")
def service(
    admin: client.ApiClient, tokens: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Running]:
    folder = tmp_path_factory.mktemp("fuzz")
    with serving(admin, write_config(folder / "config", POLICY), folder / "store") as running:
        _seed(running, tokens)
        yield running


def _seed(service: Running, tokens: dict[str, str]) -> None:
    """Requests pending, approved, applied and rejected, for the fuzzed ids to find."""
    made = []
    for replicas in (3, 4, 5, 6):
        body = {"action": "scale", "kind": "Deployment", "namespace": NAMESPACE, "name": "web",
                "params": {"replicas": replicas}}  # fmt: skip
        answer = service.call(tokens["alice"], "POST", "/v1/requests", body)
        assert answer.status_code == 201, answer.text
        made.append(answer.json()["id"])
    pending, approved, applied, rejected = made
    for rid in (approved, applied):
        answer = service.call(tokens["bob"], "POST", f"/v1/requests/{rid}/approve", {})
        assert answer.status_code == 200, answer.text
    answer = service.call(tokens["alice"], "POST", f"/v1/requests/{applied}/apply")
    assert answer.status_code == 200, answer.text
    answer = service.call(tokens["bob"], "POST", f"/v1/requests/{rejected}/reject", {})
    assert answer.status_code == 200, answer.text
    assert pending


@pytest.fixture(scope="module")
def api_schema(service: Running) -> BaseSchema:
    """The OpenAPI document the running service serves."""
    return schemathesis.openapi.from_url(f"{service.url}/openapi.json")


def _known_ids(service: Running) -> list[str]:
    rows = service.store.query("SELECT DISTINCT id FROM action_requests ORDER BY id")
    return [str(i) for i in rows["id"]]


GUIDED_BODY = st.fixed_dictionaries(
    {
        "action": st.sampled_from([a.value for a in Action]),
        "kind": st.sampled_from(["Deployment", "StatefulSet", "Node", "Pod"]),
        "namespace": st.sampled_from([NAMESPACE, "kube-system", "default", ""]),
        "name": st.sampled_from([*DEPLOYMENTS, "gone"]),
        "params": st.fixed_dictionaries(
            {},
            optional={
                "replicas": st.integers(0, 12),
                "resources": st.fixed_dictionaries(
                    {
                        "container": st.sampled_from(["app", "sidecar"]),
                        "requests": st.fixed_dictionaries(
                            {}, optional={"cpu": st.sampled_from(["50m", "200m", "4"])}
                        ),
                    }
                ),
            },
        ),
    }
)
"""Requests about the real Deployments (and near misses), which generated bodies hardly
ever name."""


def _bearer(who: str, tokens: dict[str, str]) -> dict[str, str]:
    return {} if who == "nobody" else {"Authorization": f"Bearer {tokens[who]}"}


def no_success_without_role(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """mallory holds a valid token and no role: nothing succeeds."""
    assert response.status_code >= 400, f"mallory was answered {response.status_code}"
    return None


def viewer_changes_nothing(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """carol may read; any other call of hers is refused."""
    if case.method.upper() not in READS:
        assert response.status_code >= 400, f"carol's {case.method} answered {response.status_code}"
    return None


EXTRA_CHECKS = {"mallory": [no_success_without_role], "carol": [viewer_changes_nothing]}

UNAUTHENTICATED: tuple[dict[str, str], ...] = (
    {},
    {"Authorization": "Bearer not-a-token-the-api-server-knows"},
    {"Authorization": "Basic YWxpY2U6c2VjcmV0"},
    {"Authorization": "Bearer"},
)
"""Calls without a valid token (besides the generated one: none, or a made-up token)."""


SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@pytest.mark.parametrize("caller", CALLERS)
def test_fuzz(
    caller: str, service: Running, tokens: dict[str, str], api_schema: BaseSchema
) -> None:
    modes = [GenerationMode.POSITIVE]
    if caller != "nobody":
        modes.append(GenerationMode.NEGATIVE)
    failures = []
    for result in api_schema.get_all_operations():
        operation = result.ok()
        for mode in modes:
            try:
                _fuzz(operation, mode, caller, service, tokens)
            except Exception as failure:  # each operation's first failure, all reported
                failures.append(f"{operation.label} ({mode.value}): {failure}")
    assert not failures, "\n\n".join(failures)


def _fuzz(
    operation: APIOperation,
    mode: GenerationMode,
    caller: str,
    service: Running,
    tokens: dict[str, str],
) -> None:
    @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
    @SETTINGS
    def run(case: Case, data: st.DataObject) -> None:
        _steer(case, data, service)
        _check(case, caller, tokens)

    run()


def _steer(case: Case, data: st.DataObject, service: Running) -> None:
    """Now and then an existing request's id, or a body about a real Deployment."""
    if "request_id" in (case.path_parameters or {}) and data.draw(st.booleans(), "known id"):
        case.path_parameters["request_id"] = data.draw(st.sampled_from(_known_ids(service)), "id")
    if case.method.upper() == "POST" and case.path == "/v1/requests":
        if data.draw(st.booleans(), "guided body"):
            case.body = data.draw(GUIDED_BODY, "body")


def _check(case: Case, caller: str, tokens: dict[str, str]) -> None:
    """Call as ``caller`` and validate the answer; without a token, every way of not
    having one."""
    if caller != "nobody":
        case.call_and_validate(
            headers=_bearer(caller, tokens), additional_checks=EXTRA_CHECKS.get(caller, [])
        )
        return
    generated = dict(case.headers or {})
    bare = {k: v for k, v in generated.items() if k.lower() != "authorization"}
    for headers in (generated, *UNAUTHENTICATED):
        case.headers = {**bare, **headers}
        response = case.call()
        assert response.status_code == 401, (case.headers, response.status_code, response.text)
        assert response.headers.get("WWW-Authenticate") == "Bearer"
        case.validate_response(response)
