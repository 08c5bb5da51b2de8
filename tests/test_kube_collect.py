"""``kubeopera collect --kubeconfig`` against a real API server, publishing to a real
Kafka broker: object changes in order with owner chain and field manager, node price
facts, Events, and no planted secret anywhere in what was published."""

import hashlib
import hmac
import itertools
import json
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import SHARED_DATA
from kafka_tools import read_all
from kubernetes import client, config

from kubeopera.collectors.kubernetes.changes import OwnerLookup, Owners
from kubeopera.collectors.kubernetes.collector import Collector
from kubeopera.collectors.kubernetes.resources import RESOURCES
from kubeopera.deploy.kafka import Broker
from kubeopera.deploy.testcluster import LocalCluster
from kubeopera.models import ChangeType, KubeEvent, MetricBatch, NodePrice, ObjectChange, Topic

SECRET = "hunter2-planted-in-env"


def meta(
    name: str, owner: client.V1ObjectMeta | None = None, kind: str = ""
) -> client.V1ObjectMeta:
    refs = None
    if owner is not None:
        refs = [
            client.V1OwnerReference(
                api_version="apps/v1", kind=kind, name=owner.name, uid=owner.uid, controller=True
            )
        ]
    return client.V1ObjectMeta(name=name, labels={"app": "web"}, owner_references=refs)


def pod_spec() -> client.V1PodSpec:
    return client.V1PodSpec(
        containers=[
            client.V1Container(
                name="app",
                image="web:1",
                env=[client.V1EnvVar(name="DB_PASSWORD", value=SECRET)],
                resources=client.V1ResourceRequirements(requests={"cpu": "250m", "memory": "64Mi"}),
            )
        ]
    )


def rollout(
    api: client.ApiClient, namespace: str, manager: str | None = None
) -> tuple[client.V1ObjectMeta, client.V1ObjectMeta]:
    """A new namespace with Deployment ``web`` and its ReplicaSet ``web-7f`` (created
    here, since no controller runs): their metadata."""
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    template = client.V1PodTemplateSpec(metadata=meta("web"), spec=pod_spec())
    selector = client.V1LabelSelector(match_labels={"app": "web"})
    deployment = apps.create_namespaced_deployment(
        namespace,
        client.V1Deployment(
            metadata=meta("web"),
            spec=client.V1DeploymentSpec(selector=selector, template=template),
        ),
        field_manager=manager,
    ).metadata
    replicaset = apps.create_namespaced_replica_set(
        namespace,
        client.V1ReplicaSet(
            metadata=meta("web-7f", deployment, "Deployment"),
            spec=client.V1ReplicaSetSpec(selector=selector, template=template),
        ),
    ).metadata
    return deployment, replicaset


