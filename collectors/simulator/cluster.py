"""One simulated cluster: its identity, inventory and scheduler, and the collector's view.

`Cluster` holds the live objects of one cluster and the operations every part of the run
needs: open a node, create, bind, park and delete pods (first-fit by requests, the way the
scheduler's summary explains it), and publish each change as its collector would, with a
growing resourceVersion. What the cluster starts with is built by `inventory`; what
happens to it afterwards is played by `changes`.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from kubeopera.collectors.simulator.fleet import POOL, POOLS, cluster_identity, pick_type
from kubeopera.collectors.simulator.kube import Rand, si
from kubeopera.collectors.simulator.manifests import (
    declared_manifest,
    namespace_manifest,
    node_manifest,
    pod_manifest,
    replica_set_manifest,
    workload_manifest,
)
from kubeopera.collectors.simulator.spec import FleetSpec
from kubeopera.collectors.simulator.state import (
    Node,
    Pod,
    ReplicaSet,
    Series,
    Workload,
    never,
)
from kubeopera.collectors.simulator.usage import Usage
from kubeopera.models import Baseline, BaselineKind, Message
from kubeopera.models.catalogue import Catalogue
from kubeopera.models.events import EventSource, KubeEvent
from kubeopera.models.objects import ChangeType, ObjectChange, ObjectRef, OwnerRef, PodSummary
from kubeopera.models.prices import NodePrice
from kubeopera.models.topics import Topic

DECLARED_KINDS = ("Deployment", "StatefulSet", "DaemonSet")
"""The kinds people declare in their repositories (Jobs come from CronJobs, ReplicaSets
and Pods from controllers)."""


@dataclass
class Out:
    """One step's messages, bucketed in the order consumers expect them."""

    nodes: list[Message] = field(default_factory=list)
    baselines: list[Message] = field(default_factory=list)
    namespaces: list[Message] = field(default_factory=list)
    workloads: list[Message] = field(default_factory=list)
    pods: list[Message] = field(default_factory=list)
    events: list[Message] = field(default_factory=list)

    def messages(self) -> list[Message]:
        return [
            *self.nodes, *self.baselines, *self.namespaces, *self.workloads, *self.pods,
            *self.events,
        ]  # fmt: skip


