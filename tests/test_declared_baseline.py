"""The declared baseline for drift: manifests read from folders, files and Git refs
(``collectors/manifests.py``), cut down to the fields a manager owns
(``models/field_paths.owned``), and normalised by the real API server in a dry-run
server-side apply (``collectors/kubernetes/declared.py``)."""

import copy
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import SHARED_DATA
from kubernetes import config
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from kubeopera.collectors.kubernetes.api import get_json, send
from kubeopera.collectors.kubernetes.declared import APPLY, normalised
from kubeopera.collectors.kubernetes.redact import Redactor
from kubeopera.collectors.kubernetes.resources import known
from kubeopera.collectors.manifests import Manifest, ManifestError, load
from kubeopera.deploy.testcluster import LocalCluster
from kubeopera.models.field_paths import MERGE_KEYS, owned
from kubeopera.streams.object_diff import differences

SOCK_SHOP = SHARED_DATA / "manifests" / "sock-shop" / "deploy" / "kubernetes" / "complete-demo.yaml"


def deployment(name: str, cpu: str = "100m") -> dict[str, Any]:
    container = {"name": "app", "image": "shop:1.4", "resources": {"requests": {"cpu": cpu}}}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [container]},
            },
        },
    }


def service(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": {"app": name}, "ports": [{"port": 80}]}}  # fmt: skip


SECRET = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"},
          "stringData": {"password": "hunter2"}}  # fmt: skip


def write(path: Path, *documents: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump_all(documents))
    return path


def failure(source: str) -> str:
    """load's error message, which must be one line."""
    with pytest.raises(ManifestError) as raised:
        load(source)
    message = str(raised.value)
    assert "\n" not in message
    return message


# --- loading ---------------------------------------------------------------------------


def test_a_folder_loads_its_files_in_path_order_document_by_document(tmp_path: Path) -> None:
    """Nested folders, several documents in a file (an empty one passed over, but
    counted: ``#3`` is the file's third document), JSON; hidden folders and files, and
    files of other kinds, are not read (they would not load)."""
    write(tmp_path / "apps" / "web.yaml", deployment("web"), None, service("web"))
    write(tmp_path / "apps" / "db" / "db.yml", deployment("db"))
    (tmp_path / "base.json").write_text('{"apiVersion": "v1", "kind": "Namespace",\n'
                                        ' "metadata": {"name": "shop"}}')  # fmt: skip
    for ignored in (".git/config.yaml", ".gitlab-ci.yml", "README.md", "apps/notes.txt"):
        (tmp_path / ignored).parent.mkdir(exist_ok=True)
        (tmp_path / ignored).write_text("not: [a manifest\n")
    loaded = load(str(tmp_path))
    assert [(m.source, m.document["kind"], m.document["metadata"]["name"]) for m in loaded] == [
        ("apps/db/db.yml", "Deployment", "db"),
        ("apps/web.yaml#1", "Deployment", "web"),
        ("apps/web.yaml#3", "Service", "web"),
        ("base.json", "Namespace", "shop"),
    ]
    assert loaded[1].document == deployment("web")
    (single,) = load(str(tmp_path / "apps" / "db" / "db.yml"))
    assert single == Manifest("db.yml", deployment("db"))


def test_lists_are_flattened_and_secrets_never_loaded(tmp_path: Path) -> None:
    items = {"apiVersion": "v1", "kind": "List", "items": [service("a"), SECRET, service("b")]}
    write(tmp_path / "list.yaml", items)
    others = [service("c"), SECRET, service("d")]
    write(tmp_path / "more.yaml", SECRET, {**items, "kind": "ServiceList", "items": others})
    loaded = load(str(tmp_path))
    assert [m.source for m in loaded] == [
        "list.yaml#/items/0",
        "list.yaml#/items/2",
        "more.yaml#2/items/0",
        "more.yaml#2/items/2",
    ]
    assert "hunter2" not in repr(loaded)


