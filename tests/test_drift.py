"""The drift processor (``drift``) and the comparisons behind it (``streams.drift``):
findings worked out by hand on object changes and baselines built here."""

import json
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import pytest

from kubeopera.collectors.simulator import FleetSpec, simulate
from kubeopera.models import (
    Baseline,
    BaselineKind,
    ChangeType,
    Finding,
    ObjectChange,
    Topic,
)
from kubeopera.models.objects import FieldManager
from kubeopera.models.topics import Message
from kubeopera.sinks.clickhouse import Store
from kubeopera.streams.decode import RawMessage
from kubeopera.streams.drift import across, against
from kubeopera.streams.embedded import EmbeddedEngine
from kubeopera.streams.object_diff import comparable
from kubeopera.streams.pipeline import Pipeline
from kubeopera.streams.pricing import Pricer
from kubeopera.streams.processor import Envelope
from kubeopera.streams.processors.archive import Archive
from kubeopera.streams.processors.change_timeline import ChangeTimeline
from kubeopera.streams.processors.drift import DriftDetector, DriftSettings
from kubeopera.streams.reference import Reference

AT = datetime(2026, 12, 5, 9, tzinfo=UTC)
WEB = "/spec/template/spec/containers/[name=web]"


def deployment(
    image: str = "shop:1.4", replicas: int = 2, level: str = "info", **labels: str
) -> dict[str, Any]:
    container = {
        "name": "web",
        "image": image,
        "imagePullPolicy": "IfNotPresent",  # a default the declaration leaves out
        "env": [{"name": "LOG_LEVEL", "value": level}],
        "resources": {"limits": {"memory": "256Mi"}},
    }
    return {
        "metadata": {
            "name": "web", "namespace": "shop", "uid": "u1", "labels": {"app": "web", **labels}
        },
        "spec": {
            "replicas": replicas,
            "strategy": {"type": "RollingUpdate"},
            "template": {"spec": {"containers": [container]}},
        },
        "status": {"replicas": replicas},
    }  # fmt: skip


DECLARED = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
    "spec": {
        "replicas": 2,
        "template": {"spec": {"containers": [
            {"name": "web", "image": "shop:1.4", "env": [{"name": "LOG_LEVEL", "value": "info"}],
             "resources": {"limits": {"memory": "256Mi"}}},
        ]}},
    },
}  # fmt: skip


def change(
    minute: int,
    obj: dict[str, Any],
    kind: ChangeType = ChangeType.MODIFIED,
    manager: str = "kubectl-edit",
) -> Message:
    managers = [
        FieldManager(manager="helm", operation="Apply", time=AT, fields=["/spec/replicas"]),
        FieldManager(manager=manager, operation="Update", time=AT + timedelta(minutes=minute),
                     fields=[f"{WEB}/image"] if manager != "kube-controller-manager" else []),
    ]  # fmt: skip
    if manager == "kube-controller-manager":
        managers[0] = FieldManager(manager="helm", operation="Apply", time=AT)
        managers.append(
            FieldManager(manager=manager, operation="Update", subresource="scale",
                         fields=["/spec/replicas"])
        )  # fmt: skip
    return (
        Topic.OBJECTS,
        ObjectChange(
            cluster="prod", api_version="apps/v1", kind="Deployment", namespace="shop",
            name="web", uid="u1", resource_version=str(minute),
            observed_at=AT + timedelta(minutes=minute), change=kind, object=obj,
            field_managers=managers,
        ),
    )  # fmt: skip


def baseline(
    minute: int, obj: dict[str, Any] | None, kind: BaselineKind = BaselineKind.DECLARED
) -> Message:
    return (
        Topic.BASELINES,
        Baseline(
            baseline=kind, origin="git@example:shop.git@main" if kind == "declared" else "ops",
            cluster="prod", api_version="apps/v1", kind="Deployment", namespace="shop",
            name="web", object=obj, recorded_at=AT + timedelta(minutes=minute),
        ),
    )  # fmt: skip


