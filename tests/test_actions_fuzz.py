"""API fuzzing of the action service with schemathesis, from the OpenAPI document the
running service serves (``/openapi.json``): the service on the real kube-apiserver, as the
ServiceAccount of its manifest, with two Deployments of namespace ``shop`` to act on and
requests pending, approved, applied and rejected to find.

Every operation is called with generated data as each caller: bob (approver) and alice
(requester) with valid and invalid data, ci-bot (the static token, requester), carol
(viewer), mallory (a valid token, no role) and nobody with valid data (their calls are
refused before their data is read). Each answer must pass every check schemathesis runs
by default: no 5xx, a documented status code, content type and headers, a body of the
documented schema, data the schema forbids refused, data it allows not refused (but a
``POST`` may be refused with 422, "what cannot be done"), and ``ignored_auth`` (a call
that succeeds with the token is made again without it, and with a wrong one, and must be
refused). Beyond those: mallory never succeeds, carol changes nothing, and nobody,
whether without a token, with one the API server does not know or with a malformed
``Authorization`` header, is answered 401 with ``WWW-Authenticate: Bearer``.

Half the path ids are those of existing requests and half the bodies of ``POST
/v1/requests`` name the real Deployments (and near misses), so the handlers run past
"not found" into the policy, the dry-run, apply and undo. Generation is deterministic
(``derandomize``) and small (``EXAMPLES``).
"""

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from actions_tools import (
    NAMESPACE,
    Running,
    create_deployment,
    ensure,
    serving,
    token,
    write_config,
)
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from kubernetes import client
from schemathesis import APIOperation, BaseSchema, Case, CheckContext, GenerationMode, Response
from schemathesis.config import SchemathesisConfig

from kubeopera.actions.policy import Action

DEPLOYMENTS = ("fuzz-web", "fuzz-api")
"""Namespace ``shop``'s Deployments of this module (other modules have their own)."""

FUZZ_POLICY: dict[str, Any] = {
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
"""alice's requests wait for an approver; bob's are approved at once, so he applies and
undoes too."""

EXAMPLES: dict[str, dict[GenerationMode, int]] = {
    "bob": {GenerationMode.POSITIVE: 25, GenerationMode.NEGATIVE: 15},
    "alice": {GenerationMode.POSITIVE: 25, GenerationMode.NEGATIVE: 15},
    "ci-bot": {GenerationMode.POSITIVE: 10},
    "carol": {GenerationMode.POSITIVE: 10},
    "mallory": {GenerationMode.POSITIVE: 10},
    "nobody": {GenerationMode.POSITIVE: 10},
}
"""Who calls (approver, requester, static requester, viewer, no role, no token), and how
many calls of each operation with valid data and with invalid data each makes."""

DEFAULT_ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]
SCHEMATHESIS: dict[str, Any] = {
    "operations": [
        {
            "include-method": "POST",
            "checks": {"positive_data_acceptance": {"expected-statuses": [*DEFAULT_ACCEPTED, 422]}},
        },
        {"include-method": "GET", "generation": {"allow-extra-parameters": False}},
    ]
}
"""schemathesis's defaults but for two: a ``POST`` of valid data may be refused with 422,
as the API documents ("what cannot be done": scaling a Node, acting on another cluster,
a change that changes nothing; none of which a schema can say); and a ``GET`` is not
sent unknown query parameters as invalid data, since FastAPI ignores them (the
``POST`` operations have none; their bodies still get unknown fields)."""


@pytest.fixture(scope="module")
def service(
    kube_admin: client.ApiClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Running]:
    """The service with its Deployments and requests, its token reviews kept 10 s as in
    production (``serving`` keeps none, for the tests that count reviews): a call costs
    tens of milliseconds less."""
    for name in DEPLOYMENTS:
        ensure(create_deployment, kube_admin, name)
    folder = tmp_path_factory.mktemp("fuzz")
    with serving(
        kube_admin, write_config(folder / "config", FUZZ_POLICY), folder / "store"
    ) as running:
        running.server.config.app.state.authenticator.ttl = 10.0
        _seed(running, {name: token(kube_admin, name) for name in ("alice", "bob")})
        yield running


def _seed(service: Running, tokens: dict[str, str]) -> None:
    """Requests pending, approved, applied and rejected, for the fuzzed ids to find."""
    made = []
    for replicas in (3, 4, 5, 6):
        body = {"action": "scale", "kind": "Deployment", "namespace": NAMESPACE,
                "name": DEPLOYMENTS[0], "params": {"replicas": replicas}}  # fmt: skip
        answer = service.call(tokens["alice"], "POST", "/v1/requests", body)
        assert answer.status_code == 201, answer.text
        made.append(answer.json()["id"])
    _, approved, applied, rejected = made
    calls = [
        ("bob", f"{approved}/approve"),
        ("bob", f"{applied}/approve"),
        ("alice", f"{applied}/apply"),
        ("bob", f"{rejected}/reject"),
    ]
    for who, path in calls:
        answer = service.call(tokens[who], "POST", f"/v1/requests/{path}")
        assert answer.status_code == 200, answer.text


def _schema(service: Running, bearer: str | None) -> BaseSchema:
    """The OpenAPI document the running service serves, its calls made with ``bearer``
    (none: with what the generator makes up, if anything)."""
    settings: dict[str, Any] = dict(SCHEMATHESIS)
    if bearer is not None:  # the token given, not generated (nor left out as invalid data)
        settings["auth"] = {"openapi": {"HTTPBearer": {"bearer": bearer}}}
        settings["generation"] = {"with-security-parameters": False}
    return schemathesis.openapi.from_url(
        f"{service.url}/openapi.json", config=SchemathesisConfig.from_dict(settings)
    )


