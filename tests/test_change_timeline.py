"""The change timeline processor (``changes``): rows worked out by hand, first on object
changes built here, then on a Deployment's life on the real kube-apiserver as the
collector sees it (created by helm, edited by kubectl-edit, scaled by an autoscaler's
manager, deleted)."""

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kubernetes import client, config
from test_kube_collect import collecting

from kubeopera.deploy.testcluster import LocalCluster
from kubeopera.models import ChangeType, ObjectChange, OwnerRef, Topic
from kubeopera.sinks.clickhouse import Store
from kubeopera.streams.pricing import Pricer
from kubeopera.streams.processor import Batch, Envelope
from kubeopera.streams.processors.change_timeline import ChangesSettings, ChangeTimeline
from kubeopera.streams.reference import Reference

AT = datetime(2026, 12, 5, 9, tzinfo=UTC)
APP = "/spec/template/spec/containers/[name=app]"
AUTOSCALER = "kube-controller-manager"  # the HPA controller runs in it
SHOP = "c/prod Deployment/shop  [Application/shop-app]"  # as kubeopera timeline heads it


def deployment(image: str = "shop:1.4", level: str = "info", replicas: int = 2) -> dict[str, Any]:
    container = {"name": "app", "image": image, "env": [{"name": "LOG_LEVEL", "value": level}]}
    return {
        "metadata": {"name": "shop", "namespace": "prod", "resourceVersion": "1"},
        "spec": {"replicas": replicas, "template": {"spec": {"containers": [container]}}},
        "status": {"replicas": replicas},
    }


def change(kind: ChangeType, obj: dict[str, Any], manager: str, minute: int) -> ObjectChange:
    return ObjectChange(
        cluster="c", api_version="apps/v1", kind="Deployment", namespace="prod", name="shop",
        uid="u-shop", resource_version=str(minute), observed_at=AT + timedelta(minutes=minute),
        change=kind, object=obj, last_manager=manager,
        owner_chain=[OwnerRef(kind="Application", name="shop-app")],
    )  # fmt: skip


