"""The test API server is a real Kubernetes API: objects persist in etcd, RBAC decides.

What the collector's tests build on: an admin creates objects; a ServiceAccount bound to
a read-only ClusterRole may read them and is refused any write."""

from collections.abc import Iterator

import pytest
from kube_tools import as_service_account
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from kubeopera.deploy.testcluster import LocalCluster


@pytest.fixture(scope="module")
def admin(kube_cluster: LocalCluster) -> Iterator[client.ApiClient]:
    with config.new_client_from_config(config_file=str(kube_cluster.kubeconfig)) as api:
        yield api


def pod(name: str) -> client.V1Pod:
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels={"app": "shop"}),
        spec=client.V1PodSpec(containers=[client.V1Container(name="app", image="shop:1")]),
    )


def test_objects_created_through_the_api_are_stored_and_listed(admin: client.ApiClient) -> None:
    core = client.CoreV1Api(admin)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="shop")))
    created = core.create_namespaced_pod("shop", pod("web-1"))
    listed = core.list_namespaced_pod("shop", label_selector="app=shop")
    assert [p.metadata.name for p in listed.items] == ["web-1"]
    assert listed.items[0].metadata.uid == created.metadata.uid
    assert int(listed.metadata.resource_version) >= int(created.metadata.resource_version)
    assert "shop" in {n.metadata.name for n in core.list_namespace().items}


def test_a_read_only_service_account_reads_and_is_refused_writes(
    admin: client.ApiClient,
) -> None:
    core, rbac = client.CoreV1Api(admin), client.RbacAuthorizationV1Api(admin)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="audit")))
    core.create_namespaced_pod("audit", pod("api-1"))
    core.create_namespaced_service_account(
        "audit", client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="reader"))
    )
    rbac.create_cluster_role(
        client.V1ClusterRole(
            metadata=client.V1ObjectMeta(name="pod-reader"),
            rules=[
                client.V1PolicyRule(
                    api_groups=[""], resources=["pods"], verbs=["get", "list", "watch"]
                )
            ],
        )
    )
    rbac.create_cluster_role_binding(
        client.V1ClusterRoleBinding(
            metadata=client.V1ObjectMeta(name="pod-reader"),
            role_ref=client.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="pod-reader"
            ),
            subjects=[
                client.RbacV1Subject(kind="ServiceAccount", name="reader", namespace="audit")
            ],
        )
    )
    with as_service_account(admin, "audit", "reader") as as_reader:
        reader = client.CoreV1Api(as_reader)
        assert [p.metadata.name for p in reader.list_namespaced_pod("audit").items] == ["api-1"]
        with pytest.raises(ApiException) as refused:
            reader.create_namespaced_pod("audit", pod("api-2"))
        assert refused.value.status == 403
        with pytest.raises(ApiException) as not_granted:
            reader.list_namespaced_secret("audit")
        assert not_granted.value.status == 403
