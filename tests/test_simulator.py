"""The seeded fleet simulator: valid, deterministic, consistent and as eventful as promised.

Expected values are worked out here from the catalogue, the Kubernetes conventions and the
scenario's promises (a spike on two c6i.8xlarge nodes around 40% of the run, ...), not read
back from the simulator.
"""

import math
import re
import statistics
import tracemalloc
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from kubeopera.collectors.simulator import FleetSpec, Message, injections, simulate
from kubeopera.models import (
    TOPIC_MODELS,
    Baseline,
    CapacityType,
    ChangeType,
    KubeEvent,
    MetricBatch,
    NodePrice,
    ObjectChange,
    Topic,
    parse_quantity,
)
from kubeopera.models.catalogue import Catalogue

MONDAY = datetime(2024, 3, 4, 8, 0, tzinfo=UTC)  # a weekday morning: usage above its daily mean
FULL_CATALOGUE = (
    Path(__file__).parents[1] / "../shared/data/pricing/karpenter_instance_types_us-east-1.csv"
)
WORKLOAD_KINDS = {"Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job"}

SMALL = FleetSpec(
    clusters=3,
    pods_per_cluster=80,
    start=MONDAY,
    duration=timedelta(hours=6),
    resolution=timedelta(minutes=15),
    seed=7,
)


@pytest.fixture(scope="module")
def run() -> list[list[Message]]:
    return list(simulate(SMALL))


@pytest.fixture(scope="module")
def default_run() -> list[list[Message]]:
    return list(simulate(FleetSpec(start=MONDAY, duration=timedelta(hours=2))))


def messages(steps: list[list[Message]]) -> Iterator[tuple[int, Topic, Any]]:
    for index, step in enumerate(steps):
        for topic, message in step:
            yield index, topic, message


def changes(
    steps: list[list[Message]], kind: str | None = None
) -> Iterator[tuple[int, ObjectChange]]:
    for index, _, message in messages(steps):
        if isinstance(message, ObjectChange) and kind in (None, message.kind):
            yield index, message


def events(steps: list[list[Message]], reason: str) -> list[KubeEvent]:
    return [m for _, _, m in messages(steps) if isinstance(m, KubeEvent) and m.reason == reason]


def batches(steps: list[list[Message]]) -> Iterator[tuple[int, MetricBatch]]:
    for index, _, message in messages(steps):
        if isinstance(message, MetricBatch):
            yield index, message


# -- contracts ---------------------------------------------------------------------------


def test_every_message_is_its_topics_model_and_round_trips_through_json(
    run: list[list[Message]],
) -> None:
    seen = set()
    for _, topic, message in messages(run):
        model = TOPIC_MODELS[topic]
        assert type(message) is model
        assert model.model_validate_json(message.model_dump_json()) == message
        seen.add(topic)
    assert seen == {Topic.OBJECTS, Topic.EVENTS, Topic.METRICS, Topic.PRICES, Topic.BASELINES}


def test_messages_were_validated_on_construction(run: list[list[Message]]) -> None:
    """model_construct would skip validation; a re-validation must change nothing."""
    for _, _, message in messages(run[:3]):
        assert type(message).model_validate(message.model_dump()) == message


# -- determinism -------------------------------------------------------------------------


def dump(spec: FleetSpec) -> list[tuple[str, str]]:
    return [
        (str(topic), message.model_dump_json())
        for step in simulate(spec)
        for topic, message in step
    ]


def test_same_seed_gives_a_byte_identical_sequence() -> None:
    spec = FleetSpec(
        clusters=2,
        pods_per_cluster=40,
        start=MONDAY,
        duration=timedelta(hours=6),
        resolution=timedelta(minutes=30),
        seed=11,
    )
    assert dump(spec) == dump(replace(spec))


