"""Kubernetes objects to object changes: real pods, owner chains, field managers, and
redaction of everything that looks like a credential."""

import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import SHARED_DATA

from kubeopera.collectors.kubernetes.api import RateLimiter
from kubeopera.collectors.kubernetes.changes import Owners, last_manager, to_change
from kubeopera.collectors.kubernetes.events import to_event
from kubeopera.collectors.kubernetes.prices import node_price
from kubeopera.collectors.kubernetes.redact import LAST_APPLIED, Redactor
from kubeopera.collectors.kubernetes.resources import RESOURCES, Resource
from kubeopera.collectors.kubernetes.usage import summary_batch
from kubeopera.models import CapacityType, ChangeType
from kubeopera.models.metrics import NodeCapacity

PODS = SHARED_DATA / "k8s-samples" / "honeycomb-kubernetes-agent" / "testdata" / "pods.json"
AT = datetime(2026, 3, 2, tzinfo=UTC)
KIND = {r.kind: r for r in RESOURCES}


def test_real_pods_parse_to_their_requests_and_limits() -> None:
    if not PODS.exists():
        pytest.skip(f"{PODS} is not there")
    pods = {p["metadata"]["name"]: p for p in json.loads(PODS.read_text())["items"]}
    speaker = to_change("c", KIND["Pod"], pods["speaker-cpxhz"], ChangeType.ADDED, AT, Owners())
    assert speaker.pod is not None and speaker.pod.node == "duckboat-01"
    (container,) = speaker.pod.containers
    assert container.cpu_request_cores == 0.1 and container.cpu_limit_cores == 0.1
    assert container.memory_request_bytes == 100 * 2**20 == container.memory_limit_bytes
    assert [(o.kind, o.name) for o in speaker.owner_chain] == [("DaemonSet", "speaker")]
    calico = to_change("c", KIND["Pod"], pods["calico-node-h2bjp"], ChangeType.ADDED, AT, Owners())
    assert calico.pod is not None
    assert calico.pod.containers[0].cpu_request_cores == 0.25
    assert calico.pod.containers[0].memory_limit_bytes is None
    grafana = to_change(
        "c", KIND["Pod"], pods["grafana-7db5dff8ff-vwrnf"], ChangeType.ADDED, AT, Owners()
    )
    assert grafana.pod is not None
    assert [c.name for c in grafana.pod.containers] == ["grafana-sc-dashboard", "grafana"]
    assert all(c.cpu_request_cores == 0 for c in grafana.pod.containers)


def requests(cpu: str, memory: str) -> dict[str, Any]:
    return {"resources": {"requests": {"cpu": cpu, "memory": memory}}}


def test_native_sidecars_are_charged_and_init_containers_that_finish_are_not() -> None:
    """istio-proxy as a native sidecar (an init container with restartPolicy Always)
    runs as long as the app, so its requests are the pod's; ``migrate`` runs to
    completion before the app starts, so its are not."""
    pod = {
        "metadata": meta("Pod", "web-1", "u-p"),
        "spec": {
            "initContainers": [
                {"name": "migrate", "image": "shop:1", **requests("2", "1Gi")},
                {"name": "istio-proxy", "image": "proxyv2:1", "restartPolicy": "Always",
                 **requests("500m", "512Mi")},
            ],
            "containers": [{"name": "app", "image": "shop:1", **requests("250m", "256Mi")}],
        },
    }  # fmt: skip
    change = to_change("c", KIND["Pod"], pod, ChangeType.ADDED, AT, Owners())
    assert change.pod is not None
    assert [
        (c.name, c.cpu_request_cores, c.memory_request_bytes) for c in change.pod.containers
    ] == [
        ("app", 0.25, 256 * 2**20),  # 268435456 bytes
        ("istio-proxy", 0.5, 512 * 2**20),  # 536870912 bytes
    ]