def timeline(
    changes: list[ObjectChange], settings: ChangesSettings | None = None
) -> list[tuple[Any, ...]]:
    processor = ChangeTimeline(settings)
    state = processor.new_state()
    envelopes = [Envelope(Topic.OBJECTS, c) for c in changes]
    output = processor.process(Batch(envelopes), Reference(Pricer()), state)
    ((_, frame),) = output.rows
    columns = ["observed_at", "path", "field_change", "old", "new", "category", "manager"]
    return [
        (int((row[0] - AT).total_seconds() // 60), *row[1:]) for row in frame.select(columns).rows()
    ]


def test_a_deployments_life_as_rows() -> None:
    rows = timeline([
        change(ChangeType.ADDED, deployment(), "helm", 0),
        change(ChangeType.MODIFIED, deployment(image="shop:1.5"), "kubectl-edit", 1),
        change(ChangeType.MODIFIED, deployment("shop:1.5", replicas=6), AUTOSCALER, 2),
        change(ChangeType.RESYNC, deployment("shop:1.5", replicas=6), AUTOSCALER, 3),
        change(ChangeType.MODIFIED, deployment("shop:1.5", "debug", 6), "kubectl-edit", 4),
        change(ChangeType.DELETED, deployment("shop:1.5", "debug", 6), "kubectl-edit", 5),
    ])  # fmt: skip
    created_spec = '{"replicas":2,"template":{"spec":{"containers":[{"env":[{"name":"LOG_LEVEL","value":"info"}],"image":"shop:1.4","name":"app"}]}}}'  # noqa: E501
    final_spec = created_spec.replace("1.4", "1.5").replace("info", "debug").replace(":2,", ":6,")
    assert rows == [
        (0, "/metadata", "ADDED", None, '{"name":"shop","namespace":"prod"}', "other", "helm"),
        (0, "/spec", "ADDED", None, created_spec, "other", "helm"),
        (1, f"{APP}/image", "MODIFIED", '"shop:1.4"', '"shop:1.5"', "image", "kubectl-edit"),
        # minute 2: the autoscaler's replicas are left out; minute 3: nothing changed
        (4, f"{APP}/env/[name=LOG_LEVEL]/value", "MODIFIED", '"info"', '"debug"', "env",
         "kubectl-edit"),
        (5, "/metadata", "DELETED", '{"name":"shop","namespace":"prod"}', None, "other",
         "kubectl-edit"),
        (5, "/spec", "DELETED", final_spec, None, "other", "kubectl-edit"),
    ]  # fmt: skip


def test_replicas_set_by_a_person_are_in_and_the_ignore_list_is_configurable() -> None:
    changes = [
        change(ChangeType.ADDED, deployment(), "helm", 0),
        change(ChangeType.MODIFIED, deployment(replicas=3), "kubectl-scale", 1),
    ]
    assert timeline(changes)[2:] == [
        (1, "/spec/replicas", "MODIFIED", "2", "3", "replicas", "kubectl-scale")
    ]
    quiet = ChangesSettings.model_validate(
        {"ignore_differences": [{"json_pointers": ["/spec/replicas"], "kinds": ["Deployment"]}]}
    )
    assert timeline(changes, quiet)[2:] == []


def test_the_state_keeps_live_objects_only_saved_entry_by_entry() -> None:
    """One entry per live object, without its status; a batch's changed entries are what
    is saved of it (the deleted one as None: the engine removes it; its uid stays known
    for a while, so that a version of it published again gives nothing)."""
    processor = ChangeTimeline()
    state = processor.new_state()
    reference = Reference(Pricer())
    processor.process(
        Batch([Envelope(Topic.OBJECTS, change(ChangeType.ADDED, deployment(), "helm", 0))]),
        reference,
        state,
    )
    ((uid, saved),) = processor.entries(state).changes()
    assert (uid, list(state.live)) == ("u-shop", ["u-shop"])
    assert saved is not None and "status" not in json.loads(saved)["object"]
    assert processor.entries(state).changes() == []  # saved: nothing more to save
    gone = change(ChangeType.DELETED, deployment(), "helm", 1)
    processor.process(Batch([Envelope(Topic.OBJECTS, gone)]), reference, state)
    assert dict(state.live) == {} and processor.entries(state).changes() == [("u-shop", None)]
    again = change(ChangeType.MODIFIED, deployment(), "helm", 0)
    output = processor.process(Batch([Envelope(Topic.OBJECTS, again)]), reference, state)
    assert output.rows[0][1].height == 0 and dict(state.live) == {}


def test_a_deployments_life_on_the_real_api_server(kube_cluster: LocalCluster) -> None:
    """Created by helm, image changed by kubectl-edit, scaled through the scale
    subresource by kube-controller-manager (as the HPA controller does), env edited,
    deleted: the rows name each field, its values and its manager; the scale is not in
    them. (Managers' times have one-second resolution: the steps are a second apart.)"""
    with config.new_client_from_config(config_file=str(kube_cluster.kubeconfig)) as admin:
        core, apps = client.CoreV1Api(admin), client.AppsV1Api(admin)
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="timeline")))
        container = client.V1Container(
            name="app", image="shop:1.4", env=[client.V1EnvVar(name="LOG_LEVEL", value="info")]
        )
        body = client.V1Deployment(
            metadata=client.V1ObjectMeta(name="shop"),
            spec=client.V1DeploymentSpec(
                replicas=2,
                selector=client.V1LabelSelector(match_labels={"app": "shop"}),
                template=client.V1PodTemplateSpec(
                    metadata=client.V1ObjectMeta(labels={"app": "shop"}),
                    spec=client.V1PodSpec(containers=[container]),
                ),
            ),
        )
        collector, changes = collecting(admin, "Deployment")
        steps = [
            lambda: apps.create_namespaced_deployment("timeline", body, field_manager="helm"),
            lambda: apps.patch_namespaced_deployment(
                "shop", "timeline", {"spec": {"template": {"spec": {"containers": [
                    {"name": "app", "image": "shop:1.5"}]}}}}, field_manager="kubectl-edit"),
            lambda: apps.patch_namespaced_deployment_scale(
                "shop", "timeline", {"spec": {"replicas": 6}}, field_manager=AUTOSCALER),
            lambda: apps.patch_namespaced_deployment(
                "shop", "timeline", {"spec": {"template": {"spec": {"containers": [
                    {"name": "app", "env": [{"name": "LOG_LEVEL", "value": "debug"}]}]}}}},
                field_manager="kubectl-edit"),
            lambda: apps.delete_namespaced_deployment("shop", "timeline"),
        ]  # fmt: skip
        stop = threading.Event()
        thread = threading.Thread(target=collector.run, args=(stop,), daemon=True)
        thread.start()
        time.sleep(2)  # listed and watching
        for step in steps:
            step()
            time.sleep(1.2)
        deadline = time.monotonic() + 30
        while not any(c.change == ChangeType.DELETED for c in changes):
            assert time.monotonic() < deadline, "the deletion was not seen"
            time.sleep(0.1)
        stop.set()
        thread.join(timeout=10)
    mine = [c for c in changes if c.namespace == "timeline"]
    assert [c.change for c in mine] == [
        ChangeType.ADDED,
        *[ChangeType.MODIFIED] * 3,
        ChangeType.DELETED,
    ]
    processor = ChangeTimeline()
    state = processor.new_state()
    output = processor.process(
        Batch([Envelope(Topic.OBJECTS, c) for c in mine]), Reference(Pricer()), state
    )
    ((_, frame),) = output.rows
    rows = frame.select("change", "path", "field_change", "old", "new", "manager").rows()
    assert [(r[0], r[1], r[2], r[5]) for r in rows if r[0] != "MODIFIED"] == [
        ("ADDED", "/metadata", "ADDED", "helm"),
        ("ADDED", "/spec", "ADDED", "helm"),
        ("DELETED", "/metadata", "DELETED", "kubectl-edit"),
        ("DELETED", "/spec", "DELETED", "kubectl-edit"),
    ]
    assert [r[1:] for r in rows if r[0] == "MODIFIED"] == [
        (f"{APP}/image", "MODIFIED", '"shop:1.4"', '"shop:1.5"', "kubectl-edit"),
        (f"{APP}/env/[name=LOG_LEVEL]/value", "MODIFIED", '"info"', '"debug"', "kubectl-edit"),
    ]