def test_another_seed_gives_other_inventory_and_usage() -> None:
    spec = FleetSpec(
        clusters=1,
        pods_per_cluster=40,
        start=MONDAY,
        duration=timedelta(hours=1),
        resolution=timedelta(minutes=15),
        seed=1,
    )
    one = list(simulate(spec))
    two = list(simulate(replace(spec, seed=2)))
    nodes_one = {c.name for _, c in changes(one, "Node")}
    nodes_two = {c.name for _, c in changes(two, "Node")}
    assert nodes_one != nodes_two
    assert {c.uid for _, c in changes(one, "Pod")}.isdisjoint(c.uid for _, c in changes(two, "Pod"))
    usage_one = [b.node_usage.cpu_cores for _, b in batches(one)]
    usage_two = [b.node_usage.cpu_cores for _, b in batches(two)]
    assert usage_one != usage_two


# -- time and order ----------------------------------------------------------------------


def event_time(message: Any) -> datetime:
    if isinstance(message, MetricBatch):
        return message.window_start
    if isinstance(message, KubeEvent):
        return message.last_time
    if isinstance(message, Baseline):
        return message.recorded_at
    return message.observed_at  # type: ignore[no-any-return]


def rank(message: Any) -> int:
    """The order the brief gives within a step."""
    if isinstance(message, NodePrice | Baseline) or (
        isinstance(message, ObjectChange) and message.kind == "Node"
    ):
        return 0
    if isinstance(message, ObjectChange):
        return {"Namespace": 1, "Pod": 3}.get(message.kind, 2)
    return 4 if isinstance(message, KubeEvent) else 5


def test_steps_come_in_order_with_the_fixed_order_inside_a_step(run: list[list[Message]]) -> None:
    assert len(run) == 24  # 6 hours of 15 minutes
    for index, step in enumerate(run):
        t = MONDAY + index * timedelta(minutes=15)
        assert {event_time(m) for _, m in step} == {t}
        ranks = [rank(m) for _, m in step]
        assert ranks == sorted(ranks)
        kinds = [m.kind for _, m in step if isinstance(m, ObjectChange) and rank(m) == 2]
        assert set(kinds) <= WORKLOAD_KINDS


def test_metric_windows_are_contiguous_aligned_and_inside_the_run(run: list[list[Message]]) -> None:
    end = MONDAY + timedelta(hours=6)
    last_end: dict[tuple[str, str], datetime] = {}
    for _, batch in batches(run):
        key = (batch.cluster, batch.node)
        assert batch.window_end - batch.window_start == timedelta(minutes=15)
        assert (batch.window_start - MONDAY) % timedelta(minutes=15) == timedelta(0)
        assert batch.window_start >= MONDAY
        assert batch.window_end <= end
        if key in last_end:
            assert batch.window_start == last_end[key], f"gap in the scrapes of {key}"
        last_end[key] = batch.window_end


def test_one_batch_per_live_node_per_step_holding_exactly_its_running_pods(
    run: list[list[Message]],
) -> None:
    """Replaying the object stream gives, per step, the nodes and pods the metrics describe."""
    nodes: set[tuple[str, str]] = set()
    pods: dict[str, ObjectChange] = {}
    for step in run:
        scraped = {}
        for _, m in step:
            if isinstance(m, ObjectChange) and m.kind == "Node":
                (nodes.discard if m.change is ChangeType.DELETED else nodes.add)(
                    (m.cluster, m.name)
                )
            elif isinstance(m, ObjectChange) and m.kind == "Pod":
                if m.change is ChangeType.DELETED:
                    pods.pop(m.uid)
                else:
                    pods[m.uid] = m
            elif isinstance(m, MetricBatch):
                scraped[(m.cluster, m.node)] = set(m.containers.pod_uid)
        assert set(scraped) == nodes
        for key, uids in scraped.items():
            running = {
                uid
                for uid, p in pods.items()
                if p.pod and p.pod.phase == "Running" and (p.cluster, p.pod.node) == key
            }
            assert uids == running


# -- usage -------------------------------------------------------------------------------


