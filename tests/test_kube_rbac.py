"""The collector's own manifest (deploy/kubernetes/collector.yaml) on a real API server:
with exactly that role it lists every kind it watches, never receives a Secret's data,
and any write is refused."""

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from kube_tools import as_service_account
from kubernetes import client, config, utils
from kubernetes.client.rest import ApiException

from kubeopera.collectors.kubernetes.resources import RESOURCES, Resource
from kubeopera.collectors.kubernetes.watch import Changes, Watcher
from kubeopera.deploy.testcluster import LocalCluster

MANIFEST = Path(__file__).resolve().parents[1] / "deploy" / "kubernetes" / "collector.yaml"


@pytest.fixture(scope="module")
def as_collector(kube_cluster: LocalCluster) -> Iterator[client.ApiClient]:
    """An API client holding a token of the manifest's ServiceAccount."""
    with config.new_client_from_config(config_file=str(kube_cluster.kubeconfig)) as admin:
        utils.create_from_yaml(admin, str(MANIFEST))
        core = client.CoreV1Api(admin)
        core.create_namespaced_secret(
            "kubeopera",
            client.V1Secret(
                metadata=client.V1ObjectMeta(name="db", labels={"app": "shop"}),
                string_data={"password": "only-ever-in-the-secret-data"},
            ),
        )
        with as_service_account(admin, "kubeopera", "kubeopera-collector") as api:
            yield api


def test_the_role_lists_every_watched_kind_and_secrets_arrive_without_data(
    as_collector: client.ApiClient,
) -> None:
    seen: dict[str, Changes] = {}

    def keep(resource: Resource, changes: Changes) -> None:
        seen.setdefault(resource.kind, []).extend(changes)

    for resource in RESOURCES:
        Watcher(as_collector, resource, keep).list_all()  # raises on a 403
    assert {"Namespace", "ServiceAccount", "ClusterRole", "Secret"} <= set(seen)
    (secret,) = [o for _, o in seen["Secret"] if o["metadata"]["name"] == "db"]
    assert secret["metadata"]["labels"] == {"app": "shop"}
    assert "data" not in secret and "stringData" not in secret
    planted = b"only-ever-in-the-secret-data"
    assert planted.decode() not in str(seen)
    assert base64.b64encode(planted).decode() not in str(seen)  # as the API encodes data


@pytest.mark.parametrize(
    ("verb", "group", "resource", "subresource"),
    [
        ("get", "", "nodes", "proxy"),  # the kubelet summary API
        ("list", "metrics.k8s.io", "nodes", ""),
        ("list", "metrics.k8s.io", "pods", ""),
        ("get", "apps", "replicasets", ""),  # an owner its watch has not reported yet
        ("get", "batch", "jobs", ""),
    ],
)
def test_the_role_may_read_usage_and_owners(
    as_collector: client.ApiClient, verb: str, group: str, resource: str, subresource: str
) -> None:
    review = client.AuthorizationV1Api(as_collector).create_self_subject_access_review(
        client.V1SelfSubjectAccessReview(
            spec=client.V1SelfSubjectAccessReviewSpec(
                resource_attributes=client.V1ResourceAttributes(
                    verb=verb, group=group, resource=resource, subresource=subresource
                )
            )
        )
    )
    assert review.status.allowed


def test_every_write_is_refused(as_collector: client.ApiClient) -> None:
    core, apps = client.CoreV1Api(as_collector), client.AppsV1Api(as_collector)
    writes = [
        lambda: core.create_namespaced_config_map(
            "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="x"))
        ),
        lambda: core.delete_namespace("kubeopera"),
        lambda: core.patch_node("any", {"metadata": {"labels": {"x": "y"}}}),
        lambda: apps.patch_namespaced_deployment(
            "kubeopera-collector", "kubeopera", {"spec": {"replicas": 0}}
        ),
    ]
    for write in writes:
        with pytest.raises(ApiException) as refused:
            write()
        assert refused.value.status == 403
