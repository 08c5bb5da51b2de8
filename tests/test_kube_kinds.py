"""Every watched kind, created, updated and deleted through a real API server: the
collector reports ADDED, MODIFIED (by the field manager that made the change) and
DELETED, in that order, with the object's kind, API version and namespace."""

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, config, dynamic
from kubernetes.client.rest import ApiException

from kubeopera.collectors.kubernetes.collector import Collector
from kubeopera.collectors.kubernetes.resources import RESOURCES
from kubeopera.deploy.testcluster import LocalCluster
from kubeopera.models import ChangeType, Message, ObjectChange

NS = "kinds"
CONTAINERS = [{"name": "app", "image": "app:1"}]
TEMPLATE = {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": CONTAINERS}}
SELECTOR = {"matchLabels": {"app": "x"}}
JOB_TEMPLATE = {"spec": {"containers": CONTAINERS, "restartPolicy": "Never"}}
RBAC = "rbac.authorization.k8s.io"
SPECS: dict[str, dict[str, Any]] = {  # a minimal valid body with a field of its own
    "Namespace": {"spec": {"finalizers": ["kubernetes"]}},
    "Node": {"spec": {"unschedulable": True}},
    "CronJob": {
        "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": JOB_TEMPLATE}}}
    },
    "Deployment": {"spec": {"selector": SELECTOR, "template": TEMPLATE}},
    "StatefulSet": {"spec": {"selector": SELECTOR, "serviceName": "x", "template": TEMPLATE}},
    "DaemonSet": {"spec": {"selector": SELECTOR, "template": TEMPLATE}},
    "Job": {"spec": {"template": JOB_TEMPLATE}},
    "ReplicaSet": {"spec": {"selector": SELECTOR, "template": TEMPLATE}},
    "Pod": {"spec": {"containers": CONTAINERS}},
    "Service": {"spec": {"ports": [{"port": 80}]}},
    "EndpointSlice": {"addressType": "IPv4", "endpoints": []},
    "Ingress": {"spec": {"defaultBackend": {"service": {"name": "x", "port": {"number": 80}}}}},
    "ConfigMap": {"data": {"k": "v"}},
    "Secret": {"stringData": {"k": "v"}},
    "PersistentVolumeClaim": {
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    },
    "PersistentVolume": {
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"],
            "hostPath": {"path": "/tmp/x"},
        }
    },
    "StorageClass": {"provisioner": "example.com/none"},
    "HorizontalPodAutoscaler": {
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "x"},
            "maxReplicas": 3,
        }
    },
    "PodDisruptionBudget": {"spec": {"minAvailable": 1, "selector": SELECTOR}},
    "NetworkPolicy": {"spec": {"podSelector": {}}},
    "Role": {"rules": []},
    "ClusterRole": {"rules": []},
    "RoleBinding": {"roleRef": {"apiGroup": RBAC, "kind": "Role", "name": "x"}, "subjects": []},
    "ClusterRoleBinding": {
        "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "x"},
        "subjects": [],
    },
    "ServiceAccount": {"automountServiceAccountToken": False},
}


@pytest.fixture(scope="module")
def admin(kube_cluster: LocalCluster) -> Iterator[client.ApiClient]:
    with config.new_client_from_config(config_file=str(kube_cluster.kubeconfig)) as api:
        yield api


def test_every_watched_kind_is_specified_here() -> None:
    assert set(SPECS) == {r.kind for r in RESOURCES}


def test_create_update_delete_of_every_kind_arrive_in_order(admin: client.ApiClient) -> None:
    client.CoreV1Api(admin).create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=NS))
    )
    seen: list[ObjectChange] = []
    lock = threading.Lock()

    def sink(messages: list[Message]) -> None:
        with lock:
            seen.extend(m for _, m in messages if isinstance(m, ObjectChange))

    collector = Collector(admin, "kinds-it", sink, usage_every=None, resync_every=None)
    stop = threading.Event()
    thread = threading.Thread(target=collector.run, args=(stop,), daemon=True)
    thread.start()
    dyn = dynamic.DynamicClient(admin)
    try:
        time.sleep(2)  # listed and watching
        probes = [
            (
                dyn.resources.get(api_version=r.api_version, kind=r.kind),
                r,
                f"probe-{r.kind.lower()}",
                NS if r.namespaced else None,
            )
            for r in RESOURCES
        ]
        for api, resource, name, namespace in probes:
            body = {
                "apiVersion": resource.api_version,
                "kind": resource.kind,
                "metadata": {"name": name},
                **SPECS[resource.kind],
            }
            api.create(body=body, namespace=namespace, field_manager="kubeopera-create")
        time.sleep(1.1)  # managedFields times have one-second resolution
        for api, _, name, namespace in probes:
            api.patch(
                name=name,
                namespace=namespace,
                body={"metadata": {"labels": {"tier": "edited"}}},
                content_type="application/merge-patch+json",
                field_manager="kubectl-edit",
            )
        for api, _, name, namespace in probes:
            api.delete(name=name, namespace=namespace, grace_period_seconds=0)
            try:  # no controller runs to clear protection finalizers (PVs, PVCs, ...)
                api.patch(
                    name=name,
                    namespace=namespace,
                    body={"metadata": {"finalizers": None}},
                    content_type="application/merge-patch+json",
                )
            except ApiException as gone:
                assert gone.status == 404

        def of(kind: str) -> list[ObjectChange]:
            with lock:
                return [c for c in seen if c.kind == kind and c.name == f"probe-{kind.lower()}"]

        deadline = time.monotonic() + 60
        while any(
            not of(r.kind) or of(r.kind)[-1].change != ChangeType.DELETED
            for r in RESOURCES
            if r.kind != "Namespace"  # no namespace controller: it stays Terminating
        ):
            assert time.monotonic() < deadline, [r.kind for r in RESOURCES if not of(r.kind)]
            time.sleep(0.2)
    finally:
        stop.set()
        thread.join(timeout=10)
    for resource in RESOURCES:
        changes = of(resource.kind)
        first, edited = changes[0], next(c for c in changes if c.labels.get("tier") == "edited")
        assert first.change == ChangeType.ADDED, resource.kind
        assert first.last_manager == "kubeopera-create", resource.kind
        assert edited.change == ChangeType.MODIFIED and edited.last_manager == "kubectl-edit"
        assert all(c.api_version == resource.api_version for c in changes)
        assert all(c.namespace == (NS if resource.namespaced else "") for c in changes)
        assert all(c.cluster == "kinds-it" for c in changes)
        versions = [int(c.resource_version) for c in changes]
        assert versions == sorted(versions), resource.kind  # in the order they happened
        if resource.kind != "Namespace":
            assert changes[-1].change == ChangeType.DELETED, resource.kind
            assert [c.change for c in changes].count(ChangeType.DELETED) == 1