def test_containers_never_use_more_than_their_node_has(run: list[list[Message]]) -> None:
    for _, b in batches(run):
        cpu, memory = sum(b.containers.cpu_cores), sum(b.containers.memory_working_set_bytes)
        assert cpu <= b.node_capacity.cpu_cores
        assert memory <= b.node_capacity.memory_bytes
        assert cpu - 1e-9 <= b.node_usage.cpu_cores <= b.node_capacity.cpu_cores
        assert memory <= b.node_usage.memory_bytes <= b.node_capacity.memory_bytes


def test_rss_is_most_of_the_working_set_and_restarts_only_grow(run: list[list[Message]]) -> None:
    restarts: dict[tuple[str, str], int] = {}
    for _, b in batches(run):
        c = b.containers
        for uid, name, ws, rss, count in zip(
            c.pod_uid,
            c.container,
            c.memory_working_set_bytes,
            c.memory_rss_bytes,
            c.restarts,
            strict=True,
        ):
            assert 0.8 * ws - 1 <= rss <= 0.95 * ws
            assert count >= restarts.get((uid, name), 0)
            restarts[(uid, name)] = count


def container_specs(steps: list[list[Message]]) -> dict[tuple[str, str], Any]:
    return {(c.uid, r.name): r for _, c in changes(steps, "Pod") if c.pod for r in c.pod.containers}


def test_throttling_is_reported_exactly_for_containers_with_a_cpu_limit(
    run: list[list[Message]],
) -> None:
    specs = container_specs(run)
    for _, b in batches(run):
        c = b.containers
        for uid, name, ratio in zip(c.pod_uid, c.container, c.cpu_throttled_ratio, strict=True):
            has_limit = specs[(uid, name)].cpu_limit_cores is not None
            assert (ratio is not None) == has_limit
            assert ratio is None or 0 <= ratio <= 1


def test_some_containers_are_over_and_some_under_provisioned(run: list[list[Message]]) -> None:
    specs = container_specs(run)
    used: dict[tuple[str, str], list[float]] = defaultdict(list)
    for _, b in batches(run):
        for uid, name, cpu in zip(
            b.containers.pod_uid, b.containers.container, b.containers.cpu_cores, strict=True
        ):
            used[(uid, name)].append(cpu)
    ratios = [
        statistics.fmean(v) / specs[k].cpu_request_cores
        for k, v in used.items()
        if specs[k].cpu_request_cores > 0
    ]
    assert sum(r < 0.3 for r in ratios) >= 5  # requests far above use: rightsizing saves money
    assert sum(r > 1.1 for r in ratios) >= 3  # use above requests: a noisy-neighbour risk
    assert sum(0.3 <= r <= 1.0 for r in ratios) > len(ratios) / 3


def test_usage_peaks_midday_and_drops_on_weekends() -> None:
    spec = FleetSpec(
        clusters=1,
        pods_per_cluster=60,
        start=datetime(2024, 3, 4, tzinfo=UTC),
        duration=timedelta(days=7),
        resolution=timedelta(hours=1),
        seed=3,
    )
    total: dict[datetime, float] = defaultdict(float)
    for _, b in batches(list(simulate(spec))):
        total[b.window_start] += sum(b.containers.cpu_cores)
    weekdays = [v for t, v in total.items() if t.weekday() < 5]
    weekend = [v for t, v in total.items() if t.weekday() >= 5]
    assert statistics.fmean(weekend) < 0.8 * statistics.fmean(weekdays)
    midday = [v for t, v in total.items() if t.weekday() < 5 and 11 <= t.hour <= 15]
    night = [v for t, v in total.items() if t.weekday() < 5 and (t.hour <= 2 or t.hour >= 23)]
    assert statistics.fmean(midday) > 1.3 * statistics.fmean(night)


# -- the fleet ---------------------------------------------------------------------------