def plant(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    _, replicaset = rollout(api, "collected", manager="helm")
    pod = core.create_namespaced_pod(
        "collected",
        client.V1Pod(metadata=meta("web-7f-a", replicaset, "ReplicaSet"), spec=pod_spec()),
    )
    core.create_namespaced_config_map(
        "collected", client.V1ConfigMap(metadata=meta("settings"), data={"dsn": SECRET})
    )
    core.create_node(
        client.V1Node(
            metadata=client.V1ObjectMeta(
                name="node-1",
                labels={
                    "node.kubernetes.io/instance-type": "m5.large",
                    "topology.kubernetes.io/region": "us-east-1",
                    "topology.kubernetes.io/zone": "us-east-1a",
                    "karpenter.sh/capacity-type": "spot",
                },
            )
        )
    )
    core.create_namespaced_event(
        "collected",
        client.CoreV1Event(
            metadata=client.V1ObjectMeta(name="web-7f-a.backoff"),
            involved_object=client.V1ObjectReference(
                kind="Pod", namespace="collected", name="web-7f-a", uid=pod.metadata.uid
            ),
            reason="BackOff",
            message="Back-off restarting failed container",
            type="Warning",
            count=3,
            last_timestamp="2026-03-02T10:00:00Z",
            first_timestamp="2026-03-02T09:55:00Z",
            source=client.V1EventSource(component="kubelet", host="node-1"),
        ),
    )


def test_the_collector_publishes_a_clusters_changes(
    kube_cluster: LocalCluster, kafka: Broker, tmp_path: Path
) -> None:
    with config.new_client_from_config(config_file=str(kube_cluster.kubeconfig)) as admin:
        plant(admin)
        env = {**os.environ, "KUBEOPERA_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap}
        command = ["kubeopera", "collect", "--kubeconfig", str(kube_cluster.kubeconfig)]
        collector = subprocess.Popen(
            [*command, "--cluster-name", "it", "--stop-after", "12"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(6)  # listed and watching
        core = client.CoreV1Api(admin)
        core.patch_namespaced_pod(
            "web-7f-a", "collected", {"metadata": {"labels": {"tier": "front"}}},
            field_manager="kubectl-edit",
        )  # fmt: skip
        core.delete_namespaced_config_map("settings", "collected")
        out, err = collector.communicate(timeout=60)
    assert collector.returncode == 0, err
    assert "collected" in out and "from it" in out
    assert err.startswith("warning: no collector.redaction_key: redaction markers are plain")

    objects = [
        ObjectChange.model_validate_json(r.value)
        for r in read_all(kafka.bootstrap, Topic.OBJECTS.value)
    ]
    mine = [o for o in objects if o.cluster == "it" and o.namespace == "collected"]
    pod = [o for o in mine if o.kind == "Pod"]
    assert [o.change for o in pod] == [ChangeType.ADDED, ChangeType.MODIFIED]
    assert [(r.kind, r.name) for r in pod[0].owner_chain] == [
        ("ReplicaSet", "web-7f"),
        ("Deployment", "web"),
    ]
    assert pod[1].last_manager == "kubectl-edit" and pod[1].labels["tier"] == "front"
    assert pod[0].pod is not None and pod[0].pod.containers[0].cpu_request_cores == 0.25
    assert pod[0].pod.containers[0].memory_request_bytes == 64 * 2**20
    (deployment,) = [o for o in mine if o.kind == "Deployment"]
    assert deployment.last_manager == "helm" and deployment.owner_chain == []
    assert [o.change for o in mine if o.kind == "ConfigMap"] == [
        ChangeType.ADDED,
        ChangeType.DELETED,
    ]

    prices = [
        NodePrice.model_validate_json(r.value)
        for r in read_all(kafka.bootstrap, Topic.PRICES.value)
    ]
    (node,) = [p for p in prices if p.cluster == "it"]
    assert (node.node, node.instance_type, node.zone, node.capacity_type.value) == (
        "node-1", "m5.large", "us-east-1a", "spot",
    )  # fmt: skip

    events = [
        KubeEvent.model_validate_json(r.value)
        for r in read_all(kafka.bootstrap, Topic.EVENTS.value)
    ]
    (backoff,) = [e for e in events if e.cluster == "it" and e.reason == "BackOff"]
    assert (backoff.involved.name, backoff.count, backoff.type) == ("web-7f-a", 3, "Warning")

    published = b"".join(
        r.value
        for topic in (Topic.OBJECTS, Topic.EVENTS)
        for r in read_all(kafka.bootstrap, topic.value)
    )
    assert SECRET.encode() not in published
    assert json.dumps(SECRET).encode() not in published


def test_embedded_collection_stores_the_changes_and_no_secret(
    kube_cluster: LocalCluster, tmp_path: Path
) -> None:
    """``--embedded``: the same changes into ClickHouse (chDB), where no planted secret
    is found in any column of any table the collector fed, nor its plain SHA-256: with
    the cluster's redaction key the marker is an HMAC only the key's holder can test."""
    from kubeopera.sinks.clickhouse import ChdbBackend, Store

    with config.new_client_from_config(config_file=str(kube_cluster.kubeconfig)) as admin:
        core = client.CoreV1Api(admin)
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="stored")))
        core.create_namespaced_pod(
            "stored", client.V1Pod(metadata=client.V1ObjectMeta(name="api-1"), spec=pod_spec())
        )
    key = "0123456789abcdef-stored-it"
    env = {
        **os.environ,
        "KUBEOPERA_STORAGE__PATH": str(tmp_path / "store"),
        "KUBEOPERA_COLLECTOR__REDACTION_KEY": key,
    }
    result = subprocess.run(
        ["kubeopera", "collect", "--kubeconfig", str(kube_cluster.kubeconfig),
         "--cluster-name", "stored-it", "--embedded", "--stop-after", "4"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "redaction_key" not in result.stderr  # no warning: a key was given
    keyed = hmac.new(key.encode(), SECRET.encode(), hashlib.sha256).hexdigest()[:16]
    plain = hashlib.sha256(SECRET.encode()).hexdigest()[:16]
    with Store(ChdbBackend(tmp_path / "store"), 0) as store:
        pods = store.query(
            "SELECT name, change, owner_chain, object FROM raw_objects "
            "WHERE cluster = 'stored-it' AND kind = 'Pod' AND namespace = 'stored'"
        )
        assert [row[:3] for row in pods.rows()] == [("api-1", "ADDED", "[]")]
        (env_var,) = json.loads(pods["object"][0])["spec"]["containers"][0]["env"]
        assert env_var == {"name": "DB_PASSWORD", "value": f"<redacted hmac-sha256:{keyed}>"}
        for table in ("raw_objects", "raw_events", "node_prices", "deadletter"):
            dump = str(store.query(f"SELECT * FROM {table}").rows())
            assert SECRET not in dump and plain not in dump, table


SUMMARY = (
    SHARED_DATA / "k8s-samples" / "honeycomb-kubernetes-agent" / "testdata" / "stats-summary.json"
)


def collecting(admin: client.ApiClient, *kinds: str) -> tuple[Collector, list[ObjectChange]]:
    """A collector of these kinds only (listed in this order), without usage scrapes,
    and the list its object changes are published to."""
    changes: list[ObjectChange] = []
    resources = [next(r for r in RESOURCES if r.kind == kind) for kind in kinds]
    collector = Collector(
        admin, "c", lambda batch: changes.extend(m for _, m in batch), resources, usage_every=None
    )
    return collector, changes


def run_until(collector: Collector, done: Callable[[], bool]) -> None:
    """Runs ``collector`` until ``done()`` holds (30 s at most)."""
    stop = threading.Event()
    thread = threading.Thread(target=collector.run, args=(stop,), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    try:
        while not done():
            assert time.monotonic() < deadline, "the changes were not published"
            time.sleep(0.1)
    finally:
        stop.set()
        thread.join(timeout=10)


def test_owners_whose_watch_lags_are_read_from_the_api(kube_cluster: LocalCluster) -> None:
    """A collector that watches Pods only has seen no ReplicaSet or Deployment, as when
    a rollout's new ReplicaSet and its first Pod arrive on two watches in the wrong
    order: the Pod's chain still reaches the Deployment, read from the API server."""
    with config.new_client_from_config(config_file=str(kube_cluster.kubeconfig)) as admin:
        core = client.CoreV1Api(admin)
        deployment, replicaset = rollout(admin, "lagging")
        gone = client.V1ObjectMeta(name="web-0ld", uid="0b5c8a2e-0000-4000-8000-000000000000")
        for name, owner in (("web-7f-a", replicaset), ("web-0ld-b", gone)):
            core.create_namespaced_pod(
                "lagging",
                client.V1Pod(metadata=meta(name, owner, "ReplicaSet"), spec=pod_spec()),
            )
        collector, changes = collecting(admin, "Pod")
        run_until(collector, lambda: len([c for c in changes if c.namespace == "lagging"]) >= 2)
    chains = {
        c.name: [(o.kind, o.name, o.uid) for o in c.owner_chain]
        for c in changes
        if c.namespace == "lagging"
    }
    assert chains == {
        "web-7f-a": [
            ("ReplicaSet", "web-7f", replicaset.uid),
            ("Deployment", "web", deployment.uid),
        ],
        "web-0ld-b": [("ReplicaSet", "web-0ld", gone.uid)],  # deleted long ago: ends there
    }


def failing_once(namespace: str, lookup: OwnerLookup) -> OwnerLookup:
    """``lookup``, but its first owner read in ``namespace`` fails, as a dropped
    connection makes it fail."""
    failed: list[str] = []

    def flaky(ref: dict[str, Any], in_namespace: str) -> dict[str, Any] | None:
        if in_namespace == namespace and not failed:
            failed.append(ref["name"])
            raise OSError("connection reset by peer")
        return lookup(ref, in_namespace)

    return flaky


def test_a_chain_a_failed_lookup_cut_is_completed_when_the_owner_arrives(
    kube_cluster: LocalCluster,
) -> None:
    """Pods listed before ReplicaSets, and reading the Pod's ReplicaSet from the API
    fails once: the Pod is published with the chain known then ([ReplicaSet]), and
    again (RESYNC, the same object) right after its ReplicaSet's own change, with the
    chain up to the Deployment, which is read from the API then."""
    with config.new_client_from_config(config_file=str(kube_cluster.kubeconfig)) as admin:
        deployment, replicaset = rollout(admin, "cut")
        client.CoreV1Api(admin).create_namespaced_pod(
            "cut",
            client.V1Pod(metadata=meta("web-7f-a", replicaset, "ReplicaSet"), spec=pod_spec()),
        )
        collector, changes = collecting(admin, "Pod", "ReplicaSet")
        collector.owners = Owners(failing_once("cut", collector._owner))
        run_until(
            collector,
            lambda: any(c.change == ChangeType.RESYNC and c.namespace == "cut" for c in changes),
        )
    mine = [c for c in changes if c.namespace == "cut"]
    assert [(c.kind, c.change) for c in mine] == [
        ("Pod", ChangeType.ADDED),
        ("ReplicaSet", ChangeType.ADDED),
        ("Pod", ChangeType.RESYNC),
    ]
    cut, owner, completed = mine
    assert changes.index(completed) == changes.index(owner) + 1  # right after its owner's
    assert [(o.kind, o.name, o.uid) for o in cut.owner_chain] == [
        ("ReplicaSet", "web-7f", replicaset.uid)
    ]
    assert [(o.kind, o.name, o.uid) for o in completed.owner_chain] == [
        ("ReplicaSet", "web-7f", replicaset.uid),
        ("Deployment", "web", deployment.uid),
    ]
    assert (completed.uid, completed.resource_version) == (cut.uid, cut.resource_version)
    assert completed.object == cut.object and completed.observed_at >= cut.observed_at


def test_native_sidecars_are_part_of_the_published_pod(kube_cluster: LocalCluster) -> None:
    """The API server (native sidecars GA) keeps restartPolicy Always on istio-proxy, an
    init container that runs beside the app; the published pod charges it and the app,
    not the init container that ran to completion before them."""
    with config.new_client_from_config(config_file=str(kube_cluster.kubeconfig)) as admin:
        core = client.CoreV1Api(admin)
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="sidecars")))

        def container(name: str, cpu: str, memory: str) -> dict[str, Any]:
            return {"name": name, "image": "web:1",
                    "resources": {"requests": {"cpu": cpu, "memory": memory}}}  # fmt: skip

        core.create_namespaced_pod(
            "sidecars",
            {
                "metadata": {"name": "web-1"},
                "spec": {
                    "initContainers": [
                        container("migrate", "2", "1Gi"),
                        {**container("istio-proxy", "500m", "512Mi"), "restartPolicy": "Always"},
                    ],
                    "containers": [container("app", "250m", "256Mi")],
                },
            },
        )
        collector, changes = collecting(admin, "Pod")
        run_until(collector, lambda: any(c.namespace == "sidecars" for c in changes))
    (published,) = [c for c in changes if c.namespace == "sidecars"]
    assert published.pod is not None
    assert [
        (c.name, c.cpu_request_cores, c.memory_request_bytes) for c in published.pod.containers
    ] == [
        ("app", 0.25, 268435456),  # 256 x 2**20 bytes
        ("istio-proxy", 0.5, 536870912),  # 512 x 2**20 bytes
    ]


def host_address() -> str | None:
    """A non-loopback address of this machine: the API server refuses to proxy to loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # a UDP connect sends nothing
        except OSError:
            return None
        address: str = probe.getsockname()[0]
    return None if address.startswith("127.") else address


class TlsEndpoint:
    """An HTTPS endpoint on this machine that answers GETs from ``answers`` (path -> JSON
    body; anything else 404) and records every path asked for: a kubelet's or a
    metrics-server's API, neither of which can run here."""

    def __init__(self, address: str, answers: dict[str, bytes], folder: Path) -> None:
        self.requests: list[str] = []
        recorded = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                recorded.append(self.path)
                body = answers.get(self.path.split("?")[0])
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((address, 0), Handler)
        key, cert = folder / "endpoint.key", folder / "endpoint.crt"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
             "-subj", "/CN=endpoint", "-keyout", str(key), "-out", str(cert)],
            check=True, capture_output=True,
        )  # fmt: skip
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_usage_comes_from_the_kubelet_summary_through_the_node_proxy(
    kube_cluster: LocalCluster, kafka: Broker, tmp_path: Path
) -> None:
    address = host_address()
    if address is None or not SUMMARY.exists() or shutil.which("openssl") is None:
        pytest.skip("needs a non-loopback address, openssl and the kubelet sample")
    kubelet = TlsEndpoint(address, {"/stats/summary": SUMMARY.read_bytes()}, tmp_path)
    with config.new_client_from_config(config_file=str(kube_cluster.kubeconfig)) as admin:
        core = client.CoreV1Api(admin)
        core.create_node(client.V1Node(metadata=client.V1ObjectMeta(name="duckboat-01")))
        core.patch_node_status(
            "duckboat-01",
            {
                "status": {
                    "capacity": {"cpu": "8", "memory": "32Gi"},
                    "addresses": [{"type": "InternalIP", "address": address}],
                    "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet.port}},
                }
            },
        )
    env = {**os.environ, "KUBEOPERA_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap}
    result = subprocess.run(
        ["kubeopera", "collect", "--kubeconfig", str(kube_cluster.kubeconfig),
         "--cluster-name", "usage-it", "--scrape-seconds", "2", "--stop-after", "7"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert kubelet.requests, (result.stdout, result.stderr)
    assert set(kubelet.requests) == {"/stats/summary"}
    batches = [
        MetricBatch.model_validate_json(r.value)
        for r in read_all(kafka.bootstrap, Topic.METRICS.value)
    ]
    mine = [b for b in batches if b.cluster == "usage-it" and b.node == "duckboat-01"]
    assert len(mine) >= 2  # one scrape every 2 s for ~5 s
    assert all(a.window_end == b.window_start for a, b in itertools.pairwise(mine))
    first = mine[0]
    assert first.node_capacity.cpu_cores == 8 and first.node_capacity.memory_bytes == 32 * 2**30
    row = first.containers.pod.index("phpmyadmin-54c7cdbdc7-8qnbr")
    assert first.containers.cpu_cores[row] == pytest.approx(0.01981685)
    assert first.containers.memory_working_set_bytes[row] == 2079113216
    assert first.node_usage.cpu_cores == pytest.approx(0.388954406)


def metrics_list(kind: str, items: list[dict[str, object]]) -> bytes:
    return json.dumps(
        {"kind": kind, "apiVersion": "metrics.k8s.io/v1beta1", "metadata": {}, "items": items}
    ).encode()


METRICS_API = "/apis/metrics.k8s.io/v1beta1"
METRICS_SERVER = {  # what metrics-server answers (k8s.io/metrics v1beta1 types)
    METRICS_API: json.dumps(
        {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": "metrics.k8s.io/v1beta1",
            "resources": [
                {"name": name, "namespaced": scoped, "kind": kind, "verbs": ["get", "list"]}
                for name, scoped, kind in (
                    ("nodes", False, "NodeMetrics"),
                    ("pods", True, "PodMetrics"),
                )
            ],
        }
    ).encode(),
    f"{METRICS_API}/nodes": metrics_list(
        "NodeMetricsList",
        [
            {"metadata": {"name": name}, "timestamp": "2026-11-26T10:00:00Z", "window": "20s",
             "usage": {"cpu": cpu, "memory": memory}}
            for name, cpu, memory in (("mx-node-1", "1500m", "3Gi"), ("not-watched", "1", "1Gi"))
        ],
    ),
    f"{METRICS_API}/pods": metrics_list(
        "PodMetricsList",
        [
            {"metadata": {"name": "web-1", "namespace": "metered"},
             "timestamp": "2026-11-26T10:00:00Z", "window": "20s",
             "containers": [
                 {"name": "app", "usage": {"cpu": "250m", "memory": "64Mi"}},
                 {"name": "sidecar", "usage": {"cpu": "12345678n", "memory": "1000Ki"}},
             ]},
            {"metadata": {"name": "ghost", "namespace": "metered"},
             "timestamp": "2026-11-26T10:00:00Z", "window": "20s",
             "containers": [{"name": "app", "usage": {"cpu": "1", "memory": "1Gi"}}]},
        ],
    ),
}  # fmt: skip


def register_metrics_api(admin: client.ApiClient, address: str, port: int) -> None:
    """metrics-server's registration: a Service without selector, its endpoints by hand
    (no controllers run), and the APIService the aggregator routes by."""
    core = client.CoreV1Api(admin)
    core.create_namespaced_service(
        "kube-system",
        {"metadata": {"name": "metrics-server"},
         "spec": {"ports": [{"name": "https", "port": 443, "targetPort": port}]}},
    )  # fmt: skip
    core.create_namespaced_endpoints(
        "kube-system",
        {"metadata": {"name": "metrics-server"},
         "subsets": [{"addresses": [{"ip": address}], "ports": [{"name": "https", "port": port}]}]},
    )  # fmt: skip
    client.DiscoveryV1Api(admin).create_namespaced_endpoint_slice(
        "kube-system",
        {"metadata": {"name": "metrics-server-1",
                      "labels": {"kubernetes.io/service-name": "metrics-server"}},
         "addressType": "IPv4", "endpoints": [{"addresses": [address]}],
         "ports": [{"name": "https", "port": port}]},
    )  # fmt: skip
    client.ApiregistrationV1Api(admin).create_api_service(
        {"metadata": {"name": "v1beta1.metrics.k8s.io"},
         "spec": {"group": "metrics.k8s.io", "version": "v1beta1", "insecureSkipTLSVerify": True,
                  "service": {"namespace": "kube-system", "name": "metrics-server", "port": 443},
                  "groupPriorityMinimum": 100, "versionPriority": 100}},
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while True:  # until the aggregator finds it available
        response = admin.call_api(*admin.param_serialize("GET", METRICS_API)[:5])
        if response.status == 200:
            return
        assert time.monotonic() < deadline, "metrics.k8s.io never became available"
        time.sleep(0.5)


def test_usage_comes_from_metrics_k8s_io_when_the_cluster_serves_it(
    kube_cluster: LocalCluster, tmp_path: Path
) -> None:
    """The real aggregator proxies metrics.k8s.io to a TLS endpoint answering as
    metrics-server does; the collector (usage source ``auto``) takes it, names each pod
    by the uid and node its Pod watch saw, and stores no RSS (the API has none)."""
    from kubeopera.sinks.clickhouse import ChdbBackend, Store

    address = host_address()
    if address is None or shutil.which("openssl") is None:
        pytest.skip("needs a non-loopback address and openssl")
    server = TlsEndpoint(address, METRICS_SERVER, tmp_path)
    with config.new_client_from_config(config_file=str(kube_cluster.kubeconfig)) as admin:
        core = client.CoreV1Api(admin)
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="metered")))
        labels = {"node.kubernetes.io/instance-type": "m5.large"}
        node = client.V1ObjectMeta(name="mx-node-1", labels=labels)
        core.create_node(client.V1Node(metadata=node))
        core.patch_node_status(
            "mx-node-1", {"status": {"capacity": {"cpu": "8", "memory": "32Gi"}}}
        )
        spec = client.V1PodSpec(
            node_name="mx-node-1",
            containers=[client.V1Container(name=n, image="web:1") for n in ("app", "sidecar")],
        )
        pod = core.create_namespaced_pod(
            "metered", client.V1Pod(metadata=client.V1ObjectMeta(name="web-1"), spec=spec)
        )
        statuses = [
            {"name": n, "restartCount": r, "ready": True, "image": "web:1", "imageID": "",
             "state": {"running": {}}}
            for n, r in (("app", 4), ("sidecar", 0))
        ]  # fmt: skip
        core.patch_namespaced_pod_status(
            "web-1", "metered", {"status": {"containerStatuses": statuses}}
        )
        register_metrics_api(admin, address, server.port)
        try:
            env = {**os.environ, "KUBEOPERA_STORAGE__PATH": str(tmp_path / "store")}
            result = subprocess.run(
                ["kubeopera", "collect", "--kubeconfig", str(kube_cluster.kubeconfig),
                 "--cluster-name", "mx", "--embedded", "--scrape-seconds", "2",
                 "--stop-after", "7"],
                env=env, capture_output=True, text=True, timeout=120, check=False,
            )  # fmt: skip
        finally:
            client.ApiregistrationV1Api(admin).delete_api_service("v1beta1.metrics.k8s.io")
    assert result.returncode == 0, result.stderr
    # the aggregator itself asks for /apis and /openapi; the collector for the lists only
    asked = Counter(p.split("?")[0] for p in server.requests if p.startswith(f"{METRICS_API}/"))
    assert set(asked) == {f"{METRICS_API}/nodes", f"{METRICS_API}/pods"}
    assert asked[f"{METRICS_API}/nodes"] == asked[f"{METRICS_API}/pods"] >= 2
    with Store(ChdbBackend(tmp_path / "store")) as store:
        rows = store.query(
            "SELECT container, pod_uid, cpu_cores, memory_working_set_bytes, memory_rss_bytes, "
            "restarts FROM raw_metrics WHERE cluster = 'mx' ORDER BY window_start, container"
        )
        nodes = store.query(
            "SELECT node, usage_cpu, usage_memory_bytes, capacity_cpu FROM raw_node_metrics "
            "WHERE cluster = 'mx'"
        )
    assert rows.height >= 4 and rows.height % 2 == 0  # both containers in every scrape
    uid = pod.metadata.uid
    assert set(rows.head(2).rows()) == {
        ("app", uid, 0.25, 64 * 2**20, None, 4),
        ("sidecar", uid, 0.012345678, 1000 * 1024, None, 0),
    }
    assert set(nodes.rows()) == {("mx-node-1", 1.5, 3 * 2**30, 8.0)}