def test_yaml_timestamps_stay_strings(tmp_path: Path) -> None:
    """As Kubernetes reads them: ``2026-01-05`` is a string, not a date."""
    (tmp_path / "ns.yaml").write_text(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n"
        "  annotations:\n    since: 2026-01-05\n"
    )
    (namespace,) = load(str(tmp_path / "ns.yaml"))
    assert namespace.document["metadata"]["annotations"] == {"since": "2026-01-05"}


def test_what_is_not_yaml_or_json_is_named_with_its_line(tmp_path: Path) -> None:
    folder = tmp_path / "manifests"
    write(folder / "good.yaml", service("web"))
    (folder / "bad.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: name: x\n")
    message = failure(str(folder))  # "... here)" from PyYAML, "... in this context)" from libyaml
    assert message.startswith(
        f"{folder}/bad.yaml: not YAML (line 3, column 15: mapping values are not allowed "
    )
    (folder / "bad.yaml").unlink()
    (folder / "bad.json").write_text('{"apiVersion": "v1",\n "kind": }')
    assert failure(str(folder)) == (
        f"{folder}/bad.json: not JSON (line 2, column 10: Expecting value)"
    )


@pytest.mark.parametrize(
    ("document", "missing"),
    [
        ({"apiVersion": "v1", "metadata": {"name": "web"}}, "no kind"),
        ({"kind": "Service", "metadata": {"name": "web"}}, "no apiVersion"),
        ({"apiVersion": "v1", "kind": "Service", "metadata": {"generateName": "w"}},
         "no metadata.name"),
        (["apiVersion", "v1"], "a list"),
    ],
)  # fmt: skip
def test_a_document_that_is_no_object_is_named(tmp_path: Path, document: Any, missing: str) -> None:
    write(tmp_path / "web.yaml", service("web"), document)
    assert failure(str(tmp_path)) == (f"{tmp_path}/web.yaml#2: not a Kubernetes object ({missing})")


def test_a_kustomization_says_to_render_it(tmp_path: Path) -> None:
    kustomization = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                     "resources": ["web.yaml"]}  # fmt: skip
    write(tmp_path / "kustomization.yaml", kustomization)
    assert "a Kustomize file" in failure(str(tmp_path))


def test_a_source_that_is_neither_a_path_nor_a_git_ref() -> None:
    assert failure("/nowhere/manifests") == (
        "/nowhere/manifests: no such file or folder, nor URL_OR_PATH@REF"
    )
    assert "no such file" in failure("git@github.com:org/repo.git")  # ssh, but no @REF
    assert "no such file" in failure("https://ci@git.example.com/org/repo.git")  # no @REF


# --- Git ---------------------------------------------------------------------------------


def git(repository: Path, *arguments: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repository), "-c", "user.name=t", "-c", "user.email=t@example.com",
         *arguments], capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout.strip()


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    """A Git repository: ``v1`` tags a first commit (a Deployment at cpu 100m, a Service
    under deploy/), ``main`` and ``release/2`` a second one (cpu 200m)."""
    repository = tmp_path / "repo"
    repository.mkdir()
    git(repository, "init", "--quiet", "-b", "main")
    write(repository / "deploy" / "web.yaml", deployment("web"), service("web"))
    write(repository / "docs" / "note.yaml", {"apiVersion": "v1", "kind": "Namespace",
                                               "metadata": {"name": "docs"}})  # fmt: skip
    git(repository, "add", ".")
    git(repository, "commit", "--quiet", "-m", "first")
    git(repository, "tag", "v1")
    write(repository / "deploy" / "web.yaml", deployment("web", cpu="200m"), service("web"))
    git(repository, "commit", "--quiet", "-am", "second")
    git(repository, "branch", "release/2")
    return repository


def cpu(manifests: list[Manifest]) -> str:
    (web,) = [m for m in manifests if m.document["kind"] == "Deployment"]
    container = web.document["spec"]["template"]["spec"]["containers"][0]
    return str(container["resources"]["requests"]["cpu"])