def inventory(steps: list[list[Message]], kind: str) -> list[ObjectChange]:
    return [m for _, _, m in messages(steps[:1]) if isinstance(m, ObjectChange) and m.kind == kind]


def test_default_fleet_has_three_named_clusters_and_about_500_pods(
    default_run: list[list[Message]],
) -> None:
    pods = inventory(default_run, "Pod")
    assert {p.cluster for p in pods} == {"prod-us-east-1", "staging-eu-west-1", "dev-us-west-2"}
    assert 450 <= len(pods) <= 600
    nodes = inventory(default_run, "Node")
    for node in nodes:
        region = node.cluster.split("-", 1)[1]
        assert node.labels["topology.kubernetes.io/region"] == region
        assert node.labels["topology.kubernetes.io/zone"] in {f"{region}{z}" for z in "abc"}
    spot = [n for n in nodes if n.labels["karpenter.sh/capacity-type"] == "spot"]
    assert 0.15 * len(nodes) <= len(spot) <= 0.45 * len(nodes)


def test_more_clusters_get_prod_names_with_their_region() -> None:
    spec = FleetSpec(
        clusters=5,
        pods_per_cluster=30,
        start=MONDAY,
        duration=timedelta(minutes=15),
        resolution=timedelta(minutes=15),
    )
    names = sorted({c.cluster for _, c in changes(list(simulate(spec)), "Node")})
    extra = [n for n in names if n not in {"prod-us-east-1", "staging-eu-west-1", "dev-us-west-2"}]
    assert len(extra) == 2
    for name in extra:
        assert re.fullmatch(r"prod-\d+-[a-z]{2}-[a-z]+-\d", name)


def test_each_cluster_has_a_nearly_idle_node(default_run: list[list[Message]]) -> None:
    use: dict[tuple[str, str], list[float]] = defaultdict(list)
    for _, b in batches(default_run):
        use[(b.cluster, b.node)].append(b.node_usage.cpu_cores / b.node_capacity.cpu_cores)
    for cluster in ("prod-us-east-1", "staging-eu-west-1", "dev-us-west-2"):
        lowest = min(statistics.fmean(v) for (c, _), v in use.items() if c == cluster)
        assert lowest < 0.1


def test_about_one_container_in_ten_has_no_requests(default_run: list[list[Message]]) -> None:
    containers = [r for p in inventory(default_run, "Pod") if p.pod for r in p.pod.containers]
    bare = [r for r in containers if r.cpu_request_cores == 0 and r.memory_request_bytes == 0]
    assert 0.05 <= len(bare) / len(containers) <= 0.15
    pods = inventory(default_run, "Pod")
    assert {len(p.pod.containers) for p in pods if p.pod} == {1, 2, 3}


def test_all_workload_kinds_appear_with_their_owner_chains(run: list[list[Message]]) -> None:
    kinds = {c.kind for _, c in changes(run)}
    assert WORKLOAD_KINDS | {"Node", "Namespace", "Pod"} <= kinds
    for _, pod in changes(run, "Pod"):
        chain = [o.kind for o in pod.owner_chain]
        assert chain in (["ReplicaSet", "Deployment"], ["StatefulSet"], ["DaemonSet"], ["Job"])
        owner = pod.object["metadata"]["ownerReferences"][0]
        assert (owner["kind"], owner["name"], owner["uid"]) == (
            pod.owner_chain[0].kind,
            pod.owner_chain[0].name,
            pod.owner_chain[0].uid,
        )
        if chain == ["StatefulSet"]:
            assert re.fullmatch(rf"{re.escape(pod.owner_chain[0].name)}-\d+", pod.name)
        if chain[0] == "ReplicaSet":
            assert pod.name.startswith(pod.owner_chain[0].name + "-")
            assert pod.owner_chain[0].name.startswith(pod.owner_chain[1].name + "-")


