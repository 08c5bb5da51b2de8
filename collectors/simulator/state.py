"""What the simulator remembers per object: containers, nodes, workloads, pods, events.

State is kept per object and never per step, so memory grows with the fleet and not with
the duration. These are plain records; the cluster, inventory and changes modules act on
them, the manifests module renders them.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import NoReturn

from kubeopera.collectors.simulator.fleet import ALLOCATABLE
from kubeopera.collectors.simulator.kube import cpu_text, si
from kubeopera.models.catalogue import InstanceType
from kubeopera.models.objects import ContainerResources, OwnerRef
from kubeopera.models.prices import CapacityType


@dataclass(frozen=True)
class ContainerSpec:
    """One container of a pod template, with how much it typically uses."""

    name: str
    image: str
    cpu_request: str | None
    memory_request: str | None
    cpu_limit: str | None
    memory_limit: str | None
    cpu_usage: float  # cores at the daily mean on a weekday
    memory_usage: float  # working-set bytes at the daily mean
    daily: float  # amplitude of the day/night swing
    weekend: float  # weekend level relative to weekdays
    si: ContainerResources = field(init=False, compare=False)
    env: tuple[tuple[str, str], ...] = ()  # name, value

    def __post_init__(self) -> None:
        limits = (self.cpu_limit, self.memory_limit)
        object.__setattr__(
            self,
            "si",
            ContainerResources(
                name=self.name,
                cpu_request_cores=si(self.cpu_request),
                memory_request_bytes=si(self.memory_request),
                cpu_limit_cores=None if limits[0] is None else si(limits[0]),
                memory_limit_bytes=None if limits[1] is None else si(limits[1]),
            ),
        )

    def resources(self) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        for section, cpu, memory in (
            ("requests", self.cpu_request, self.memory_request),
            ("limits", self.cpu_limit, self.memory_limit),
        ):
            values = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
            if values:
                out[section] = values
        return out


@dataclass(eq=False, slots=True)
class Series:
    """A Kubernetes event that repeats: same name, growing count."""

    name: str
    uid: str
    first: datetime
    start_step: int
    count: int = 0


@dataclass(eq=False, slots=True)
class Node:
    name: str
    uid: str
    pool: str
    itype: InstanceType
    zone: str
    ip: str
    instance_id: str
    created: datetime
    overhead: tuple[float, float]  # system CPU and memory share of capacity
    capacity_type: CapacityType = CapacityType.ON_DEMAND
    spot_price: float | None = None
    cordoned: bool = False
    used_cpu: float = 0.0  # sum of the requests of the pods bound here
    used_memory: float = 0.0
    pods: list["Pod"] = field(default_factory=list)
    alloc_cpu: float = field(init=False)
    alloc_memory: float = field(init=False)

    def __post_init__(self) -> None:
        self.alloc_cpu, self.alloc_memory = _allocatable(self.itype)

    @property
    def arch(self) -> str:
        return self.itype.arch or "amd64"


def _allocatable(itype: InstanceType) -> tuple[float, float]:
    """What the kubelet offers pods, as the Node's status would state it."""
    cpu = si(cpu_text(itype.vcpu * ALLOCATABLE))
    return cpu, float(int(itype.memory_bytes * ALLOCATABLE) // 1024 * 1024)


@dataclass(eq=False, slots=True)
class ReplicaSet:
    name: str
    uid: str
    hash: str
    revision: int
    replicas: int
    containers: list[ContainerSpec]
    owners: list[OwnerRef]  # shared by its pods: few objects for the garbage collector to walk
    generation: int = 1


@dataclass(eq=False, slots=True)
class Workload:
    kind: str
    namespace: str
    name: str
    uid: str
    team: str
    pool: str | None  # None: any untainted node
    replicas: int
    containers: list[ContainerSpec]
    manager: str
    labels: dict[str, str]
    pod_labels: dict[str, str]  # the pod template's labels
    annotations: dict[str, str]
    created: datetime
    tolerates: bool = False
    volume: str | None = None
    generation: int = 1
    revision: int = 1
    replica_sets: list[ReplicaSet] = field(default_factory=list)  # newest last
    pods: list["Pod"] = field(default_factory=list)
    job_status: str = "Running"
    leak_from: datetime | None = None  # its containers' memory grows from then on
    ref: OwnerRef = field(init=False)
    owners: list[OwnerRef] = field(init=False)
    first_replicas: int = field(init=False)
    first_main: ContainerSpec = field(init=False)

    def __post_init__(self) -> None:
        self.ref = OwnerRef(kind=self.kind, name=self.name, uid=self.uid)
        self.owners = [self.ref]
        self.first_replicas, self.first_main = self.replicas, self.containers[0]

    @property
    def api_version(self) -> str:
        return "batch/v1" if self.kind == "Job" else "apps/v1"


@dataclass(eq=False, slots=True)
class Pod:
    name: str
    uid: str
    workload: Workload
    owners: list[OwnerRef]  # shared with the ReplicaSet or workload
    labels: dict[str, str]
    annotations: dict[str, str]  # shared with the workload
    containers: list[ContainerSpec]
    jitter: tuple[float, ...]  # this replica's usage relative to the template's
    rss: tuple[float, ...]  # RSS share of the working set, per container
    created: datetime
    ip: str
    restarts: tuple[int, ...]  # replaced, not mutated: tuples of ints escape the GC's walks
    node: Node | None = None
    phase: str = "Pending"
    started: datetime | None = None
    oom_at: dict[int, datetime] = field(default_factory=dict)
    crashloop: bool = False
    series: Series | None = None
    slot: int = -1  # index of the first container in the cluster's usage arrays
    pvc: tuple[str, float, float, float] | None = None  # name, capacity, initial fill, fill/hour
    cpu_request: float = field(init=False)
    memory_request: float = field(init=False)

    def __post_init__(self) -> None:
        self.cpu_request, self.memory_request = requests(self.containers)


def requests(containers: list[ContainerSpec]) -> tuple[float, float]:
    """The CPU and memory a pod of these containers asks the scheduler for."""
    return (
        sum(c.si.cpu_request_cores for c in containers),
        sum(c.si.memory_request_bytes for c in containers),
    )


@dataclass(frozen=True)
class Injection:
    """What the simulator injects for the anomaly detectors to find (``cost_spike``,
    ``memory_leak``, ``restart_storm``) or to leave alone as normal
    (``weekend_batch``), with its workload and its span [start, end) UTC: the ground
    truth that tests and the demo check findings against."""

    kind: str
    cluster: str
    namespace: str
    workload_kind: str
    workload: str
    start: datetime
    end: datetime


@dataclass(eq=False, slots=True)
class JobRun:
    job: Workload
    end_step: int
    nodes: list[Node] = field(default_factory=list)  # burst nodes that go with the run


def never() -> NoReturn:
    raise AssertionError("simulator invariant broken")