def meta(
    kind: str, name: str, uid: str, owner: tuple[str, str, str] | None = None
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": "shop", "uid": uid}
    if owner:
        metadata["ownerReferences"] = [
            {"kind": "Other", "name": "x", "uid": "u-x"},
            {"kind": owner[0], "name": owner[1], "uid": owner[2], "controller": True},
        ]
    return metadata


def test_the_owner_chain_runs_from_the_controller_up_to_the_top() -> None:
    owners = Owners()
    owners.remember("Deployment", meta("Deployment", "web", "u-d"))
    owners.remember(
        "ReplicaSet", meta("ReplicaSet", "web-7f", "u-rs", ("Deployment", "web", "u-d"))
    )
    pod = {
        "metadata": meta("Pod", "web-7f-abc", "u-p", ("ReplicaSet", "web-7f", "u-rs")),
        "spec": {},
    }
    change = to_change("c", KIND["Pod"], pod, ChangeType.ADDED, AT, owners)
    assert [(o.kind, o.name, o.uid) for o in change.owner_chain] == [
        ("ReplicaSet", "web-7f", "u-rs"),
        ("Deployment", "web", "u-d"),
    ]
    assert change.controller is not None and change.controller.kind == "Deployment"
    owners.forget("u-rs")  # an owner not seen (yet): the chain stops at what is known
    unknown = to_change("c", KIND["Pod"], pod, ChangeType.ADDED, AT, owners)
    assert [o.kind for o in unknown.owner_chain] == ["ReplicaSet"]


def test_an_owner_not_seen_yet_is_looked_up_and_a_missing_one_only_once() -> None:
    """Each kind has its own watch: a Pod may come before its new ReplicaSet."""
    api = {  # what the API server holds, by name
        "web-7f": meta("ReplicaSet", "web-7f", "u-rs", ("Deployment", "web", "u-d")),
        "web": meta("Deployment", "web", "u-d"),
        "old-1": meta("ReplicaSet", "old-1", "u-new"),  # a namesake of a deleted owner
    }
    asked: list[str] = []
    flaky = {"down": True}

    def lookup(ref: dict[str, Any], namespace: str) -> dict[str, Any] | None:
        asked.append(f"{namespace}/{ref['kind']}/{ref['name']}")
        if ref["name"] == "flaky" and flaky["down"]:
            raise OSError("connection refused")
        return api.get(ref["name"])

    owners = Owners(lookup)
    pod = meta("Pod", "web-7f-abc", "u-p", ("ReplicaSet", "web-7f", "u-rs"))
    assert [(o.kind, o.uid) for o in owners.chain(pod).refs] == [
        ("ReplicaSet", "u-rs"),
        ("Deployment", "u-d"),
    ]
    assert asked == ["shop/ReplicaSet/web-7f", "shop/Deployment/web"]
    owners.chain(pod)
    assert len(asked) == 2  # remembered
    orphan = meta("Pod", "o", "u-o", ("ReplicaSet", "old-1", "u-old"))
    for _ in range(3):
        ended = owners.chain(orphan)  # its owner is gone: ended for good, awaiting nothing
        assert ([o.uid for o in ended.refs], ended.awaiting) == (["u-old"], None)
    assert asked[2:] == ["shop/ReplicaSet/old-1"]  # not there (a namesake): asked once
    waiting = meta("Pod", "w", "u-w", ("ReplicaSet", "flaky", "u-rs2"))
    cut = owners.chain(waiting)  # cut where the API could not tell: awaiting that owner
    assert ([o.uid for o in cut.refs], cut.awaiting) == (["u-rs2"], "u-rs2")
    flaky["down"] = False
    api["flaky"] = meta("ReplicaSet", "flaky", "u-rs2", ("Deployment", "web", "u-d"))
    whole = owners.chain(waiting)  # asked again
    assert ([o.uid for o in whole.refs], whole.awaiting) == (["u-rs2", "u-d"], None)
    assert asked[3:] == ["shop/ReplicaSet/flaky", "shop/ReplicaSet/flaky"]


def flaky_lookup(
    api: dict[str, dict[str, Any]], down: set[str]
) -> Callable[[dict[str, Any], str], dict[str, Any] | None]:
    """Reads owners by name from ``api``; for the names in ``down`` the API cannot be
    reached just now (a dropped connection)."""

    def lookup(ref: dict[str, Any], namespace: str) -> dict[str, Any] | None:
        if ref["name"] in down:
            raise OSError("connection reset by peer")
        return api.get(ref["name"])

    return lookup


def pod(name: str, owner: tuple[str, str, str] | None) -> dict[str, Any]:
    return {"metadata": meta("Pod", name, f"u-{name}", owner), "spec": {}}


def test_a_chain_a_failed_lookup_cut_is_completed_when_each_missing_owner_arrives() -> None:
    """Knative's Pod -> ReplicaSet -> Deployment -> Revision, the ReplicaSet not seen
    yet and its lookup failing: the pod is published with [ReplicaSet] and held. The
    ReplicaSet arrives while the Deployment's lookup fails: handed back (RESYNC) with
    [ReplicaSet, Deployment], held again. The Deployment arrives: handed back with the
    Revision on top. A Deployment without an owner, arriving after its lookup failed,
    changes nothing: its pod is not published again."""
    revision = ("Revision", "web-00001", "u-rev")  # read from the API: not there
    api = {
        "web-7f": meta("ReplicaSet", "web-7f", "u-rs", ("Deployment", "web", "u-d")),
        "web": meta("Deployment", "web", "u-d", revision),
        "api-5c": meta("ReplicaSet", "api-5c", "u-rs2", ("Deployment", "api", "u-d2")),
        "api": meta("Deployment", "api", "u-d2"),
    }
    down = {"web-7f", "web", "api"}
    owners = Owners(flaky_lookup(api, down))
    first = to_change(
        "c", KIND["Pod"], pod("web-7f-a", ("ReplicaSet", "web-7f", "u-rs")), ChangeType.ADDED,
        AT, owners,
    )  # fmt: skip
    assert [o.uid for o in first.owner_chain] == ["u-rs"]
    assert owners.completed(AT) == []  # nothing has arrived
    later = AT + timedelta(minutes=1)
    owners.remember("ReplicaSet", api["web-7f"])  # its watch reports it
    (again,) = owners.completed(later)
    assert (again.change, again.observed_at, again.uid) == (ChangeType.RESYNC, later, "u-web-7f-a")
    assert again.object == first.object and again.resource_version == first.resource_version
    assert [o.uid for o in again.owner_chain] == ["u-rs", "u-d"]
    last = AT + timedelta(minutes=2)
    owners.remember("Deployment", api["web"])
    (complete,) = owners.completed(last)
    assert [(o.kind, o.name) for o in complete.owner_chain] == [
        ("ReplicaSet", "web-7f"),
        ("Deployment", "web"),
        ("Revision", "web-00001"),
    ]
    assert (complete.change, complete.observed_at) == (ChangeType.RESYNC, last)
    assert owners.completed(last) == []  # nothing held any more

    owners.remember("ReplicaSet", api["api-5c"])
    plain = to_change(
        "c", KIND["Pod"], pod("api-5c-a", ("ReplicaSet", "api-5c", "u-rs2")), ChangeType.ADDED,
        AT, owners,
    )  # fmt: skip
    assert [o.uid for o in plain.owner_chain] == ["u-rs2", "u-d2"]  # cut above the Deployment
    owners.remember("Deployment", api["api"])
    assert owners.completed(last) == []  # the published chain was whole after all


WEB_7F = meta("ReplicaSet", "web-7f", "u-rs", ("Deployment", "web", "u-d"))
"""A ReplicaSet whose arrival would complete a chain held at it: [ReplicaSet, Deployment]."""


def test_a_held_change_is_dropped_when_its_object_is_deleted_or_its_chain_is_whole() -> None:
    owners = Owners(flaky_lookup({}, {"web-7f"}))
    rs = ("ReplicaSet", "web-7f", "u-rs")
    for change in (ChangeType.ADDED, ChangeType.DELETED):  # deleted while held
        to_change("c", KIND["Pod"], pod("gone", rs), change, AT, owners)
    to_change("c", KIND["Pod"], pod("released", rs), ChangeType.ADDED, AT, owners)
    to_change("c", KIND["Pod"], pod("released", None), ChangeType.MODIFIED, AT, owners)
    owners.remember("ReplicaSet", WEB_7F)
    assert owners.completed(AT) == []


def test_held_changes_are_bounded_the_oldest_going_first() -> None:
    owners = Owners(flaky_lookup({}, {"web-7f"}))
    owners.HELD_KEPT = 3
    for k in range(5):
        to_change(
            "c", KIND["Pod"], pod(f"web-7f-{k}", ("ReplicaSet", "web-7f", "u-rs")),
            ChangeType.ADDED, AT, owners,
        )  # fmt: skip
    owners.remember("ReplicaSet", WEB_7F)
    assert [c.name for c in owners.completed(AT)] == ["web-7f-2", "web-7f-3", "web-7f-4"]


def test_the_last_manager_is_the_latest_writer_and_managed_fields_are_dropped() -> None:
    managed = [
        {
            "manager": "kubectl-client-side-apply",
            "operation": "Update",
            "time": "2026-03-02T10:00:00Z",
        },
        {
            "manager": "kube-controller-manager",
            "operation": "Update",
            "time": "2026-03-02T11:00:00Z",
        },
        {"manager": "kubectl-edit", "operation": "Update", "time": "2026-03-02T11:00:00Z"},
        {"manager": "helm", "operation": "Apply", "time": "2026-03-02T09:00:00Z"},
    ]
    assert last_manager({"managedFields": managed}) == "kubectl-edit"
    assert last_manager({}) is None
    service = {"metadata": {**meta("Service", "web", "u-s"), "managedFields": managed}}
    change = to_change("c", KIND["Service"], service, ChangeType.MODIFIED, AT, Owners())
    assert change.last_manager == "kubectl-edit"
    assert "managedFields" not in change.object["metadata"]


SECRETS = {
    "password": "hunter2-but-longer",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.c2lnbmF0dXJl",
    "aws": "AKIAIOSFODNN7EXAMPLE",
    "url": "postgres://app:s3cr3t@db:5432/shop",
    "pem": "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----",
    "config": "feature_flags=on",
    "applied": '{"kind":"Secret","data":{"password":"aHVudGVyMg=="}}',
}


def container(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "image": "shop:1",
        "env": [
            {"name": "DB_PASSWORD", "value": SECRETS["password"]},
            {"name": "UPSTREAM", "value": SECRETS["jwt"]},
            {"name": "AWS_ID", "value": SECRETS["aws"]},
            {"name": "DATABASE_URL", "value": SECRETS["url"]},
            {"name": "LOG_LEVEL", "value": "info"},
            {"name": "FROM_SECRET", "valueFrom": {"secretKeyRef": {"name": "db", "key": "pw"}}},
        ],
    }


@pytest.mark.parametrize("key", [None, b"a-clusters-own-32-byte-hmac-key!"])
def test_credentials_are_redacted_wherever_they_hide(key: bytes | None) -> None:
    redactor = Redactor(key)

    def marker(value: str) -> str:  # worked out here, not by the code under test
        if key is None:
            return f"<redacted sha256:{hashlib.sha256(value.encode()).hexdigest()[:16]}>"
        return f"<redacted hmac-sha256:{hmac.new(key, value.encode(), 'sha256').hexdigest()[:16]}>"

    annotations = {
        LAST_APPLIED: SECRETS["applied"],
        "vault.io/token": SECRETS["jwt"],
        "team": "shop",
    }
    deployment = {
        "metadata": {**meta("Deployment", "web", "u-d"), "annotations": annotations},
        "spec": {
            "template": {
                "spec": {"containers": [container("app")], "initContainers": [container("init")]}
            }
        },
    }
    cronjob = {
        "metadata": meta("CronJob", "nightly", "u-c"),
        "spec": {
            "jobTemplate": {"spec": {"template": {"spec": {"containers": [container("job")]}}}}
        },
    }
    configmap = {
        "metadata": meta("ConfigMap", "cfg", "u-m"),
        "data": {"app.ini": SECRETS["config"], "key.pem": SECRETS["pem"]},
    }
    secret = {
        "metadata": meta("Secret", "db", "u-s"),
        "data": {"pw": "aHVudGVyMg=="},
        "stringData": {"pw": SECRETS["password"]},
    }
    changes = [
        to_change("c", KIND[k], o, ChangeType.ADDED, AT, Owners(), redactor)
        for k, o in (
            ("Deployment", deployment),
            ("CronJob", cronjob),
            ("ConfigMap", configmap),
            ("Secret", secret),
        )
    ]
    published = "".join(c.model_dump_json() for c in changes)
    for name, value in SECRETS.items():
        assert json.dumps(value)[1:-1] not in published, name
    assert "aHVudGVyMg==" not in published
    env = changes[0].object["spec"]["template"]["spec"]["containers"][0]["env"]
    values = {v["name"]: v.get("value") for v in env}
    assert values["DB_PASSWORD"] == marker(SECRETS["password"])  # same value, same marker
    assert values["LOG_LEVEL"] == "info"  # what is not a credential stays
    assert changes[0].annotations["team"] == "shop"
    assert changes[0].annotations[LAST_APPLIED] == marker(SECRETS["applied"])
    assert changes[2].object["data"] == {
        "app.ini": marker(SECRETS["config"]),
        "key.pem": marker(SECRETS["pem"]),
    }
    assert set(changes[3].object) == {"apiVersion", "kind", "metadata"}
    if key is not None:  # nothing a guess could be checked against without the key
        for value in SECRETS.values():
            assert hashlib.sha256(value.encode()).hexdigest()[:16] not in published


def test_custom_resources_are_named_group_version_kind_plural() -> None:
    app = Resource.parse("argoproj.io/v1alpha1/Application/applications")
    assert app.path == "/apis/argoproj.io/v1alpha1/applications" and app.namespaced
    assert app.api_version == "argoproj.io/v1alpha1"
    assert not Resource.parse("example.com/v1/Widget/widgets/cluster").namespaced
    with pytest.raises(ValueError, match="expected group/version/Kind/plural"):
        Resource.parse("argoproj.io/Application")
    assert KIND["Pod"].path == "/api/v1/pods"
    assert KIND["Deployment"].path == "/apis/apps/v1/deployments"


SONOBUOY = SHARED_DATA / "k8s-samples" / "sonobuoy-results-0.10" / "resources" / "ns"
NODES = PODS.with_name("nodes.json")


def test_real_event_lists_load_without_a_single_rejection() -> None:
    files = sorted(SONOBUOY.glob("*/Events.json"))
    if not files:
        pytest.skip(f"{SONOBUOY} is not there")
    events = [to_event("c", raw, AT) for path in files for raw in json.loads(path.read_text())]
    assert len(events) == 135 + 23 + 56  # every Event of the three namespaces
    mounted = next(e for e in events if e.name == "calico-etcd-xzvc8.14ffe92c771c737f")
    assert (mounted.namespace, mounted.reason, mounted.type) == (
        "kube-system",
        "SuccessfulMountVolume",
        "Normal",
    )
    assert (mounted.involved.kind, mounted.involved.name) == ("Pod", "calico-etcd-xzvc8")
    assert mounted.involved.uid == "001a4a98-e027-11e7-8132-0254a9767590"
    assert mounted.source.component == "kubelet"
    assert mounted.count == 1
    assert mounted.last_time == datetime(2017, 12, 13, 16, 59, 37, tzinfo=UTC)
    assert mounted.key() == "c"  # a cluster's Events in one partition


def test_new_style_events_take_event_time_and_series() -> None:
    event = {
        "metadata": {"name": "e", "namespace": "shop", "creationTimestamp": "2026-03-02T10:00:00Z"},
        "regarding": {"kind": "Pod", "name": "web-1", "uid": "u1"},
        "reason": "BackOff",
        "note": "Back-off restarting failed container",
        "type": "Warning",
        "eventTime": "2026-03-02T10:00:01.000000Z",
        "series": {"count": 7, "lastObservedTime": "2026-03-02T10:05:00.000000Z"},
        "reportingComponent": "kubelet",
    }
    converted = to_event("c", event, AT)
    assert converted.count == 7 and converted.message.startswith("Back-off")
    assert converted.last_time == datetime(2026, 3, 2, 10, 5, tzinfo=UTC)
    assert converted.first_time == datetime(2026, 3, 2, 10, 0, 1, tzinfo=UTC)
    assert converted.involved.name == "web-1" and converted.source.component == "kubelet"


def test_node_price_facts_come_from_the_well_known_labels() -> None:
    if not NODES.exists():
        pytest.skip(f"{NODES} is not there")
    node = json.loads(NODES.read_text())["items"][0]
    price = node_price("c", node, AT)
    assert (price.node, price.instance_type, price.region, price.zone) == (
        "duckboat-01",
        "m6gd.2xlarge",
        "us-east-1",
        "us-east-1a",
    )
    assert price.capacity_type == CapacityType.ON_DEMAND and price.usd_per_hour is None
    spot = {"metadata": {"name": "n2", "labels": {"karpenter.sh/capacity-type": "spot"}}}
    assert node_price("c", spot, AT).capacity_type == CapacityType.SPOT


SPOT, ON_DEMAND = CapacityType.SPOT, CapacityType.ON_DEMAND


@pytest.mark.parametrize(
    ("label", "value", "capacity"),
    [
        ("lifecycle", "EC2Spot", SPOT),  # OpenCost's AWS provider
        ("lifecycle", "Ec2Spot", SPOT),  # AWS's EKS workshop node groups
        ("eks.amazonaws.com/capacityType", "SPOT", SPOT),
        ("karpenter.sh/capacity-type", "spot", SPOT),
        ("cloud.google.com/gke-spot", "true", SPOT),
        ("cloud.google.com/gke-preemptible", "true", SPOT),
        ("kubernetes.azure.com/scalesetpriority", "spot", SPOT),
        ("node-lifecycle", "spot", SPOT),  # eksctl
        ("node.kubernetes.io/lifecycle", "spot", SPOT),  # terraform-aws-modules/eks
        ("spotinst.io/node-lifecycle", "spot", SPOT),  # Spot.io Ocean
        ("lifecycle", "OnDemand", ON_DEMAND),
        ("eks.amazonaws.com/capacityType", "ON_DEMAND", ON_DEMAND),
        ("eks.amazonaws.com/capacityType", "CAPACITY_BLOCK", ON_DEMAND),
        ("karpenter.sh/capacity-type", "on-demand", ON_DEMAND),
        ("karpenter.sh/capacity-type", "reserved", ON_DEMAND),
        ("cloud.google.com/gke-preemptible", "false", ON_DEMAND),
        ("node-lifecycle", "on-demand", ON_DEMAND),
        ("node.kubernetes.io/lifecycle", "normal", ON_DEMAND),
        ("spotinst.io/node-lifecycle", "od", ON_DEMAND),
        ("node.kubernetes.io/instance-type", "spot", ON_DEMAND),  # not a capacity label
    ],
)
def test_spot_nodes_are_recognised_by_each_documented_label(
    label: str, value: str, capacity: CapacityType
) -> None:
    node = {"metadata": {"name": "n1", "labels": {label: value}}}
    assert node_price("c", node, AT).capacity_type == capacity


SUMMARY = PODS.with_name("stats-summary.json")


def test_a_real_kubelet_summary_parses_to_its_per_container_numbers() -> None:
    if not SUMMARY.exists():
        pytest.skip(f"{SUMMARY} is not there")
    summary = json.loads(SUMMARY.read_text())
    capacity = NodeCapacity(cpu_cores=8, memory_bytes=32 * 2**30)
    end = datetime(2020, 9, 16, 3, 31, tzinfo=UTC)
    batch = summary_batch("c", summary, capacity, end - timedelta(minutes=1), end)
    assert batch.node == "duckboat-01"
    assert batch.node_usage.cpu_cores == pytest.approx(0.388954406)
    assert batch.node_usage.memory_bytes == 2127441920
    containers = batch.containers
    row = containers.pod.index("phpmyadmin-54c7cdbdc7-8qnbr")
    assert (containers.namespace[row], containers.container[row]) == ("mysql", "phpmyadmin")
    assert containers.pod_uid[row] == "7208f2cd-7532-40c4-bc4c-d2473d3749bd"
    assert containers.cpu_cores[row] == pytest.approx(0.01981685)
    assert containers.memory_working_set_bytes[row] == 2079113216
    assert containers.memory_rss_bytes[row] == 23146496
    expected = sum(len(p["containers"]) for p in summary["pods"])
    assert len(containers) == expected  # every container of the 11 pods
    grafana = [i for i, p in enumerate(containers.pod) if p.startswith("grafana-")]
    assert sorted(containers.container[i] for i in grafana) == ["grafana", "grafana-sc-dashboard"]
    assert len(batch.pvcs.name) == sum(
        1 for p in summary["pods"] for v in p.get("volume") or [] if v.get("pvcRef")
    )


def test_the_rate_limiter_lets_a_burst_through_then_paces_at_qps() -> None:
    """40 requests at 10 per second with a burst of 5, all at once: the first 5 pass,
    the other 35 wait 0.1 s each in turn (3.5 s in all), as a token bucket does."""
    now = [0.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)

    limiter = RateLimiter(qps=10, burst=5, clock=lambda: now[0], sleep=sleep)
    for _ in range(40):
        limiter.acquire()
    assert len(waits) == 35
    assert waits == pytest.approx([0.1 * k for k in range(1, 36)])  # queued behind the debt
    now[0] = 100.0  # a long quiet spell refills only up to the burst
    waits.clear()
    for _ in range(5):
        limiter.acquire()
    assert waits == []