def test_every_daemonset_runs_one_pod_on_every_node(run: list[list[Message]]) -> None:
    nodes = {(n.cluster, n.name) for n in inventory(run, "Node")}
    daemonsets = {(d.cluster, d.name) for d in inventory(run, "DaemonSet")}
    on_nodes: dict[tuple[str, str], list[tuple[str, str | None]]] = defaultdict(list)
    for pod in inventory(run, "Pod"):
        if pod.controller and pod.controller.kind == "DaemonSet" and pod.pod:
            assert pod.namespace in {"kube-system", "monitoring"}
            on_nodes[(pod.cluster, pod.controller.name)].append((pod.cluster, pod.pod.node))
    assert set(on_nodes) == daemonsets
    for (cluster, _), placed in on_nodes.items():
        assert sorted(placed) == sorted(n for n in nodes if n[0] == cluster)


def test_pod_manifests_match_their_parsed_summary(run: list[list[Message]]) -> None:
    for _, pod in changes(run, "Pod"):
        assert pod.pod is not None
        assert pod.last_manager in {"kube-controller-manager", "kubelet"}
        assert {"app", "app.kubernetes.io/name"} <= set(pod.labels)
        spec, status = pod.object["spec"], pod.object["status"]
        assert status["phase"] == pod.pod.phase
        assert spec.get("nodeName") == pod.pod.node
        for manifest, parsed in zip(spec["containers"], pod.pod.containers, strict=True):
            assert manifest["name"] == parsed.name
            resources = manifest["resources"]
            requests, limits = resources.get("requests", {}), resources.get("limits", {})
            assert parse_quantity(requests.get("cpu", "0")) == parsed.cpu_request_cores
            assert parse_quantity(requests.get("memory", "0")) == parsed.memory_request_bytes
            assert (
                parse_quantity(limits["cpu"]) if "cpu" in limits else None
            ) == parsed.cpu_limit_cores
            for text in [*requests.values(), *limits.values()]:
                assert re.fullmatch(r"\d+(m|Mi|Gi)?", text)


def test_some_pods_carry_team_labels_and_owner_annotations(run: list[list[Message]]) -> None:
    pods = inventory(run, "Pod")
    assert any("team" in p.labels for p in pods)
    assert any("team" not in p.labels for p in pods)
    owners = [p.annotations["owner"] for p in pods if "owner" in p.annotations]
    assert owners and all(re.fullmatch(r"[a-z.]+@[a-z.]+", o) for o in owners)
    for ns in inventory(run, "Namespace"):
        assert {"team", "env", "app"} <= set(ns.labels)
        if ns.name in {"kube-system", "monitoring"}:
            assert ns.labels["team"] == "platform"


# -- nodes and prices --------------------------------------------------------------------


def check_nodes_and_prices(steps: list[list[Message]], catalogue: Catalogue) -> None:
    prices = {(p.cluster, p.node): p for _, _, p in messages(steps) if isinstance(p, NodePrice)}
    added = [c for _, c in changes(steps, "Node") if c.change is ChangeType.ADDED]
    assert {(n.cluster, n.name) for n in added} == set(prices)
    for node in added:
        price = prices[(node.cluster, node.name)]
        itype = catalogue[node.labels["node.kubernetes.io/instance-type"]]
        assert price.instance_type == itype.name
        assert node.labels["kubernetes.io/arch"] == itype.arch
        capacity = node.object["status"]["capacity"]
        assert parse_quantity(capacity["cpu"]) == itype.vcpu
        assert parse_quantity(capacity["memory"]) == itype.memory_bytes
        assert node.labels["karpenter.sh/capacity-type"] == price.capacity_type.value
        assert itype.usd_per_hour is not None
        if price.capacity_type is CapacityType.SPOT:
            assert price.usd_per_hour is not None
            assert (
                0.30 * itype.usd_per_hour - 1e-6
                <= price.usd_per_hour
                <= 0.45 * itype.usd_per_hour + 1e-6
            )
            assert price.usd_per_hour == round(price.usd_per_hour, 6)
        else:
            assert price.usd_per_hour is None  # the pipeline prices on-demand from the catalogue
    for _, b in batches(steps):
        itype = catalogue[prices[(b.cluster, b.node)].instance_type]
        assert (b.node_capacity.cpu_cores, b.node_capacity.memory_bytes) == (
            itype.vcpu,
            itype.memory_bytes,
        )


