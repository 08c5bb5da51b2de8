"""The inventory: what a cluster already runs when the simulation starts.

Namespaces, platform and team workloads, and just enough nodes, bin-packed first-fit by
requests; then the pods that come later (recurring Jobs, the release that goes bad) are
sized for, and a share of the nodes turns spot. The factories for containers, workloads
and ReplicaSets are used again by the changes that create objects during the run.
"""

from dataclasses import replace
from datetime import datetime, timedelta

from kubeopera.collectors.simulator.cluster import Cluster
from kubeopera.collectors.simulator.fleet import (
    ECR,
    OWNERS,
    PLATFORM,
    PROFILES,
    SIDECARS,
    SIZES,
    STATEFUL,
    TEAMS,
    Team,
    Template,
    platform_env,
)
from kubeopera.collectors.simulator.kube import MIB, cpu_text, memory_text, si
from kubeopera.collectors.simulator.spec import HOUR
from kubeopera.collectors.simulator.state import (
    ContainerSpec,
    ReplicaSet,
    Workload,
    never,
    requests,
)
from kubeopera.models.objects import OwnerRef
from kubeopera.models.prices import CapacityType


def build(cluster: Cluster) -> None:
    """Namespaces, workloads and just enough nodes, bin-packed by requests first-fit."""
    owners = [("kube-system", "platform"), ("monitoring", "platform")]
    owners += [(ns, team.name) for team in TEAMS for ns in team.namespaces]
    if cluster.index == 0:
        owners.append(("ml-training", "ml"))
    for ns, owner in owners:
        platform = owner == "platform"
        manager = "kubectl-client-side-apply" if platform else "argocd-application-controller"
        cluster.namespaces.append((ns, cluster.rng.uid(), owner, manager))
    before = cluster.spec.start - timedelta(days=30)
    for tpl in PLATFORM:
        wl = _workload_from(cluster, tpl, "platform", "helm", before)
        if tpl.kind == "DaemonSet":
            cluster.daemonsets.append(wl)
        else:
            _populate(cluster, wl)
    # the arm64 node and the unschedulable pod below come on top
    budget = cluster.spec.pods_per_cluster - len(cluster.daemonsets) - 1
    max_replicas = max(3, cluster.spec.pods_per_cluster // 60)
    made = 0
    while _pod_count(cluster) < budget:
        team = TEAMS[made % len(TEAMS)]
        if made < len(TEAMS):
            for name in team.stateful:
                _stateful(cluster, team, name)
        _service(cluster, team, made // len(TEAMS), max_replicas)
        made += 1
    # a nearly idle arm64 pool (one node, one tiny pod), and a pod that fits nowhere
    # because someone typed 24 CPUs
    _populate(cluster, _single(cluster, "web", "edge-proxy", "arm64", ("100m", "128Mi"), "over"))
    report = _single(cluster, "analytics", "report-builder", None, ("24", "4Gi"), "normal")
    _populate(cluster, report, open_nodes=False)
    _later_pods(cluster)
    _spot(cluster)


def _single(
    cluster: Cluster, ns: str, name: str, pool: str | None, size: tuple[str, str], profile: str
) -> Workload:
    """A one-container, one-replica Deployment of a team."""
    team = next(t for t in TEAMS if ns in t.namespaces)
    image = new_image(cluster, team.name, name)
    spec = new_container(cluster, name, image, size, profile, requests=True)
    return new_workload(cluster, "Deployment", ns, name, team.name, pool, 1, [spec])


def _pod_count(cluster: Cluster) -> int:
    return sum(len(wl.pods) for wl in cluster.workloads) + sum(
        len(ds.pods) for ds in cluster.daemonsets
    )


def _later_pods(cluster: Cluster) -> None:
    """Recurring jobs and the crash-looping pod come later: size the nodes for them now."""
    rng = cluster.rng
    names = [(team, job) for team in TEAMS for job in team.jobs]
    for team, base in rng.sample(names, 3):
        size = rng.choice(SIZES["job"])
        tpl = new_workload(
            cluster,
            "Job",
            team.namespaces[0],
            base,
            team.name,
            team.pool,
            1,
            [new_container(cluster, base, new_image(cluster, team.name, base), size, "busy")],
            listed=False,
        )
        period = rng.choice((1, 2, 4)) * (HOUR // cluster.spec.resolution)
        run = max(1, round(period * rng.uniform(0.2, 0.5)))
        cluster.recurring.append((tpl, period, rng.randrange(period), run))
        _hold(cluster, tpl)
    if cluster.index == min(1, cluster.spec.clusters - 1):
        services = [
            w
            for w in cluster.workloads
            if w.kind == "Deployment" and w.team != "platform" and w.pool in ("general", "compute")
        ]
        if services:
            cluster.crash_target = rng.choice(services)
            _hold(cluster, cluster.crash_target)


def _hold(cluster: Cluster, wl: Workload) -> None:
    """Open a node now if one more pod of the workload would not fit anywhere."""
    cpu, memory = requests(wl.containers)
    if not any(cluster.fits(n, wl.pool, wl.tolerates, cpu, memory) for n in cluster.nodes):
        cluster.open_node(wl.pool or "general", before=cluster.spec.start - timedelta(days=2))


def _spot(cluster: Cluster) -> None:
    rng = cluster.rng
    count = round(cluster.spec.spot_fraction * len(cluster.nodes))
    for i in sorted(rng.sample(range(len(cluster.nodes)), count)):
        node = cluster.nodes[i]
        node.capacity_type = CapacityType.SPOT
        price = node.itype.usd_per_hour or never()
        node.spot_price = round(price * rng.uniform(0.30, 0.45), 6)


def new_image(cluster: Cluster, team: str, name: str) -> str:
    rng = cluster.rng
    version = f"v{rng.randint(1, 4)}.{rng.randint(0, 30)}.{rng.randint(0, 12)}"
    return f"{ECR.format(region=cluster.region)}/{team}/{name}:{version}"


def new_container(
    cluster: Cluster,
    name: str,
    image: str,
    size: tuple[str | None, str | None],
    profile: str,
    *,
    requests: bool = False,
    limits: tuple[str | None, str | None] | None = None,
    system: bool = False,
) -> ContainerSpec:
    """One container; without explicit limits, some lose their requests altogether.

    System containers always have theirs, so team containers drop them more often
    (15%) for about 10% of all containers to have none.
    """
    rng = cluster.rng
    cpu_req, mem_req = size
    if limits is None:
        cpu_lim, mem_lim = None, None
        if profile != "under" and cpu_req is not None and rng.random() < 0.45:
            cpu_lim = cpu_text(si(cpu_req) * rng.choice((1, 2)))
        if mem_req is not None and rng.random() < (0.5 if profile == "under" else 0.8):
            factor = 2 if profile == "under" else rng.choice((1, 1, 2))
            mem_lim = memory_text(si(mem_req) * factor)
        if not requests and rng.random() < 0.15:
            cpu_req = mem_req = cpu_lim = mem_lim = None
    else:
        cpu_lim, mem_lim = limits
    ratio = PROFILES[profile]
    cpu = si(cpu_req) * rng.uniform(*ratio) if cpu_req else rng.uniform(0.01, 0.3)
    bare = (16, 96) if system else (32, 512)  # MiB used without a request to anchor it
    memory = si(mem_req) * rng.uniform(*ratio) if mem_req else rng.uniform(*bare) * MIB
    if mem_lim is not None:
        memory = min(memory, 0.9 * si(mem_lim))
    return ContainerSpec(
        name=name,
        image=image,
        cpu_request=cpu_req,
        memory_request=mem_req,
        cpu_limit=cpu_lim,
        memory_limit=mem_lim,
        cpu_usage=cpu,
        memory_usage=memory,
        daily=rng.uniform(0.05, 0.15) if system else rng.uniform(0.2, 0.45),
        weekend=rng.uniform(0.85, 1.0) if system else rng.uniform(0.55, 0.65),
    )


def new_workload(
    cluster: Cluster,
    kind: str,
    namespace: str,
    name: str,
    team: str,
    pool: str | None,
    replicas: int,
    containers: list[ContainerSpec],
    *,
    manager: str | None = None,
    created: datetime | None = None,
    listed: bool = True,
) -> Workload:
    """A workload object; ``listed`` puts it among the cluster's live objects."""
    rng = cluster.rng
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": namespace}
    pod_labels = {"app": name, "app.kubernetes.io/name": name}
    annotations: dict[str, str] = {}
    if team != "platform":
        labels["team"] = team
        if rng.random() < 0.5:  # some teams label their pods too
            pod_labels["team"] = team
        if rng.random() < 0.6:
            annotations["owner"] = f"{rng.choice(OWNERS)}@example.com"
    if manager is None:
        manager = rng.choice(
            ("argocd-application-controller",) * 4 + ("kubectl-client-side-apply",)
        )
    wl = Workload(
        kind=kind,
        namespace=namespace,
        name=name,
        uid=rng.uid(),
        team=team,
        pool=pool,
        replicas=replicas,
        containers=containers,
        manager=manager,
        labels=labels,
        pod_labels=pod_labels,
        annotations=annotations,
        created=created or cluster.spec.start - timedelta(hours=rng.uniform(2, 24 * 60)),
    )
    if kind == "Deployment":
        wl.revision = rng.randint(1, 40)
        wl.generation = wl.revision + rng.randint(0, 5)
        wl.replica_sets.append(new_replica_set(cluster, wl, replicas, containers))
    if listed:
        cluster.workloads.append(wl)
    return wl


def _workload_from(
    cluster: Cluster,
    tpl: Template,
    team: str,
    manager: str,
    before: datetime,
) -> Workload:
    specs = [
        replace(
            new_container(
                cluster,
                name,
                image.format(region=cluster.region),
                (cpu, mem),
                tpl.profile,
                limits=(cpu_lim, mem_lim),
                system=True,
            ),
            env=platform_env(cluster.env, name),
        )
        for name, image, cpu, mem, cpu_lim, mem_lim in tpl.containers
    ]
    wl = new_workload(
        cluster,
        tpl.kind,
        tpl.namespace,
        tpl.name,
        team,
        tpl.pool,
        tpl.replicas,
        specs,
        manager=manager,
        created=before,
        listed=tpl.kind != "DaemonSet",
    )
    wl.volume = tpl.volume
    wl.tolerates = tpl.kind == "DaemonSet"
    return wl


def _service(cluster: Cluster, team: Team, made: int, max_replicas: int) -> None:
    rng = cluster.rng
    base = team.services[made % len(team.services)]
    name = base if made < len(team.services) else f"{base}-{made // len(team.services) + 1}"
    profile = rng.choices(("over", "under", "normal"), (25, 12, 63))[0]
    sizes = SIZES["compute" if team.pool == "compute" else "general"]
    containers = [
        new_container(
            cluster, base, new_image(cluster, team.name, base), rng.choice(sizes), profile
        )
    ]
    for sidecar in rng.sample(SIDECARS, rng.choices((0, 1, 2), (55, 33, 12))[0]):
        cname, image, cpu, mem, _, _ = sidecar
        containers.append(
            new_container(cluster, cname, image, (cpu, mem), rng.choice(("over", "normal")))
        )
    ns = team.namespaces[made % len(team.namespaces)]
    wl = new_workload(
        cluster,
        "Deployment",
        ns,
        name,
        team.name,
        team.pool,
        rng.randint(1, max_replicas),
        containers,
    )
    _populate(cluster, wl)


def _stateful(cluster: Cluster, team: Team, name: str) -> None:
    replicas, containers, volume = STATEFUL[name]
    specs = [
        new_container(cluster, c[0], c[1], (c[2], c[3]), "normal", limits=(c[4], c[5]))
        for c in containers
    ]
    wl = new_workload(
        cluster, "StatefulSet", team.namespaces[0], name, team.name, "memory", replicas, specs
    )
    wl.volume = volume
    _populate(cluster, wl)


def _populate(cluster: Cluster, wl: Workload, *, open_nodes: bool = True) -> None:
    """Create the workload's initial pods and bind them, opening nodes while packing."""
    for ordinal in range(wl.replicas):
        pod = cluster.new_pod(wl, ordinal=ordinal, created=wl.created)
        if cluster.place(pod) is None:
            if open_nodes and wl.pool is not None:
                cluster.open_node(wl.pool, before=wl.created)
            if cluster.place(pod) is None:
                cluster.park(pod)


def new_replica_set(
    cluster: Cluster, wl: Workload, replicas: int, containers: list[ContainerSpec]
) -> ReplicaSet:
    rs_hash = cluster.rng.suffix(10)
    name, uid = f"{wl.name}-{rs_hash}", cluster.rng.uid()
    owners = [OwnerRef(kind="ReplicaSet", name=name, uid=uid), wl.ref]
    return ReplicaSet(name, uid, rs_hash, wl.revision, replicas, containers, owners)
