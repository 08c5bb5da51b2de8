"""Drift against a real manifest set on the real kube-apiserver, as a user runs it: Sock
Shop (``../shared/data/manifests``) applied by "helm", three edits by hand (an image, a
memory limit, an added label) and the defaults the server filled in left alone; the real
collector into the embedded store; ``kubeopera drift --baseline`` normalising the
manifests on the same server. Exactly the three edits are drift; one reverted and
collected again, its finding resolves."""

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_tools import run_kubeopera, stored
from kubernetes import config
from kubernetes.client import ApiClient
from test_declared_baseline import SOCK_SHOP, apply

from kubeopera.collectors.kubernetes.api import send
from kubeopera.deploy.testcluster import LocalCluster

pytestmark = pytest.mark.slow

NAMESPACE = "drift-sock"
CLUSTER = "kube"
FRONT_END_IMAGE = "/spec/template/spec/containers/[name=front-end]/image"
CARTS_MEMORY = "/spec/template/spec/containers/[name=carts]/resources/limits/memory"


def manifests(folder: Path) -> list[dict[str, Any]]:
    """Sock Shop's Deployments, in a namespace of this test's own, written to ``folder``
    as the declared manifest set (its Services would take NodePorts that
    test_declared_baseline's Sock Shop needs on the same API server)."""
    documents = [d for d in yaml.safe_load_all(SOCK_SHOP.read_text()) if d]
    declared = [
        {**d, "metadata": {**d["metadata"], "namespace": NAMESPACE}}
        for d in documents
        if d["kind"] == "Deployment"
    ]
    folder.mkdir()
    (folder / "sock-shop.yaml").write_text(yaml.safe_dump_all(declared))
    return declared


def edit(api: ApiClient, name: str, patch: dict[str, Any]) -> None:
    """``kubectl edit``: a merge patch under kubectl-edit's field manager."""
    send(
        api, "PATCH", f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{name}",
        [("fieldManager", "kubectl-edit")], patch, "application/strategic-merge-patch+json",
    )  # fmt: skip


def collect(data: Path, kubeconfig: Path) -> None:
    result = run_kubeopera(
        data, "collect", "--kubeconfig", str(kubeconfig), "--cluster-name", CLUSTER,
        "--embedded", "--stop-after", "4", "--scrape-seconds", "0",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def drift(data: Path, *args: str) -> set[tuple[str, str, str, str | None, str | None]]:
    result = run_kubeopera(data, "drift", "--cluster", CLUSTER, "--namespace", NAMESPACE,
                           *args, "--format", "json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    return {(r["name"], r["path"], r["change"], r["expected"], r["live"])
            for r in json.loads(result.stdout)}  # fmt: skip


def test_three_edits_are_three_drifts_and_a_revert_resolves_one(
    kube_cluster: LocalCluster, tmp_path: Path
) -> None:
    if not SOCK_SHOP.exists():
        pytest.skip(f"{SOCK_SHOP} is not there")
    declared, data = tmp_path / "declared", tmp_path / "clickhouse"
    with config.new_client_from_config(config_file=str(kube_cluster.kubeconfig)) as api:
        send(api, "POST", "/api/v1/namespaces", body={"metadata": {"name": NAMESPACE}})
        for document in manifests(declared):
            apply(api, document)
        edit(
            api,
            "front-end",
            {
                "spec": {
                    "template": {
                        "spec": {
                            "containers": [
                                {
                                    "name": "front-end",
                                    "image": "weaveworksdemos/front-end:0.3.13-hotfix",
                                }
                            ]
                        }
                    }
                }
            },
        )
        edit(
            api,
            "carts",
            {
                "spec": {
                    "template": {
                        "spec": {
                            "containers": [
                                {"name": "carts", "resources": {"limits": {"memory": "750Mi"}}}
                            ]
                        }
                    }
                }
            },
        )
        edit(api, "catalogue", {"metadata": {"labels": {"hotfix": "true"}}})  # fmt: skip
        collect(data, kube_cluster.kubeconfig)
        found = drift(
            data, "--baseline", str(declared), "--kubeconfig", str(kube_cluster.kubeconfig)
        )
        assert found == {
            (
                "front-end",
                FRONT_END_IMAGE,
                "changed",
                '"weaveworksdemos/front-end:0.3.12"',
                '"weaveworksdemos/front-end:0.3.13-hotfix"',
            ),
            ("carts", CARTS_MEMORY, "changed", '"500Mi"', '"750Mi"'),
            ("catalogue", "/metadata/labels/hotfix", "added", None, '"true"'),
        }  # fmt: skip (every default the server added, strategy to protocol, is no drift)
        edit(api, "front-end", {"spec": {"template": {"spec": {"containers": [
            {"name": "front-end", "image": "weaveworksdemos/front-end:0.3.12"}]}}}})  # fmt: skip
        collect(data, kube_cluster.kubeconfig)
    assert {(name, path) for name, path, *_ in drift(data)} == {
        ("carts", CARTS_MEMORY),
        ("catalogue", "/metadata/labels/hotfix"),
    }
    states = stored(
        data,
        "SELECT name, status FROM v_findings WHERE finding_kind = 'drift' "
        f"AND namespace = '{NAMESPACE}' ORDER BY name",
    ).rows()
    assert states == [("carts", "open"), ("catalogue", "open"), ("front-end", "resolved")]