def test_nodes_use_catalogue_types_and_spot_is_cheaper(run: list[list[Message]]) -> None:
    check_nodes_and_prices(run, Catalogue.builtin())
    types = {n.labels["node.kubernetes.io/instance-type"] for n in inventory(run, "Node")}
    assert {"m6i.2xlarge", "c6i.4xlarge", "r6i.2xlarge", "m6g.xlarge"} <= types


def test_the_full_karpenter_catalogue_works_too() -> None:
    path = FULL_CATALOGUE.resolve()
    if not path.exists():
        pytest.skip(f"full instance catalogue not found at {path}")
    catalogue = Catalogue.from_csv(path)
    spec = FleetSpec(
        clusters=2,
        pods_per_cluster=50,
        start=MONDAY,
        duration=timedelta(hours=2),
        resolution=timedelta(minutes=15),
        catalogue=catalogue,
    )
    check_nodes_and_prices(list(simulate(spec)), catalogue)


# -- what happens over the run -----------------------------------------------------------


def test_a_rollout_replaces_pods_under_a_new_replicaset(run: list[list[Message]]) -> None:
    last: dict[str, ObjectChange] = {}
    rollouts = 0
    for index, change in changes(run, "Deployment"):
        before = last.get(change.uid)
        last[change.uid] = change
        if before is None or change.change is not ChangeType.MODIFIED:
            continue
        image = change.object["spec"]["template"]["spec"]["containers"][0]["image"]
        if image == before.object["spec"]["template"]["spec"]["containers"][0]["image"]:
            continue
        assert change.generation == (before.generation or 0) + 1
        step = [m for _, m in run[index] if isinstance(m, ObjectChange)]
        mine = [
            m
            for m in step
            if m.kind == "ReplicaSet" and m.controller and m.controller.uid == change.uid
        ]
        new_rs = [m for m in mine if m.change is ChangeType.ADDED]
        if not new_rs:  # a rollback: the earlier ReplicaSet takes over again
            assert any(
                rs.object["spec"]["template"]["spec"]["containers"][0]["image"] == image
                and rs.change is ChangeType.MODIFIED
                for rs in mine
            )
            continue
        assert len(new_rs) == 1
        deleted = [
            m
            for m in step
            if m.kind == "Pod"
            and m.change is ChangeType.DELETED
            and m.controller
            and m.controller.uid == change.uid
        ]
        added = [
            m
            for m in step
            if m.kind == "Pod"
            and m.change is ChangeType.ADDED
            and m.owner_chain[0].uid == new_rs[0].uid
        ]
        if deleted:  # a full rollout, not the stalled one
            assert len(added) == len(deleted)
            assert {p.uid for p in added}.isdisjoint(p.uid for p in deleted)
            assert all(p.object["spec"]["containers"][0]["image"] == image for p in added)
            rollouts += 1
    assert rollouts >= 3  # at least one per cluster


def test_someone_edits_a_deployment_by_hand(run: list[list[Message]]) -> None:
    edits = [c for _, c in changes(run, "Deployment") if c.last_manager == "kubectl-edit"]
    assert len(edits) >= 3
    assert all(c.change is ChangeType.MODIFIED for c in edits)
    managers = {c.last_manager for _, c in changes(run) if c.kind in WORKLOAD_KINDS}
    assert {"argocd-application-controller", "kube-controller-manager"} <= managers