def test_a_git_repository_is_read_at_a_tag_a_commit_or_a_branch(repository: Path) -> None:
    first = git(repository, "rev-parse", "v1")
    at_tag = load(f"{repository}@v1")
    assert [m.source for m in at_tag] == ["deploy/web.yaml#1", "deploy/web.yaml#2",
                                          "docs/note.yaml"]  # fmt: skip
    assert cpu(at_tag) == "100m"
    assert cpu(load(f"{repository}@{first}")) == cpu(load(f"{repository}@{first[:8]}")) == "100m"
    assert cpu(load(f"file://{repository}@main")) == "200m"
    assert cpu(load(f"{repository}@release/2")) == "200m"
    assert [m.source for m in load(f"{repository}@v1:deploy")] == ["web.yaml#1", "web.yaml#2"]


def test_a_missing_ref_or_path_or_repository_is_one_line(repository: Path, tmp_path: Path) -> None:
    assert failure(f"{repository}@nope") == f"git ref 'nope' not found in {repository}"
    assert failure(f"{repository}@v1:nowhere") == (
        f"{repository}@v1: no path 'nowhere' in the repository"
    )
    missing = tmp_path / "missing.git"
    assert failure(f"file://{missing}@main") == (
        f"git clone file://{missing}: fatal: '{missing}' does not appear to be a git repository"
    )
    write(repository / "deploy" / "bad.yaml", {"apiVersion": "v1"})
    git(repository, "add", ".")
    git(repository, "commit", "--quiet", "-m", "bad")
    assert failure(f"{repository}@main") == (
        f"{repository}@main:deploy/bad.yaml: not a Kubernetes object (no kind)"
    )