def test_managed_fields_become_pointers_without_values() -> None:
    """``fieldsV1`` as the API server writes it (here a Deployment's, from kubectl apply
    and an autoscaler's scale), named as the timeline names fields; a set's items (by
    value) are not published."""
    from kubeopera.collectors.kubernetes.changes import field_managers

    applied = {
        "f:metadata": {
            "f:labels": {".": {}, "f:app": {}}, "f:finalizers": {'v:"example.com/x"': {}}
        },
        "f:spec": {"f:template": {"f:spec": {"f:containers": {
            'k:{"name":"app"}': {".": {}, "f:image": {}, "f:name": {},
                                 "f:ports": {'k:{"containerPort":80,"protocol":"TCP"}': {".": {}}},
                                 "f:env": {'k:{"name":"LOG_LEVEL"}': {".": {}, "f:value": {}}}}}}}},
    }  # fmt: skip
    metadata = {"managedFields": [
        {"manager": "kubectl", "operation": "Apply", "time": "2026-12-05T09:00:00Z",
         "fieldsType": "FieldsV1", "fieldsV1": applied},
        {"manager": AUTOSCALER, "operation": "Update", "subresource": "scale",
         "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}},
    ]}  # fmt: skip
    kubectl, scale = field_managers(metadata)
    assert (kubectl.manager, kubectl.operation, kubectl.subresource) == ("kubectl", "Apply", "")
    assert kubectl.fields == sorted([
        "/metadata/finalizers/[value]", "/metadata/labels", "/metadata/labels/app",
        f"{APP}", f"{APP}/env/[name=LOG_LEVEL]", f"{APP}/env/[name=LOG_LEVEL]/value",
        f"{APP}/image", f"{APP}/name", f"{APP}/ports/[containerPort=80]",
    ])  # fmt: skip
    assert (scale.subresource, scale.time, scale.fields) == ("scale", None, ["/spec/replicas"])


def test_a_workloads_history_joins_its_changes_and_its_pods_events(store: Store) -> None:
    """``v_object_history``: the Deployment's field changes and the Events of its Pod
    (owned through a ReplicaSet), under the Deployment, in time order; ``v_changes``
    holds the change rows."""
    from kubeopera.models import EventSource, KubeEvent, ObjectRef
    from kubeopera.streams.embedded import EmbeddedEngine
    from kubeopera.streams.registry import build

    chain = [OwnerRef(kind="ReplicaSet", name="shop-7f", uid="u-rs"),
             OwnerRef(kind="Deployment", name="shop", uid="u-shop")]  # fmt: skip
    pod = ObjectChange(
        cluster="c", api_version="v1", kind="Pod", namespace="prod", name="shop-7f-a",
        uid="u-pod", observed_at=AT + timedelta(minutes=1), change=ChangeType.ADDED,
        object={"metadata": {"name": "shop-7f-a"}}, owner_chain=chain,
    )  # fmt: skip
    event = KubeEvent(
        cluster="c", namespace="prod", name="shop-7f-a.1", uid="u-ev", type="Warning",
        reason="BackOff", message="Back-off restarting failed container",
        involved=ObjectRef(kind="Pod", namespace="prod", name="shop-7f-a", uid="u-pod"),
        source=EventSource(component="kubelet"), last_time=AT + timedelta(minutes=3),
    )  # fmt: skip
    messages = [
        (Topic.OBJECTS, change(ChangeType.ADDED, deployment(), "helm", 0)),
        (Topic.OBJECTS, pod),
        (Topic.OBJECTS, change(ChangeType.MODIFIED, deployment("shop:1.5"), "kubectl-edit", 2)),
        (Topic.EVENTS, event),
    ]  # fmt: skip
    EmbeddedEngine(store, build(["archive", "changes"])).run([messages])
    history = store.query(
        "SELECT dateDiff('minute', toDateTime64('2026-12-05 09:00:00', 3, 'UTC'), at), entry,"
        " kind, name, detail, path, who FROM v_object_history"
        " WHERE top_kind = 'Application' AND top_name = 'shop-app' ORDER BY at, path"
    ).rows()
    assert history == [
        (0, "change", "Deployment", "shop", "other", "/metadata", "helm"),
        (0, "change", "Deployment", "shop", "other", "/spec", "helm"),
        (2, "change", "Deployment", "shop", "image", f"{APP}/image", "kubectl-edit"),
    ]
    pods = store.query(
        "SELECT entry, kind, name, detail, new, who FROM v_object_history"
        " WHERE top_kind = 'Deployment' AND top_name = 'shop' ORDER BY at, path"
    ).rows()
    assert pods == [
        ("change", "Pod", "shop-7f-a", "other", '{"name":"shop-7f-a"}', ""),
        ("event", "Pod", "shop-7f-a", "BackOff", "Back-off restarting failed container", "kubelet"),
    ]
    assert store.query("SELECT count() FROM v_changes").item() == 4


def test_kubeopera_timeline_prints_each_version_newest_first(tmp_path: Path) -> None:
    """``kubeopera timeline`` on a store the changes processor wrote: a header per
    object version (time, object, top controller, who) and its fields, newest first;
    filters; ``--format json`` gives the rows; nothing that matches says so."""
    from cli_tools import run_kubeopera

    from kubeopera.sinks.clickhouse import ChdbBackend
    from kubeopera.streams.embedded import EmbeddedEngine
    from kubeopera.streams.registry import build

    now = datetime.now(UTC).replace(microsecond=0)
    created, edited = now - timedelta(minutes=50), now - timedelta(minutes=20)
    versions = [
        change(kind, obj, manager, 0).model_copy(update={"observed_at": at})
        for kind, obj, manager, at in (
            (ChangeType.ADDED, deployment(), "helm", created),
            (ChangeType.MODIFIED, deployment("shop:1.5", "debug"), "kubectl-edit", edited),
        )
    ]
    data = tmp_path / "store"
    with Store(ChdbBackend(data), 0) as store:
        EmbeddedEngine(store, build(["changes"])).run([[(Topic.OBJECTS, v) for v in versions]])
    shown = run_kubeopera(data, "timeline", "--since", "2h")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[:6] == [
        f"{edited:%Y-%m-%d %H:%M:%S} {SHOP}  by kubectl-edit",
        f'  ~ {APP}/env/[name=LOG_LEVEL]/value: "info" -> "debug"',
        f'  ~ {APP}/image: "shop:1.4" -> "shop:1.5"',
        f"{created:%Y-%m-%d %H:%M:%S} {SHOP}  by helm",
        '  + /metadata: {"name":"shop","namespace":"prod"}',
        '  + /spec: {"replicas":2,"template":{"spec":{"containers":[{"env":[{"name":"LOG_LEVEL",'
        '"value":"info"}],"image":"shop:1.4","name":"app"}]}}}',
    ]
    images = run_kubeopera(
        data, "timeline", "--category", "image", "--name", "shop-app", "--format", "json"
    )
    assert [(r["path"], r["new"]) for r in json.loads(images.stdout)] == [
        (f"{APP}/image", '"shop:1.5"')
    ]
    recent = run_kubeopera(data, "timeline", "--since", "30m", "--kind", "Deployment")
    assert len([line for line in recent.stdout.splitlines() if line.startswith("  ")]) == 2
    none = run_kubeopera(data, "timeline", "--namespace", "staging")
    assert none.returncode == 0 and none.stdout.startswith("No changes in the last 1d that match.")


def test_a_field_another_manager_changed_in_the_same_version_names_it() -> None:
    """Managers are found field by field: a version two managers made shows both."""
    import polars as pl

    from kubeopera.cli.render import diff

    row = {"at": AT, "cluster": "c", "namespace": "prod", "kind": "Deployment",
           "name": "shop", "top_kind": "Deployment", "top_name": "shop",
           "field_change": "MODIFIED", "operation": "Update"}  # fmt: skip
    rows = pl.DataFrame([
        {**row, "path": f"{APP}/image", "old": '"a"', "new": '"b"', "manager": "kubectl-edit"},
        {**row, "path": "/spec/replicas", "old": "2", "new": "6", "manager": AUTOSCALER},
    ])  # fmt: skip
    assert [line.plain for line in diff(rows)] == [
        "2026-12-05 09:00:00 c/prod Deployment/shop  [Deployment/shop]  by kubectl-edit (Update)",
        f'  ~ {APP}/image: "a" -> "b"',
        f"  ~ /spec/replicas: 2 -> 6  (by {AUTOSCALER} (Update))",
    ]