def test_oom_kills_restart_the_container_and_mark_the_pod(run: list[list[Message]]) -> None:
    kills = events(run, "OOMKilling")
    assert kills
    for kill in kills:
        assert kill.type == "Warning"
        assert kill.source.component == "kernel-monitor"
        assert kill.involved.kind == "Node" and kill.source.host == kill.involved.name
        assert kill.message.startswith("Memory cgroup out of memory: Killed process")
    for index, kill in [(i, m) for i, _, m in messages(run) if m in kills]:
        stamp = kill.last_time.strftime("%Y-%m-%dT%H:%M:%SZ")
        marked = [
            c
            for _, c in changes(run[index : index + 1], "Pod")
            if c.change is ChangeType.MODIFIED
            and c.pod
            and c.pod.node == kill.involved.name
            and any(
                s["lastState"].get("terminated")
                == {"reason": "OOMKilled", "exitCode": 137, "finishedAt": stamp}
                and s["restartCount"] >= 1
                for s in c.object["status"]["containerStatuses"]
            )
        ]
        assert len(marked) == 1


def test_a_crash_looping_pod_backs_off_with_a_growing_count(run: list[list[Message]]) -> None:
    (storm,) = [i for i in injections(SMALL) if i.kind == "restart_storm"]
    stormy = [
        b
        for b in events(run, "BackOff")
        if b.cluster == storm.cluster and b.name.startswith(f"{storm.workload}-")
    ]
    assert stormy  # the storm's pods back off too, each under its own Event
    backoffs = [b for b in events(run, "BackOff") if b not in stormy]
    assert len(backoffs) >= 2
    assert len({b.name for b in backoffs}) == 1
    assert [b.count for b in backoffs] == list(range(1, len(backoffs) + 1))
    pod = backoffs[0].involved
    expected = (
        rf"Back-off restarting failed container \S+ in pod {pod.name}_{pod.namespace}\({pod.uid}\)"
    )
    assert all(re.fullmatch(expected, b.message) for b in backoffs)
    assert all(b.first_time == backoffs[0].last_time for b in backoffs)
    restarts = [
        max(
            b.containers.restarts[i] for i, uid in enumerate(b.containers.pod_uid) if uid == pod.uid
        )
        for _, b in batches(run)
        if pod.uid in b.containers.pod_uid
    ]
    assert restarts == sorted(restarts) and restarts[-1] > restarts[0]


def test_an_unschedulable_pod_stays_pending_with_failed_scheduling(
    run: list[list[Message]],
) -> None:
    failures = events(run, "FailedScheduling")
    nodes: dict[str, int] = defaultdict(int)
    for node in inventory(run, "Node"):
        nodes[node.cluster] += 1
    first = {f.cluster: f for f in reversed(failures) if f.count == 1}
    assert set(first) == set(nodes)  # one in every cluster, from the start
    for cluster, failure in first.items():
        n = nodes[cluster]
        assert failure.message == f"0/{n} nodes are available: {n} Insufficient cpu."
    pending = {c.uid: c for _, c in changes(run, "Pod") if c.pod and c.pod.phase == "Pending"}
    for failure in failures:
        pod = pending[failure.involved.uid]
        assert pod.pod is not None and pod.pod.node is None
        assert failure.source.component == "default-scheduler"
        assert failure.type == "Warning"


def test_jobs_run_succeed_and_are_deleted(run: list[list[Message]]) -> None:
    phases: dict[str, list[str]] = defaultdict(list)
    for _, pod in changes(run, "Pod"):
        if pod.controller and pod.controller.kind == "Job":
            phases[pod.uid].append("DELETED" if pod.change is ChangeType.DELETED else pod.pod.phase)  # type: ignore[union-attr]
    finished = [p for p in phases.values() if p[-1] == "DELETED"]
    assert finished
    assert all(p[-2] == "Succeeded" for p in finished)