@pytest.mark.parametrize(
    ("source", "cloned"),
    [
        ("git@github.com:org/repo.git@main", "git@github.com:org/repo.git"),
        ("https://ci@git.example.com/org/repo.git@release/2:deploy",
         "https://ci@git.example.com/org/repo.git"),
        ("ssh://git@git.example.com:2222/org/repo.git@v1", "ssh://git@git.example.com:2222/org/repo.git"),
    ],
)  # fmt: skip
def test_the_ref_is_after_the_last_at_sign(
    source: str, cloned: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What is cloned (a stand-in ``git`` that cannot reach anything says)."""
    fake = tmp_path / "git"
    fake.write_text("#!/bin/sh\necho \"fatal: unable to access '$5'\" >&2\nexit 128\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    assert failure(source) == f"git clone {cloned}: fatal: unable to access '{cloned}'"


# --- owned fields --------------------------------------------------------------------------

POD_SPEC = {
    "containers": [
        {"name": "app", "image": "shop:1.5", "imagePullPolicy": "IfNotPresent",
         "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
         "ports": [{"containerPort": 80, "protocol": "TCP"},
                   {"containerPort": 9090, "protocol": "TCP"}]},
        {"name": "sidecar", "image": "proxy:1"},
    ],
    "tolerations": [{"key": "spot", "operator": "Exists"}],
}  # fmt: skip


def test_owned_keeps_the_named_items_of_keyed_lists_by_their_key() -> None:
    app = "/containers/[name=app]"
    kept = owned(POD_SPEC, [app, f"{app}/env/[name=B]", f"{app}/env/[name=B]/value",
                            f"{app}/ports/[containerPort=80]/containerPort"])  # fmt: skip
    assert kept == {"containers": [{"name": "app", "env": [{"name": "B", "value": "2"}],
                                    "ports": [{"containerPort": 80}]}]}  # fmt: skip
    assert MERGE_KEYS["ports"][0] == "containerPort"  # the key the collector names ports by


def test_owned_keeps_whole_values_where_paths_end_and_nothing_else() -> None:
    assert owned(POD_SPEC, ["/containers/[name=sidecar]", "/tolerations"]) == {
        "containers": [{"name": "sidecar", "image": "proxy:1"}],
        "tolerations": POD_SPEC["tolerations"],
    }
    sets = {"metadata": {"finalizers": ["a", "b"]}, "spec": {"args": ["x", "y"]}}
    assert owned(sets, ["/metadata/finalizers/[value]", "/spec/args/1"]) == {
        "metadata": {"finalizers": ["a", "b"]},
        "spec": {"args": ["y"]},
    }
    assert owned(POD_SPEC, []) == owned(POD_SPEC, [""]) == {}
    assert owned(POD_SPEC, ["/nodeSelector", "/containers/[name=gone]/image"]) == {"containers": []}
    annotated = {"metadata": {"annotations": {"a/b": "1", "c": "2"}}}
    assert owned(annotated, ["/metadata/annotations/a~1b"]) == {
        "metadata": {"annotations": {"a/b": "1"}}
    }


# --- on the real API server ----------------------------------------------------------------


def apply(api: ApiClient, document: dict[str, Any], manager: str = "helm") -> dict[str, Any]:
    """A real (not dry-run) server-side apply, as Helm or Argo CD would make it."""
    resource = known(document["apiVersion"], document["kind"])
    assert resource is not None
    metadata = document["metadata"]
    path = resource.object_path(metadata["name"], metadata.get("namespace", ""))
    return send(api, "PATCH", path, [("fieldManager", manager), ("force", "true")], document, APPLY)


def live(api: ApiClient, document: dict[str, Any]) -> dict[str, Any]:
    resource = known(document["apiVersion"], document["kind"])
    assert resource is not None
    metadata = document["metadata"]
    path = resource.object_path(metadata["name"], metadata.get("namespace", ""))
    return get_json(api, path)


def assert_within(declared: Any, stored: Any, path: str = "") -> None:
    """Every field of ``declared`` is in ``stored`` with the same value (items of keyed
    lists matched by their key)."""
    if isinstance(declared, dict):
        assert isinstance(stored, dict), path
        for key, value in declared.items():
            assert key in stored, f"{path}/{key}"
            assert_within(value, stored[key], f"{path}/{key}")
    elif isinstance(declared, list) and path.rsplit("/", 1)[-1] in MERGE_KEYS:
        for entry in declared:
            key = next(k for k in MERGE_KEYS[path.rsplit("/", 1)[-1]] if k in entry)
            (match,) = [s for s in stored if s.get(key) == entry[key]]
            assert_within(entry, match, f"{path}/[{key}={entry[key]}]")
    else:
        assert declared == stored, path


DEFAULTED = {  # kind -> fields the server adds where Sock Shop does not declare them
    "Deployment": ["/spec/strategy", "/spec/revisionHistoryLimit", "/spec/progressDeadlineSeconds",
                   "/spec/template/spec/restartPolicy", "/spec/template/spec/dnsPolicy",
                   "/spec/template/spec/containers/0/imagePullPolicy",
                   "/spec/template/spec/containers/0/terminationMessagePath"],
    "Service": ["/spec/type", "/spec/sessionAffinity", "/spec/clusterIP",
                "/spec/ports/0/protocol"],
}  # fmt: skip


def at(obj: Any, pointer: str) -> Any:
    for segment in pointer.split("/")[1:]:
        obj = obj[int(segment)] if isinstance(obj, list) else obj.get(segment)
        if obj is None:
            return None
    return obj


def test_sock_shop_normalised_is_what_the_server_stores_of_it(kube_cluster: LocalCluster) -> None:
    """Sock Shop applied for real by "helm", then normalised: each result is within the
    live (redacted) object, holds what the manifest declares (its one credential
    redacted as the collector redacts it) and none of the defaults the server added."""
    if not SOCK_SHOP.exists():
        pytest.skip(f"{SOCK_SHOP} is not there")
    manifests = load(str(SOCK_SHOP))
    assert len(manifests) == 29 and manifests[0].source == "complete-demo.yaml#1"
    redactor = Redactor(b"cluster key")
    with config.new_client_from_config(config_file=str(kube_cluster.kubeconfig)) as api:
        for manifest in manifests:
            apply(api, manifest.document)
        results = normalised(api, manifests, redactor=redactor)
        stored = [live(api, m.document) for m in manifests]
    defaults_seen = 0
    for manifest, result, obj in zip(manifests, results, stored, strict=True):
        assert_within(result, redactor.redact(obj["kind"], obj))
        changed = [(c.path, c.old) for c in differences(manifest.document, result)]
        if manifest.source == "complete-demo.yaml#8":  # catalogue-db
            env = "/spec/template/spec/containers/[name=catalogue-db]/env"
            assert changed == [(f"{env}/[name=MYSQL_ROOT_PASSWORD]/value", '"fake_password"')]
        else:
            assert changed == [], manifest.source
        for pointer in DEFAULTED.get(obj["kind"], []):
            if at(manifest.document, pointer) is None:  # front-end's Service is a NodePort
                assert at(result, pointer) is None and at(obj, pointer) is not None, pointer
                defaults_seen += 1
    assert defaults_seen == 14 * 7 + 14 * 4 - 1


def test_values_come_back_in_the_servers_form_and_nothing_is_written(
    kube_cluster: LocalCluster, tmp_path: Path
) -> None:
    """cpu 0.1 is stored 100m, memory 0.5Gi 512Mi: the baseline says so too, for an
    object applied before and for one that does not exist (created by nobody). A kind
    the collector does not watch (PriorityClass, cluster-scoped) is found by discovery."""
    declared = deployment("web", cpu="0.1")
    container = declared["spec"]["template"]["spec"]["containers"][0]
    container["resources"]["limits"] = {"memory": "0.5Gi"}
    priority = {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "value": 1000,
                "metadata": {"name": "baseline-high", "namespace": "ignored"}}  # fmt: skip
    write(tmp_path / "web.yaml", declared, {**copy.deepcopy(declared),
                                            "metadata": {"name": "new"}}, priority)  # fmt: skip
    manifests = load(str(tmp_path))
    with config.new_client_from_config(config_file=str(kube_cluster.kubeconfig)) as api:
        send(api, "POST", "/api/v1/namespaces", body={"metadata": {"name": "baseline"}})
        on_server = apply(api, {**declared, "metadata": {**declared["metadata"],
                                                           "namespace": "baseline"}})  # fmt: skip
        web, new, high = normalised(api, manifests, namespace="baseline")
        with pytest.raises(ApiException) as missing:
            live(api, {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": new["metadata"]})
        with pytest.raises(ApiException):
            get_json(api, "/apis/scheduling.k8s.io/v1/priorityclasses/baseline-high")
    assert missing.value.status == 404  # dryRun=All: nothing was written
    resources = {"requests": {"cpu": "100m"}, "limits": {"memory": "512Mi"}}
    stored = on_server["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert stored == resources
    for result in (web, new):
        assert result["metadata"]["namespace"] == "baseline"
        (app,) = result["spec"]["template"]["spec"]["containers"]
        assert app == {"name": "app", "image": "shop:1.4", "resources": resources}
        assert set(result["spec"]) == {"selector", "template"}
    assert high == {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                    "metadata": {"name": "baseline-high"}, "value": 1000}  # fmt: skip


def test_a_manifest_the_server_refuses_is_named_on_one_line(
    kube_cluster: LocalCluster, tmp_path: Path
) -> None:
    no_selector = deployment("no-selector")
    del no_selector["spec"]["selector"]
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    gadget = {"apiVersion": "apps/v1", "kind": "Gadget", "metadata": {"name": "g"}}
    write(tmp_path / "bad.yaml", no_selector, widget, gadget)
    first, second, third = load(str(tmp_path))
    with config.new_client_from_config(config_file=str(kube_cluster.kubeconfig)) as api:
        messages = []
        for manifest in (first, second, third):
            with pytest.raises(ManifestError) as refused:
                normalised(api, [manifest])
            messages.append(str(refused.value))
    assert all("\n" not in message for message in messages)
    assert messages[0].startswith(
        'bad.yaml#1: Deployment.apps "no-selector" is invalid: [spec.selector: Required value, '
    )
    assert messages[1:] == [
        "bad.yaml#2: the server serves no example.com/v1",
        "bad.yaml#3: the server serves no kind Gadget in apps/v1",
    ]