def findings(
    messages: list[Message], size: int | None = None, settings: DriftSettings | None = None
) -> list[Finding]:
    """The findings of ``messages`` cut into batches of ``size`` (None: one batch), and
    at the end of input."""
    pipeline = Pipeline([DriftDetector(settings or DriftSettings())], Reference(Pricer()))
    found: list[Finding] = []
    size = size or len(messages)
    offsets: dict[Topic, int] = {}
    for start in range(0, len(messages), size):
        envelopes = []
        for topic, message in messages[start : start + size]:
            offsets[topic] = offsets.get(topic, -1) + 1
            envelopes.append(Envelope(topic, message, 0, offsets[topic]))
        output, _ = pipeline.run(envelopes)
        found.extend(output.findings)
    found.extend(pipeline.finish().findings)  # the end of input: every baseline is due
    return found


def seen(found: list[Finding]) -> list[tuple[Any, ...]]:
    """Each finding as (minute, status, minute first seen, [(path, change, expected, live)])."""
    return [
        (
            int((f.last_seen - AT).total_seconds() // 60),
            str(f.status),
            int((f.first_seen - AT).total_seconds() // 60),
            [(e["path"], e["change"], e["expected"], e["live"]) for e in f.evidence["entries"]],
        )
        for f in found
    ]


def test_a_declared_workloads_drift_opens_changes_and_resolves() -> None:
    life = [
        baseline(0, DECLARED),
        change(1, deployment(), ChangeType.ADDED, "helm"),  # as declared: no finding
        change(2, deployment("shop:1.5")),  # a person edits the image
        change(3, deployment("shop:1.5"), ChangeType.RESYNC),  # nothing new
        change(4, deployment("shop:1.5", level="debug", tier="gold")),  # env and a label
        change(5, deployment("shop:1.4", level="debug", tier="gold")),  # image reverted
        change(6, deployment("shop:1.4")),  # all reverted
    ]
    image = (f"{WEB}/image", "changed", '"shop:1.4"', '"shop:1.5"')
    level = (f"{WEB}/env/[name=LOG_LEVEL]/value", "changed", '"info"', '"debug"')
    tier = ("/metadata/labels/tier", "added", None, '"gold"')
    assert seen(findings(life)) == [
        (2, "open", 2, [image]),
        (4, "open", 2, [tier, level, image]),
        (5, "open", 2, [tier, level]),
        (6, "resolved", 2, []),
    ]
    found = findings(life)
    assert len({f.fingerprint for f in found}) == 1
    assert found[0].severity == "high" and found[2].severity == "medium"  # image vs env
    assert found[0].evidence["origin"] == "git@example:shop.git@main"
    assert found[0].summary == (
        "Deployment shop/web in prod drifted from its declared baseline: 1 field (image)"
    )


@pytest.mark.parametrize("size", [1, 2, 3])
def test_the_same_findings_however_the_input_is_cut(size: int) -> None:
    life = [
        change(0, deployment(), ChangeType.ADDED, "helm"),
        change(1, deployment("shop:1.5")),
        baseline(2, DECLARED),  # declared after the edit: compared with the live version
        baseline(3, DECLARED),  # recorded again unchanged: nothing new
        change(4, deployment("shop:1.5", replicas=5), manager="kube-controller-manager"),
        baseline(5, {**DECLARED, "spec": {**DECLARED["spec"], "replicas": 3}}),
        baseline(6, None),  # the manifest left the set
    ]
    image = (f"{WEB}/image", "changed", '"shop:1.4"', '"shop:1.5"')
    assert findings(life, size)[-1].summary == (
        "Deployment shop/web in prod has no declared baseline any more: the drift no longer counts"
    )
    assert seen(findings(life, size)) == [
        (2, "open", 2, [image]),
        # minute 4: the autoscaler's replicas are not drift; minute 5: declared 3 replicas
        # and an autoscaler holds 5: still not drift (ignore_differences by manager)
        (6, "resolved", 2, []),
    ]


def test_an_approved_baseline_holds_until_approved_again() -> None:
    approved = baseline(1, deployment(), BaselineKind.APPROVED)
    life = [
        change(0, deployment(), ChangeType.ADDED, "helm"),
        approved,
        change(2, deployment(replicas=3), manager="kubectl-scale"),
        baseline(3, deployment(replicas=3), BaselineKind.APPROVED),  # approved again
    ]
    found = findings(life)
    assert seen(found) == [
        (2, "open", 2, [("/spec/replicas", "changed", "2", "3")]),
        (3, "resolved", 2, []),
    ]
    assert found[0].remediation == (
        "Revert the change, or approve it: kubeopera drift approve --cluster prod "
        "--namespace shop --kind Deployment --name web"
    )


def test_a_deleted_object_resolves_its_findings_and_leaves_the_state() -> None:
    processor = DriftDetector()
    pipeline = Pipeline([processor], Reference(Pricer()))
    messages = [
        baseline(0, DECLARED),
        change(1, deployment("shop:2")),
        change(2, deployment("shop:2"), ChangeType.DELETED),
    ]
    output, slots = pipeline.run([Envelope(t, m, 0, i) for i, (t, m) in enumerate(messages)])
    assert [str(f.status) for f in output.findings] == ["open", "resolved"]
    (slot,) = slots
    assert slot.state.objects == {} and slot.state.pending == []


def test_against_compares_only_what_the_declaration_sets_and_names_list_items() -> None:
    live = deployment("shop:1.4")
    live["spec"]["template"]["spec"]["containers"].append({"name": "sidecar", "image": "envoy"})
    declared = {**DECLARED, "metadata": {"name": "web", "labels": {"app": "web", "team": "a"}}}
    got = [(d.path, d.change) for d in against(declared, live, declared=True)]
    assert got == [
        ("/metadata/labels/team", "removed"),
        ("/spec/template/spec/containers/[name=sidecar]", "added"),
    ]
    # An approved baseline is the whole object: the default imagePullPolicy counts.
    edited = deployment()
    edited["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = "Always"
    assert [d.path for d in against(deployment(), edited, declared=False)] == [
        f"{WEB}/imagePullPolicy"
    ]


def test_across_clusters_gives_each_clusters_value_where_they_differ() -> None:
    prod = deployment(replicas=6)
    staging = deployment(replicas=2, level="debug")
    staging["metadata"]["uid"] = "u2"  # per cluster by nature
    assert across({"prod": prod, "staging": staging}) == {
        f"{WEB}/env/[name=LOG_LEVEL]/value": {"prod": '"info"', "staging": '"debug"'},
        "/spec/replicas": {"prod": "6", "staging": "2"},
    }  # status is no difference


# -- the simulated fleet's ground truth ---------------------------------------------------


SIMULATED = FleetSpec(
    clusters=3,
    pods_per_cluster=60,
    start=datetime(2026, 3, 2, tzinfo=UTC),
    duration=timedelta(hours=24),
    resolution=timedelta(minutes=15),
    seed=5,
)


@cache
def simulated() -> tuple[list[Message], list[Finding]]:
    """The fleet's messages, and the drift processor's findings on them."""
    messages = [m for step in simulate(SIMULATED) for m in step]
    return messages, findings(messages, 500)


def test_every_manual_edit_left_standing_is_drift_and_nothing_else_is() -> None:
    """The simulator's Deployments are declared by their usual manager (each apply
    publishes the declared baseline); ``kubectl-edit`` changes replicas or resources by
    hand. Open drift at the end: exactly the workloads edited since their last
    declaration whose replicas or resources now differ from it, read off the objects."""
    messages, found = simulated()
    declared: dict[str, Baseline] = {}
    live: dict[str, ObjectChange] = {}
    edited_since: dict[str, bool] = {}
    for _, m in messages:
        if isinstance(m, Baseline):
            declared[m.object_key()] = m
            edited_since[m.object_key()] = False
        elif isinstance(m, ObjectChange) and m.key() in declared:
            live[m.key()] = m
            edited_since[m.key()] |= m.last_manager == "kubectl-edit"
    expected = set()
    for key, baseline in declared.items():
        want, have = baseline.object["spec"], live[key].object["spec"]  # type: ignore[index]
        resources = [c["resources"] for c in want["template"]["spec"]["containers"]]
        now = [c["resources"] for c in have["template"]["spec"]["containers"]]
        if want.get("replicas") != have.get("replicas") or resources != now:
            assert edited_since[key], f"{key} differs without a manual edit"
            expected.add(key)
    assert expected, "the run has manual edits left standing"
    latest = {f.fingerprint: f for f in found}  # in order: the last state of each
    drifting = {
        f"{f.subject.cluster}/{f.subject.kind}/{f.subject.namespace}/{f.subject.name}": f
        for f in latest.values()
        if f.status == "open"
    }
    assert set(drifting) == expected
    for finding in drifting.values():
        for entry in finding.evidence["entries"]:
            assert entry["path"] == "/spec/replicas" or "/resources" in entry["path"], entry
    resolved = [f for f in latest.values() if f.status == "resolved"]
    assert resolved, "a later rollout by the usual manager declares what was edited"
    # One state per finding and instant (the table keeps one): a rollout and its
    # declaration, simultaneous, are no drift even for a moment.
    assert len({(f.fingerprint, f.last_seen) for f in found}) == len(found)
    assert all(f.first_seen <= f.last_seen for f in found)


def test_the_fleets_environment_difference_is_the_only_one_across_its_clusters() -> None:
    """The monitoring stack is deployed from one set of manifests to every cluster, but
    staging's Grafana logs at debug: across prod and staging that is the one difference."""
    messages, _ = simulated()
    last: dict[tuple[str, str, str], dict[str, dict[str, Any]]] = {}
    for _, m in messages:
        if not isinstance(m, ObjectChange) or m.namespace != "monitoring":
            continue
        if m.kind in ("Deployment", "StatefulSet", "DaemonSet"):
            last.setdefault((m.kind, m.namespace, m.name), {})[m.cluster] = comparable(m.object)
    prod, staging = "prod-us-east-1", "staging-eu-west-1"
    differences = {
        key: found
        for key, versions in last.items()
        if (found := across({prod: versions[prod], staging: versions[staging]}))
    }
    assert differences == {
        ("Deployment", "monitoring", "grafana"): {
            "/spec/template/spec/containers/[name=grafana]/env/[name=GF_LOG_LEVEL]/value": {
                prod: '"info"',
                staging: '"debug"',
            }
        }
    }


def test_an_embedded_run_resolves_the_drift_the_store_holds_open() -> None:
    """An embedded run starts without state: the open findings it is given (from the
    store) are known drift, resolved when the object now matches, kept open (since its
    first time seen) when it does not."""
    earlier = findings([baseline(0, DECLARED), change(1, deployment("shop:1.5"))])
    (known,) = earlier
    assert known.status == "open"
    for image, status in (("shop:1.4", "resolved"), ("shop:1.5", "open")):
        reference = Reference(Pricer())
        reference.open_findings = {known.fingerprint: known}
        pipeline = Pipeline([DriftDetector()], reference)
        messages = [baseline(0, DECLARED), change(30, deployment(image))]
        output, _ = pipeline.run([Envelope(t, m, 0, i) for i, (t, m) in enumerate(messages)])
        (found,) = output.findings
        assert (found.status, found.first_seen) == (status, known.first_seen)
    # The same history again (a run over the same input): nothing before the finding's
    # last state is taken for it, and what the replay finds is what was found.
    reference = Reference(Pricer())
    reference.open_findings = {known.fingerprint: known}
    pipeline = Pipeline([DriftDetector()], reference)
    messages = [baseline(0, DECLARED), change(0, deployment()), change(1, deployment("shop:1.5"))]
    output, _ = pipeline.run([Envelope(t, m, 0, i) for i, (t, m) in enumerate(messages)])
    assert [(f.status, f.first_seen, f.last_seen) for f in output.findings] == [
        ("open", known.first_seen, known.last_seen)
    ]


def test_an_object_change_without_uid_is_a_dead_letter_and_the_rest_goes_on(
    store: Store,
) -> None:
    """The timeline and drift key their state by object: a change that names none is
    refused with the reason, and the changes around it are compared as usual."""
    edited = change(1, deployment("shop:1.5"))[1]
    no_uid = json.loads(edited.model_dump_json())
    del no_uid["uid"]
    messages = [baseline(0, DECLARED), change(0, deployment(), ChangeType.ADDED, "helm")]
    raws = [
        RawMessage(topic.value, m.model_dump_json().encode(), "k", 0, offset)
        for offset, (topic, m) in enumerate(messages)
    ]
    raws.append(RawMessage(Topic.OBJECTS.value, json.dumps(no_uid).encode(), "k", 0, 2))
    raws.append(RawMessage(Topic.OBJECTS.value, edited.model_dump_json().encode(), "k", 0, 3))
    engine = EmbeddedEngine(store, [Archive(), ChangeTimeline(), DriftDetector()])
    engine.process_raw(raws)
    engine.finish()
    (reason,) = store.query("SELECT error FROM deadletter")["error"]
    assert "uid" in reason and "Field required" in reason
    assert store.query("SELECT path FROM object_changes WHERE resource_version = '1'")[
        "path"
    ].to_list() == [f"{WEB}/image"]
    assert store.query("SELECT status FROM v_findings")["status"].to_list() == ["open"]


def in_cluster(cluster: str, minute: int, obj: dict[str, Any], kind: ChangeType) -> Message:
    topic, message = change(minute, obj, kind)
    assert isinstance(message, ObjectChange)
    return topic, message.model_copy(update={"cluster": cluster, "uid": f"{cluster}-u1"})


@pytest.mark.parametrize("size", [None, 1, 2])
def test_across_clusters_the_first_ones_objects_are_the_others_baselines(
    size: int | None,
) -> None:
    """prod and staging run the same Deployment; staging logs at debug with 3 replicas
    more: exactly those two fields, with prod's values expected. When prod changes to
    staging's replicas and staging to prod's level, the drift resolves."""
    settings = DriftSettings.model_validate({"across": [{"clusters": ["prod", "staging"]}]})
    staging = deployment(replicas=5, level="debug")
    staging["metadata"]["uid"] = "u2"  # per cluster by nature
    life = [
        in_cluster("prod", 0, deployment(), ChangeType.ADDED),
        in_cluster("staging", 1, staging, ChangeType.ADDED),
        in_cluster("prod", 2, deployment(replicas=5), ChangeType.MODIFIED),
        in_cluster("staging", 3, deployment(replicas=5), ChangeType.MODIFIED),
    ]
    found = findings(life, size, settings)
    assert [(f.subject.cluster, f.evidence["baseline"]) for f in found] == [("staging", "peer")] * 3
    assert seen(found) == [
        (1, "open", 1, [("/spec/replicas", "changed", "2", "5"),
                        (f"{WEB}/env/[name=LOG_LEVEL]/value", "changed", '"info"', '"debug"')]),
        (2, "open", 1, [(f"{WEB}/env/[name=LOG_LEVEL]/value", "changed", '"info"', '"debug"')]),
        (3, "resolved", 1, []),
    ]  # fmt: skip
    assert found[0].summary == (
        "Deployment shop/web in staging drifted from the same object in prod: 2 fields "
        "(env, replicas)"
    )


def test_streaming_across_the_fleets_clusters_finds_the_environment_difference() -> None:
    """The same ground truth through the processor: with prod leading staging, the
    monitoring stack's only open drift across them is Grafana's log level."""
    messages, _ = simulated()
    prod, staging = "prod-us-east-1", "staging-eu-west-1"
    settings = DriftSettings.model_validate({"across": [{"clusters": [prod, staging]}]})
    latest = {f.fingerprint: f for f in findings(messages, 500, settings)}
    peers = [
        (f.subject.kind, f.subject.name,
         [(e["path"], e["expected"], e["live"]) for e in f.evidence["entries"]])
        for f in latest.values()
        if f.evidence["baseline"] == "peer" and f.status == "open"
        and f.subject.namespace == "monitoring"
    ]  # fmt: skip
    assert peers == [
        ("Deployment", "grafana", [
            ("/spec/template/spec/containers/[name=grafana]/env/[name=GF_LOG_LEVEL]/value",
             '"info"', '"debug"'),
        ])
    ]  # fmt: skip