def test_one_cost_spike_on_two_big_nodes_in_the_first_cluster(run: list[list[Message]]) -> None:
    big = [
        (i, c)
        for i, c in changes(run, "Node")
        if c.labels["node.kubernetes.io/instance-type"] == "c6i.8xlarge"
    ]
    assert {c.cluster for _, c in big} == {"prod-us-east-1"}
    added = {c.name: i for i, c in big if c.change is ChangeType.ADDED}
    deleted = {c.name: i for i, c in big if c.change is ChangeType.DELETED}
    assert len(added) == 2 and set(deleted) == set(added)
    start, end = set(added.values()), set(deleted.values())
    assert len(start) == len(end) == 1
    start_step, end_step = start.pop(), end.pop()
    assert 0 < start_step < end_step < len(run)
    hours = (end_step - start_step) * 0.25
    assert 2.5 <= hours <= 4  # about three hours
    middle = (start_step + end_step) / 2 / len(run)
    assert 0.3 <= middle <= 0.55  # around 40% into the run
    prices = [p for _, _, p in messages(run) if isinstance(p, NodePrice) and p.node in added]
    assert [p.capacity_type for p in prices] == [CapacityType.ON_DEMAND] * 2
    trainers = [
        c
        for _, c in changes(run, "Pod")
        if c.namespace == "ml-training" and c.pod and c.pod.node in added
    ]
    assert trainers
    cpu = [
        sum(b.containers.cpu_cores) / b.node_capacity.cpu_cores
        for i, b in batches(run)
        if b.node in added and start_step < i < end_step - 3
    ]
    assert statistics.fmean(cpu) > 0.6  # the burst keeps the big nodes busy


# -- bad specs and bounded memory --------------------------------------------------------


@pytest.mark.parametrize(
    ("changes_", "message"),
    [
        ({"clusters": 0}, "clusters"),
        ({"pods_per_cluster": -5}, "pods_per_cluster"),
        ({"start": datetime(2024, 3, 4, 8)}, "timezone"),  # naive
        ({"resolution": timedelta(minutes=7)}, "divide one hour"),
        ({"resolution": timedelta(0)}, "divide one hour"),
        ({"start": MONDAY + timedelta(minutes=5)}, "not aligned"),
        ({"duration": timedelta(0)}, "duration must be positive"),
        ({"duration": timedelta(minutes=20)}, "whole number of"),
        ({"seed": -1}, "seed"),
        ({"spot_fraction": 1.5}, "spot_fraction"),
        ({"spot_fraction": math.nan}, "spot_fraction"),
        ({"catalogue": "prices.csv"}, "catalogue"),
    ],
)
def test_bad_specs_are_refused_with_a_one_line_reason(
    changes_: dict[str, Any], message: str
) -> None:
    kwargs: dict[str, Any] = {"start": MONDAY, "resolution": timedelta(minutes=15)} | changes_
    with pytest.raises(ValueError, match=message) as caught:
        FleetSpec(**kwargs)
    assert "\n" not in str(caught.value)


def test_a_catalogue_without_the_needed_types_is_refused(tmp_path: Path) -> None:
    sheet = tmp_path / "tiny.csv"
    sheet.write_text(
        "instance_type,arch,vcpu,memory_mib,ondemand_usd_per_hour_us_east_1\n"
        "m6i.2xlarge,amd64,8,32768,0.384\n"
    )
    with pytest.raises(ValueError, match=r"c6i\.4xlarge"):
        FleetSpec(start=MONDAY, catalogue=Catalogue.from_csv(sheet))


def test_memory_does_not_grow_with_the_duration() -> None:
    spec = FleetSpec(
        clusters=1,
        pods_per_cluster=40,
        start=MONDAY,
        duration=timedelta(days=2),
        resolution=timedelta(minutes=5),
        seed=5,
    )
    tracemalloc.start()
    try:
        sizes = {}
        for index, _ in enumerate(simulate(spec)):
            if index in (60, 560):  # two quiet points, before and after the spike
                sizes[index] = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert sizes[560] < 1.25 * sizes[60]
