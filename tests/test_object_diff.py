"""Field-level differences between object versions (``streams/object_diff.py``), the
change timeline's and drift's core: expected rows worked out by hand, on a real
manifest of ../shared/data among others."""

import copy
import hashlib
import json
from typing import Any

import pytest
import yaml
from conftest import SHARED_DATA

from kubeopera.streams.object_diff import LONGEST, FieldChange, differences

CHECKOUT = (
    SHARED_DATA / "manifests" / "microservices-demo" / "release" / "kubernetes-manifests.yaml"
)


def deployment(**spec: Any) -> dict[str, Any]:
    container = {"name": "app", "image": "shop:1.4", "env": [{"name": "A", "value": "1"}]}
    return {
        "metadata": {"name": "web", "resourceVersion": "10", "generation": 1},
        "spec": {"replicas": 2, "template": {"spec": {"containers": [container]}}, **spec},
        "status": {"readyReplicas": 2},
    }


def rows(old: Any, new: Any, ignored: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    return [
        (c.path, c.change, str(c.old), str(c.new), c.category)
        for c in differences(old, new, ignored)
    ]


def test_one_row_per_changed_field_with_containers_and_env_named() -> None:
    old = deployment()
    new = copy.deepcopy(old)
    app = new["spec"]["template"]["spec"]["containers"][0]
    app["image"] = "shop:1.5"
    app["env"] = [{"name": "B", "value": "2"}, {"name": "A", "value": "9"}]  # reordered too
    app["resources"] = {"limits": {"memory": "256Mi"}}
    new["metadata"]["labels"] = {"tier": "web"}
    new["metadata"]["resourceVersion"] = "11"  # noise
    new["status"]["readyReplicas"] = 1  # noise
    containers = "/spec/template/spec/containers/[name=app]"
    assert rows(old, new) == [
        ("/metadata/labels", "ADDED", "None", '{"tier":"web"}', "labels/annotations"),
        (f"{containers}/env/[name=A]/value", "MODIFIED", '"1"', '"9"', "env"),
        (f"{containers}/env/[name=B]", "ADDED", "None", '{"name":"B","value":"2"}', "env"),
        (f"{containers}/image", "MODIFIED", '"shop:1.4"', '"shop:1.5"', "image"),
        (f"{containers}/resources", "ADDED", "None", '{"limits":{"memory":"256Mi"}}',
         "resources"),
    ]  # fmt: skip


def test_a_reordered_merged_list_is_no_change_but_an_atomic_list_is_compared_whole() -> None:
    old = deployment()
    old["spec"]["template"]["spec"]["containers"].append({"name": "sidecar", "image": "s:1"})
    new = copy.deepcopy(old)
    new["spec"]["template"]["spec"]["containers"].reverse()
    assert rows(old, new) == []
    new["spec"]["template"]["spec"]["containers"][0]["args"] = ["--a", "--b"]
    old["spec"]["template"]["spec"]["containers"][1]["args"] = ["--b", "--a"]
    path = "/spec/template/spec/containers/[name=sidecar]/args"
    assert rows(old, new) == [(path, "MODIFIED", '["--b","--a"]', '["--a","--b"]', "other")]


def test_ignored_paths_with_wildcards_leave_out_what_a_controller_owns() -> None:
    old, new = deployment(), deployment(replicas=5)
    assert rows(old, new) == [("/spec/replicas", "MODIFIED", "2", "5", "replicas")]
    assert rows(old, new, ("/spec/replicas",)) == []
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "shop:2"
    ignored = ("/spec/replicas", "/spec/template/spec/containers/*/image")
    assert rows(old, new, ignored) == []


def test_a_created_or_deleted_object_is_one_row_per_top_level_field() -> None:
    new = deployment()
    created = rows(None, new)
    assert [(p, c) for p, c, *_ in created] == [("/metadata", "ADDED"), ("/spec", "ADDED")]
    assert json.loads(created[1][3]) == new["spec"]
    assert [(p, c) for p, c, *_ in rows(new, None)] == [
        ("/metadata", "DELETED"),
        ("/spec", "DELETED"),
    ]


def test_a_long_value_is_cut_and_ends_with_its_hash() -> None:
    long = "x" * 1000
    (change,) = differences({"data": {"a": "short"}}, {"data": {"a": long}})
    text = json.dumps(long)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    assert change.new == f"{text[: LONGEST - 32]}...(sha256:{digest})"
    assert len(change.new) <= LONGEST


def test_pointer_segments_are_escaped_as_rfc_6901_says() -> None:
    (change,) = differences(
        {"metadata": {"annotations": {"a/b~c": "1"}}}, {"metadata": {"annotations": {}}}
    )
    assert change == FieldChange(
        "/metadata/annotations/a~1b~0c", "DELETED", '"1"', None, "labels/annotations"
    )


def test_a_list_whose_items_lack_their_key_is_compared_whole() -> None:
    old = {"spec": {"ports": [{"port": 80}, {"port": 80}]}}  # not unique: no key
    new = {"spec": {"ports": [{"port": 80}]}}
    assert rows(old, new) == [
        ("/spec/ports", "MODIFIED", '[{"port":80},{"port":80}]', '[{"port":80}]', "other")
    ]


def test_on_a_real_manifest_an_edit_shows_as_the_fields_it_touched() -> None:
    if not CHECKOUT.exists():
        pytest.skip(f"{CHECKOUT} is not there")
    docs = [d for d in yaml.safe_load_all(CHECKOUT.read_text()) if d]
    (checkout,) = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] ==
                   "checkoutservice"]  # fmt: skip
    edited = copy.deepcopy(checkout)
    server = edited["spec"]["template"]["spec"]["containers"][0]
    server["env"][-1]["value"] = "9999"
    server["resources"]["limits"]["memory"] = "256Mi"
    name, env_name = server["name"], server["env"][-1]["name"]
    old_port = checkout["spec"]["template"]["spec"]["containers"][0]["env"][-1]["value"]
    old_memory = checkout["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"][
        "memory"
    ]
    path = f"/spec/template/spec/containers/[name={name}]"
    assert rows(checkout, edited) == [
        (f"{path}/env/[name={env_name}]/value", "MODIFIED", json.dumps(old_port), '"9999"',
         "env"),
        (f"{path}/resources/limits/memory", "MODIFIED", json.dumps(old_memory), '"256Mi"',
         "resources"),
    ]  # fmt: skip
