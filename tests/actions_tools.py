"""The action service as the tests run it: on the real kube-apiserver, as the ServiceAccount
of its own manifest (deploy/kubernetes/actions.yaml, exactly that ClusterRole), served by
uvicorn on a loopback port; its callers are ServiceAccounts of the same API server, whose
tokens it reviews (TokenReview), and one static token."""

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import requests
import uvicorn
import yaml
from kube_tools import as_service_account
from kubernetes import client, utils
from kubernetes.client.rest import ApiException

from kubeopera.actions.auth import hash_token
from kubeopera.actions.config import load_service_config
from kubeopera.actions.server import Publishing, make_app
from kubeopera.collectors.kubernetes.api import get_json, send
from kubeopera.collectors.kubernetes.collector import Collector
from kubeopera.collectors.kubernetes.resources import RESOURCES
from kubeopera.deploy.kafka import free_port
from kubeopera.models import Message
from kubeopera.sinks.clickhouse import ChdbBackend, Store

MANIFEST = Path(__file__).resolve().parents[1] / "deploy" / "kubernetes" / "actions.yaml"
PEOPLE = "people"
CLUSTER = "kube"
STATIC_TOKEN = "ci-bot-token-" + "x" * 20
"""The static token the settings hold only the hash of."""

ROLES = {"alice": "requester", "bob": "approver", "carol": "viewer", "dave": "approver"}
"""The callers, ServiceAccounts of namespace ``people`` (mallory holds no role)."""


def user(name: str) -> str:
    """The user name the API server gives a caller's token."""
    return f"system:serviceaccount:{PEOPLE}:{name}"


def ensure(create: Any, *args: Any) -> None:
    """Create, where an earlier test may have already (409)."""
    try:
        create(*args)
    except ApiException as error:
        if error.status != 409:
            raise


def install(admin: client.ApiClient) -> None:
    """The service's manifest, RBAC only (no pod runs here), and the callers."""
    documents = [d for d in yaml.safe_load_all(MANIFEST.read_text()) if d]
    core = client.CoreV1Api(admin)
    for name in ("kubeopera", PEOPLE):
        ensure(core.create_namespace, client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    for document in documents:
        if document["kind"] in ("ServiceAccount", "ClusterRole", "ClusterRoleBinding"):
            try:
                utils.create_from_dict(admin, document)
            except utils.FailToCreateError as error:
                if any(e.status != 409 for e in error.api_exceptions):
                    raise
    for name in (*ROLES, "mallory"):
        ensure(
            core.create_namespaced_service_account,
            PEOPLE,
            client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=name)),
        )


def token(admin: client.ApiClient, name: str) -> str:
    """A fresh token of caller ``name`` (TokenRequest API)."""
    request = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[]))
    answer = client.CoreV1Api(admin).create_namespaced_service_account_token(name, PEOPLE, request)
    return str(answer.status.token)


def service_token(admin: client.ApiClient) -> str:
    """A fresh token of the service's own ServiceAccount (its manifest's)."""
    request = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[]))
    core = client.CoreV1Api(admin)
    answer = core.create_namespaced_service_account_token("kubeopera-actions", "kubeopera", request)
    return str(answer.status.token)


def write_config(folder: Path, policy: dict[str, Any], **settings: Any) -> Path:
    """The service's settings file (and its policy beside it) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "policy.yaml").write_text(yaml.safe_dump(policy))
    config = {
        "cluster": CLUSTER,
        "policy": "policy.yaml",
        "bindings": [{"role": role, "users": [user(name)]} for name, role in ROLES.items()],
        "static_tokens": [
            {"name": "ci-bot", "hash": hash_token(STATIC_TOKEN), "roles": ["requester"]}
        ],
        **settings,
    }
    path = folder / "actions.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


class Running:
    """A service being served: ``url``, its ``store``, and calls to it as someone."""

    def __init__(self, url: str, store: Store, server: uvicorn.Server) -> None:
        self.url, self.store, self.server = url, store, server
        self.session = requests.Session()

    def call(
        self, who: str | None, method: str, path: str, json: Any = None, key: str | None = None
    ) -> requests.Response:
        headers = {"Authorization": f"Bearer {who}"} if who is not None else {}
        if key is not None:
            headers["Idempotency-Key"] = key
        return self.session.request(method, self.url + path, json=json, headers=headers, timeout=60)

    def audit_count(self) -> int:
        return int(self.store.query("SELECT count() AS n FROM v_actions_audit")["n"][0])


@contextmanager
def serving(
    admin: client.ApiClient,
    config_path: Path,
    data: Path,
    store: Store | None = None,
    publisher: Publishing | None = None,
) -> Iterator[Running]:
    """The service with the settings at ``config_path`` on the store at ``data`` (or the
    open ``store``), acting as its manifest's ServiceAccount; token reviews are not
    cached (``review_ttl`` 0), so a test sees each call reviewed."""
    config, policy = load_service_config(config_path)
    with (
        as_service_account(admin, "kubeopera", "kubeopera-actions") as api,
        nullcontext(store) if store else Store(ChdbBackend(data), raw_retention_days=0) as opened,
    ):
        app, _ = make_app(config, policy, api, opened, publisher, review_ttl=0)
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline, "the service did not start"
            time.sleep(0.05)
        try:
            yield Running(f"http://127.0.0.1:{port}", opened, server)
        finally:
            server.should_exit = True
            thread.join(timeout=30)


class Watching:
    """The real collector watching the API server in a thread; what it reports is kept
    (``take``) for the test to run through the pipeline when nothing else uses the store
    (chDB: one thread at a time)."""

    def __init__(self, api: client.ApiClient) -> None:
        self._messages: list[Message] = []
        self._lock = threading.Lock()
        self.collector = Collector(api, CLUSTER, self._keep, resources=RESOURCES,
                                   usage_every=None)  # fmt: skip
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self.collector.run, args=(self._stop,))
        self._thread.start()

    def _keep(self, messages: list[Message]) -> None:
        with self._lock:
            self._messages.extend(messages)

    def wait_for(self, kind: str, count: int, timeout: float = 60) -> None:
        """Until ``count`` changes of ``kind`` were reported."""
        deadline = time.monotonic() + timeout
        while self.collector.counts[kind] < count:
            assert time.monotonic() < deadline, f"{kind}: {self.collector.counts[kind]} seen"
            time.sleep(0.05)

    def take(self) -> list[Message]:
        with self._lock:
            taken, self._messages = self._messages, []
        return taken

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)


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


def node(admin: client.ApiClient, name: str, unschedulable: bool = False) -> str:
    path = "/api/v1/nodes"
    spec = {"unschedulable": True} if unschedulable else {}
    send(admin, "POST", path, [], {"metadata": {"name": name}, "spec": spec})
    return f"{path}/{name}"


def pod(admin: client.ApiClient, name: str, node_name: str, labels: dict[str, str],
        phase: str, namespace: str = NAMESPACE) -> str:  # fmt: skip
    """A pod bound to ``node_name`` in ``phase`` (set as the kubelet would: pods/status)."""
    path = f"/api/v1/namespaces/{namespace}/pods"
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


def edit(admin: client.ApiClient, name: str, patch: dict[str, Any]) -> None:
    """``kubectl edit``: a strategic merge patch under kubectl-edit's field manager."""
    path = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{name}"
    send(admin, "PATCH", path, [("fieldManager", "kubectl-edit")], patch,
         "application/strategic-merge-patch+json")  # fmt: skip


def image(name: str, tag: str) -> dict[str, Any]:
    return {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": tag}]}}}}


IMAGE = "/spec/template/spec/containers/[name=app]/image"