class Cluster:
    """Live objects, scheduler and collector of one cluster."""

    def __init__(self, spec: FleetSpec, index: int, catalogue: Catalogue) -> None:
        seeds = np.random.SeedSequence([spec.seed, index])
        self.rng = Rand(int.from_bytes(seeds.generate_state(4, np.uint64).tobytes(), "little"))
        self.numbers = np.random.Generator(np.random.PCG64(seeds.spawn(1)[0]))
        self.spec = spec
        self.index = index
        self.name, self.region = cluster_identity(index)
        self.env = self.name.split("-", 1)[0]
        self.zones = [f"{self.region}{z}" for z in "abc"]
        general = POOL["general"].candidates
        if index % 2:  # half the clusters run the previous generation
            general = (general[1], general[0], *general[2:])
        self.types = {p.name: pick_type(catalogue, p.candidates) for p in POOLS}
        self.types["general"] = pick_type(catalogue, general)
        self.t = spec.start
        self.step = 0
        self.rv = 4_000_000 + self.rng.randrange(1_000_000)
        self.nodes: list[Node] = []
        self.namespaces: list[tuple[str, str, str, str]] = []  # name, uid, team, manager
        self.workloads: list[Workload] = []
        self.daemonsets: list[Workload] = []
        self.pending: list[Pod] = []
        self.crashing: list[Pod] = []
        # sized for by the inventory, played by the changes
        self.recurring: list[tuple[Workload, int, int, int]] = []  # template, period, offset, run
        self.crash_target: Workload | None = None  # the Deployment whose release goes bad
        self.node_ips: set[str] = set()
        self.usage: Usage | None = None

    # -- nodes, pods and the scheduler -------------------------------------------------

    def open_node(self, pool: str, *, before: datetime) -> Node:
        """A new node of the pool, with its DaemonSet pods already on it."""
        rng = self.rng
        ip = rng.ip()
        while ip in self.node_ips:
            ip = rng.ip()
        self.node_ips.add(ip)
        host = "ec2.internal" if self.region == "us-east-1" else f"{self.region}.compute.internal"
        created = self.t
        if self.step == 0:  # inventory: up before what made it necessary
            created = min(before, self.t) - timedelta(minutes=rng.randint(5, 60 * 24 * 20))
        node = Node(
            name=f"ip-{ip.replace('.', '-')}.{host}",
            uid=rng.uid(),
            pool=pool,
            itype=self.types[pool] or never(),
            zone=self.zones[len(self.nodes) % 3],
            ip=ip,
            instance_id=f"i-0{rng.getrandbits(64):016x}",
            created=created,
            overhead=(rng.uniform(0.012, 0.03), rng.uniform(0.02, 0.035)),
        )
        self.nodes.append(node)
        for ds in self.daemonsets:
            self._bind(self.new_pod(ds, created=created), node)
        return node

    def new_pod(
        self,
        wl: Workload,
        *,
        ordinal: int = 0,
        created: datetime | None = None,
        rs: ReplicaSet | None = None,
    ) -> Pod:
        rng = self.rng
        labels = dict(wl.pod_labels)
        containers = wl.containers
        if wl.kind == "Deployment":
            rs = rs or wl.replica_sets[-1]
            containers = rs.containers
            name = f"{rs.name}-{rng.suffix(5)}"
            labels["pod-template-hash"] = rs.hash
            owners = rs.owners
        elif wl.kind == "StatefulSet":
            name = f"{wl.name}-{ordinal}"
            labels["statefulset.kubernetes.io/pod-name"] = name
            owners = wl.owners
        else:
            name = f"{wl.name}-{rng.suffix(5)}"
            if wl.kind == "Job":
                labels["batch.kubernetes.io/job-name"] = wl.name
            owners = wl.owners
        when = created or self.t
        if self.step == 0:
            when = max(wl.created, self.t - timedelta(minutes=rng.randint(10, 60 * 24 * 14)))
        pod = Pod(
            name=name,
            uid=rng.uid(),
            workload=wl,
            owners=owners,
            labels=labels,
            annotations=wl.annotations,
            containers=containers,
            jitter=tuple(rng.uniform(0.9, 1.1) for _ in containers),
            rss=tuple(rng.uniform(0.8, 0.95) for _ in containers),
            created=when,
            ip=rng.ip(),
            restarts=tuple(
                rng.choice((0,) * 8 + (1, 2, 3)) if self.step == 0 else 0 for _ in containers
            ),
        )
        if wl.volume is not None:
            pod.pvc = (
                f"data-{name}",
                si(wl.volume),
                rng.uniform(0.1, 0.6),
                rng.uniform(0.0001, 0.002),
            )
        wl.pods.append(pod)
        return pod

    def fits(
        self,
        node: Node,
        pool: str | None,
        tolerates: bool,
        cpu: float,
        memory: float,
    ) -> bool:
        if node.cordoned or (pool is not None and node.pool != pool):
            return False
        if POOL[node.pool].taint is not None and not tolerates:
            return False
        return (
            node.used_cpu + cpu <= node.alloc_cpu + 1e-9
            and node.used_memory + memory <= node.alloc_memory
        )

    def place(self, pod: Pod, prefer: Node | None = None) -> Node | None:
        """First fit, trying the preferred node (where the pod's predecessor ran) first."""
        wl = pod.workload
        cpu, memory = pod.cpu_request, pod.memory_request
        for node in ([prefer] if prefer is not None else []) + self.nodes:
            if self.fits(node, wl.pool, wl.tolerates, cpu, memory):
                self._bind(pod, node)
                return node
        return None

    def _bind(self, pod: Pod, node: Node) -> None:
        pod.node, pod.phase, pod.started = node, "Running", pod.started or pod.created
        node.pods.append(pod)
        node.used_cpu += pod.cpu_request
        node.used_memory += pod.memory_request
        self.usage = None

    def _release(self, pod: Pod) -> None:
        node = pod.node
        if node is not None:
            node.pods.remove(pod)
            node.used_cpu -= pod.cpu_request
            node.used_memory -= pod.memory_request
            pod.node = None
            self.usage = None

    def park(self, pod: Pod) -> None:
        pod.phase = "Pending"
        pod.series = self.series(pod.name)
        self.pending.append(pod)

    def schedule(self, out: Out, pod: Pod, prefer: Node | None = None) -> None:
        """Bind a new pod, or leave it Pending (FailedScheduling follows), and announce it."""
        pod.created = self.t
        if self.place(pod, prefer) is None:
            self.park(pod)
        self.emit_pod(out, pod, ChangeType.ADDED, "kube-controller-manager")

    def delete_pod(self, out: Out, pod: Pod) -> None:
        self._release(pod)
        pod.workload.pods.remove(pod)
        if pod in self.pending:
            self.pending.remove(pod)
        if pod in self.crashing:
            self.crashing.remove(pod)
        self.emit_pod(out, pod, ChangeType.DELETED, "kube-controller-manager", deleting=True)

    def complete(self, out: Out, pod: Pod) -> None:
        """A Job's pod ran to completion: it stops using its node."""
        pod.phase = "Succeeded"
        self.usage = None
        self.emit_pod(out, pod, ChangeType.MODIFIED, "kubelet")

    def remove_node(self, out: Out, node: Node) -> None:
        """Karpenter takes a drained node away, with the DaemonSet pods still on it."""
        for ds_pod in list(node.pods):
            self.delete_pod(out, ds_pod)
        self.nodes.remove(node)
        self.usage = None
        self.emit_node(out, node, ChangeType.DELETED)

    def unschedulable(self, pod: Pod) -> str:
        """The scheduler's summary of why no node takes the pod."""
        wl = pod.workload
        reasons: dict[str, int] = {}
        for node in self.nodes:
            if node.cordoned:
                why = "node(s) were unschedulable"
            elif wl.pool is not None and node.pool != wl.pool:
                why = "node(s) didn't match Pod's node affinity/selector"
            elif POOL[node.pool].taint is not None and not wl.tolerates:
                why = f"node(s) had untolerated taint {{workload: {POOL[node.pool].taint}}}"
            elif node.used_cpu + pod.cpu_request > node.alloc_cpu:
                why = "Insufficient cpu"
            else:
                why = "Insufficient memory"
            reasons[why] = reasons.get(why, 0) + 1
        detail = ", ".join(f"{count} {why}" for why, count in sorted(reasons.items()))
        return f"0/{len(self.nodes)} nodes are available: {detail}."

    # -- usage -------------------------------------------------------------------------

    def metrics(self, end: datetime) -> list[Message]:
        """One MetricBatch per node for the window from now to ``end``."""
        if self.usage is None:
            self.usage = Usage(self.nodes, self.spec.start)
        return self.usage.scrape(self.name, self.t, end, self.numbers)

    def restart(self, pod: Pod, k: int, count: int, reason: str = "Error") -> None:
        """Container ``k`` restarted ``count`` times, the last after terminating for
        ``reason`` (``OOMKilled``, ``Error``)."""
        pod.restarts = tuple(r + count if i == k else r for i, r in enumerate(pod.restarts))
        if self.usage is not None and pod.slot >= 0:
            self.usage.restarts[pod.slot + k] += count
            self.usage.reasons[pod.slot + k] = reason

    # -- what the collector publishes --------------------------------------------------

    def emit_inventory(self, out: Out) -> None:
        """Step 0: everything that already exists, as the collector's initial list."""
        for node in self.nodes:
            self.emit_node(out, node, ChangeType.ADDED)
        for name, uid, team, manager in self.namespaces:
            labels = {
                "kubernetes.io/metadata.name": name,
                "team": team,
                "env": self.env,
                "app": name,
            }
            obj = namespace_manifest(name, uid, labels, self.t - timedelta(days=90))
            self._change(out.namespaces, obj, ChangeType.ADDED, manager)
        for wl in self.daemonsets + self.workloads:
            self.emit_workload(out, wl, ChangeType.ADDED, wl.manager)
            for rs in wl.replica_sets:
                self.emit_rs(out, wl, rs, ChangeType.ADDED)
            for pod in wl.pods:
                self.emit_pod(out, pod, ChangeType.ADDED, "kube-controller-manager")

    def _change(
        self,
        bucket: list[Message],
        obj: dict[str, Any],
        change: ChangeType,
        manager: str,
        owners: list[OwnerRef] | None = None,
        pod: PodSummary | None = None,
    ) -> None:
        """Wrap a manifest as the collector would, reading identity off its metadata."""
        self.rv += 1
        meta = obj["metadata"]
        meta["resourceVersion"] = str(self.rv)
        message = ObjectChange(
            cluster=self.name,
            api_version=obj["apiVersion"],
            kind=obj["kind"],
            namespace=meta.get("namespace", ""),
            name=meta["name"],
            uid=meta["uid"],
            resource_version=meta["resourceVersion"],
            generation=meta.get("generation"),
            observed_at=self.t,
            change=change,
            object=obj,
            labels=meta.get("labels", {}),
            annotations=meta.get("annotations", {}),
            owner_chain=owners or [],
            last_manager=manager,
            pod=pod,
        )
        bucket.append((Topic.OBJECTS, message))

    def emit_node(self, out: Out, node: Node, change: ChangeType) -> None:
        obj = node_manifest(node, self.region)
        if change is ChangeType.ADDED:
            out.nodes.append(
                (
                    Topic.PRICES,
                    NodePrice(
                        cluster=self.name,
                        node=node.name,
                        instance_type=node.itype.name,
                        region=self.region,
                        zone=node.zone,
                        capacity_type=node.capacity_type,
                        usd_per_hour=node.spot_price,
                        observed_at=self.t,
                    ),
                )
            )
        self._change(
            out.nodes, obj, change, "kubelet" if change is ChangeType.ADDED else "karpenter"
        )

    def emit_workload(self, out: Out, wl: Workload, change: ChangeType, manager: str) -> None:
        """The workload as it now is; when its usual manager (Argo CD, helm) applies it,
        what that declares is its declared baseline from now on (what a person changes
        by hand is drift from it)."""
        ttl = int(self.spec.resolution.total_seconds())
        obj = workload_manifest(wl, change, ttl, self.t)
        if wl.kind in DECLARED_KINDS and manager == wl.manager and change != ChangeType.DELETED:
            declared = declared_manifest(obj)
            out.baselines.append(
                (
                    Topic.BASELINES,
                    Baseline(
                        baseline=BaselineKind.DECLARED, origin=f"{manager} (simulated)",
                        cluster=self.name, api_version=obj["apiVersion"], kind=wl.kind,
                        namespace=wl.namespace, name=wl.name, object=declared,
                        recorded_at=self.t,
                    ),
                )
            )  # fmt: skip
        self._change(out.workloads, obj, change, manager)

    def emit_rs(self, out: Out, wl: Workload, rs: ReplicaSet, change: ChangeType) -> None:
        obj = replica_set_manifest(wl, rs)
        self._change(out.workloads, obj, change, "kube-controller-manager", wl.owners)

    def emit_pod(
        self, out: Out, pod: Pod, change: ChangeType, manager: str, *, deleting: bool = False
    ) -> None:
        node = pod.node
        why = self.unschedulable(pod) if node is None and pod.phase == "Pending" else None
        obj = pod_manifest(pod, self.t, deleting=deleting, unschedulable=why)
        summary = PodSummary(
            node=node.name if node is not None else None,
            phase=pod.phase,
            containers=[c.si for c in pod.containers],
        )
        self._change(out.pods, obj, change, manager, pod.owners, summary)

    def series(self, involved: str) -> Series:
        """Kubernetes names an event after its object plus a unique hex suffix."""
        return Series(
            f"{involved}.{self.rng.getrandbits(64):016x}", self.rng.uid(), self.t, self.step
        )

    def event(
        self,
        out: Out,
        kind: str,
        reason: str,
        message: str,
        involved: ObjectRef,
        namespace: str,
        component: str,
        host: str,
        series: Series | None,
    ) -> None:
        series = series or self.series(involved.name)
        series.count += 1
        out.events.append(
            (
                Topic.EVENTS,
                KubeEvent(
                    cluster=self.name,
                    namespace=namespace,
                    name=series.name,
                    uid=series.uid,
                    type=kind,
                    reason=reason,
                    message=message,
                    involved=involved,
                    source=EventSource(component=component, host=host),
                    count=series.count,
                    first_time=series.first,
                    last_time=self.t,
                ),
            )
        )