def _known_ids(service: Running, bearer: str) -> list[str]:
    answer = service.call(bearer, "GET", "/v1/requests?limit=500")
    assert answer.status_code == 200, answer.text
    return [item["id"] for item in answer.json()["items"]]


def _mostly(usual: list[Any], rare: list[Any]) -> st.SearchStrategy[Any]:
    """One of ``usual`` four times in five."""
    return st.sampled_from(usual * 4 * max(1, len(rare)) + rare * len(usual))


PARAMS: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "scale": st.fixed_dictionaries({"replicas": st.integers(0, 12)}),
    "restart": st.just({}),
    "set_resources": st.fixed_dictionaries(
        {
            "resources": st.fixed_dictionaries(
                {
                    "container": _mostly(["app"], ["sidecar"]),
                    "requests": st.fixed_dictionaries(
                        {"cpu": st.sampled_from(["50m", "200m", "300m", "4"])}
                    ),
                }
            )
        }
    ),
    "rollback": st.fixed_dictionaries(
        {},
        optional={
            "to": st.sampled_from(
                ["2020-01-01T00:00:00Z", "0097-09-11T20:58:22Z", "9999-12-31T23:59:59-01:00"]
            )
        },
    ),
    "drain": st.just({}),
}
"""Each action's parameters in a request about a Deployment (drain: one it cannot make)."""

GUIDED_BODY = st.sampled_from(sorted(PARAMS)).flatmap(
    lambda action: st.fixed_dictionaries(
        {
            "action": st.just(action),
            "kind": _mostly(["Deployment"], ["StatefulSet", "Node"]),
            "namespace": _mostly([NAMESPACE], ["kube-system", "default", ""]),
            "name": _mostly(list(DEPLOYMENTS), ["gone"]),
            "params": PARAMS[action],
        },
        optional={"cluster": _mostly(["kube"], ["elsewhere"]), "comment": st.text(max_size=20)},
    )
)
"""Requests about the real Deployments, most of them allowed (and near misses), which
generated bodies hardly ever are."""


Check = Callable[[CheckContext, Response, Case], bool | None]


def no_success_without_role(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """mallory holds a valid token and no role: nothing succeeds."""
    assert response.status_code >= 400, f"mallory was answered {response.status_code}"
    return None


def viewer_changes_nothing(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """carol may read; any other call of hers is refused."""
    if case.method.upper() != "GET":
        assert response.status_code >= 400, f"carol's {case.method} answered {response.status_code}"
    return None


CHECKS: dict[str, list[Check]] = {
    "mallory": [no_success_without_role],
    "carol": [viewer_changes_nothing],
}

UNAUTHENTICATED: tuple[dict[str, str], ...] = (
    {},
    {"Authorization": "Bearer not-a-token-the-api-server-knows"},
    {"Authorization": "Basic YWxpY2U6c2VjcmV0"},
    {"Authorization": "Bearer"},
)
"""Calls without a valid token (besides the generated one: none, or a made-up token)."""


@pytest.mark.parametrize("caller", list(EXAMPLES))
def test_fuzz(caller: str, service: Running, tokens: dict[str, str]) -> None:
    schema = _schema(service, tokens.get(caller))
    known = _known_ids(service, tokens["bob"])
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode, examples in EXAMPLES[caller].items():
            try:
                _fuzz(operation, mode, examples, caller, known)
            except (Exception, BaseExceptionGroup) as failure:  # each operation's first
                failures.append(f"{operation.label} ({mode.value}): {failure}")
    assert not failures, "\n\n".join(failures)


def _fuzz(
    operation: APIOperation, mode: GenerationMode, examples: int, caller: str, known: list[str]
) -> None:
    """``examples`` calls of ``operation`` as ``caller``, with data made in ``mode``; the
    first failure raised (not shrunk: each try is a call to the service)."""

    @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def run(case: Case, data: st.DataObject) -> None:
        _steer(case, data, known)
        if caller == "nobody":
            _unauthenticated(case, data)
        else:
            case.call_and_validate(additional_checks=CHECKS.get(caller, []))

    run()


def _steer(case: Case, data: st.DataObject, known: list[str]) -> None:
    """Now and then an existing request's id, or a body about a real Deployment, and
    then often no ``Idempotency-Key`` (generated keys repeat: most calls with one would be
    refused for reusing it)."""
    steered = False
    if "request_id" in (case.path_parameters or {}) and data.draw(st.booleans(), "known id"):
        case.path_parameters["request_id"] = data.draw(st.sampled_from(known), "id")
        steered = True
    creating = case.method.upper() == "POST" and case.path == "/v1/requests"
    if creating and data.draw(st.booleans(), "guided body"):
        case.body = data.draw(GUIDED_BODY, "body")
        steered = True
    if steered and case.headers and data.draw(st.booleans(), "no key"):
        case.headers = {k: v for k, v in case.headers.items() if k != "Idempotency-Key"}


def _unauthenticated(case: Case, data: st.DataObject) -> None:
    """The call as generated (no ``Authorization`` header, or a made-up token), and again
    with another header that holds no valid token: each refused with 401."""
    generated = dict(case.headers or {})
    bare = {k: v for k, v in generated.items() if k.lower() != "authorization"}
    for headers in (generated, data.draw(st.sampled_from(UNAUTHENTICATED), "headers")):
        case.headers = {**bare, **headers}
        response = case.call()
        assert response.status_code == 401, (case.headers, response.status_code, response.text)
        assert response.headers.get("www-authenticate") == ["Bearer"], response.headers
        case.validate_response(response)
