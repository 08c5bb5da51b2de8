"""The usage model: what every container of a cluster uses, vectorised with numpy.

A scrape per node per step is the bulk of the output, so it is computed for all of a
cluster's containers at once: parameters laid out node by node, rebuilt only when pods
move, and a handful of array operations per step.
"""

import math
from datetime import datetime

import numpy as np
import numpy.typing as npt

from kubeopera.collectors.simulator.kube import MIB
from kubeopera.collectors.simulator.spec import HOUR
from kubeopera.collectors.simulator.state import Node
from kubeopera.models import Message
from kubeopera.models.metrics import (
    ContainerSamples,
    MetricBatch,
    NodeCapacity,
    NodeUsage,
    PvcSamples,
)
from kubeopera.models.topics import Topic

_Floats = npt.NDArray[np.float64]

LEAK_PER_HOUR = 1.0  # a leaking container's memory grows by its usual use every hour
_CONTAINER_ROOM = 0.96  # containers' share of a node's capacity; the system overhead fits above
_NO_PVCS = PvcSamples()  # shared by the many nodes without volumes: frozen, so safe to share


class Usage:
    """Per-container usage parameters of one cluster, laid out node by node.

    Rebuilt only when pods move; each step then costs a handful of numpy operations over
    all containers and one list slice per node and column.
    """

    def __init__(self, nodes: list[Node], origin: datetime) -> None:
        self.nodes = nodes
        self.origin = origin
        rows: list[tuple[float, float, float, float, float, float, float, float, float]] = []
        node_of: list[int] = []
        restarts: list[int] = []
        self.reasons: list[str | None] = []  # why each container last terminated
        self.bounds: list[tuple[int, int]] = []
        self.columns: list[tuple[list[str], list[str], list[str], list[str]]] = []
        self.pvcs: list[list[tuple[str, str, float, float, float]]] = []
        for index, node in enumerate(nodes):
            first = len(rows)
            namespaces: list[str] = []
            names: list[str] = []
            uids: list[str] = []
            containers: list[str] = []
            pvcs: list[tuple[str, str, float, float, float]] = []
            for pod in node.pods:
                if pod.phase != "Running":
                    continue
                pod.slot = len(rows)
                for k, spec in enumerate(pod.containers):
                    idle = pod.crashloop and k == 0
                    limit = spec.si.cpu_limit_cores
                    memory_limit = spec.si.memory_limit_bytes
                    rows.append(
                        (
                            0.002 if idle else spec.cpu_usage * pod.jitter[k],
                            spec.daily,
                            spec.weekend,
                            math.inf if limit is None else limit,
                            16 * MIB if idle else spec.memory_usage * pod.jitter[k],
                            math.inf if memory_limit is None else 0.97 * memory_limit,
                            pod.rss[k],
                            spec.daily / 4,
                            pod.workload.leak_from.timestamp()
                            if pod.workload.leak_from
                            else math.inf,
                        )
                    )
                    node_of.append(index)
                    restarts.append(pod.restarts[k])
                    self.reasons.append(
                        "OOMKilled" if k in pod.oom_at else "Error" if pod.restarts[k] else None
                    )
                    namespaces.append(pod.workload.namespace)
                    names.append(pod.name)
                    uids.append(pod.uid)
                    containers.append(spec.name)
                if pod.pvc is not None:
                    name, capacity, fill, growth = pod.pvc
                    pvcs.append((pod.workload.namespace, name, capacity, fill, growth))
            self.bounds.append((first, len(rows)))
            self.columns.append((namespaces, names, uids, containers))
            self.pvcs.append(pvcs)
        table = np.array(rows, dtype=np.float64).reshape(-1, 9)
        (
            self.cpu,
            self.daily,
            self.weekend,
            self.cpu_limit,
            self.memory,
            self.memory_cap,
            self.rss,
            self.memory_daily,
            self.leak_from,
        ) = (np.ascontiguousarray(col) for col in table.T)
        self.node_of = np.array(node_of, dtype=np.intp)
        self.restarts = np.array(restarts, dtype=np.int64)
        self.limited = np.isfinite(self.cpu_limit)
        self.capacity = [
            NodeCapacity(cpu_cores=n.itype.vcpu, memory_bytes=n.itype.memory_bytes) for n in nodes
        ]
        self.cap_cpu = np.array([n.itype.vcpu for n in nodes], dtype=np.float64)
        self.cap_memory = np.array([n.itype.memory_bytes for n in nodes], dtype=np.float64)
        self.overhead = np.array([n.overhead for n in nodes], dtype=np.float64).reshape(-1, 2)

    def scrape(
        self,
        cluster: str,
        start: datetime,
        end: datetime,
        rng: np.random.Generator,
    ) -> list[Message]:
        """One MetricBatch per node for the window [start, end)."""
        n_nodes = len(self.nodes)
        hour = (start - start.replace(hour=0, minute=0, second=0, microsecond=0)) / HOUR
        wave = math.cos(2 * math.pi * (hour - 13) / 24)  # peak early afternoon UTC, trough at night
        weekend = start.weekday() >= 5
        noise = rng.standard_normal((2, len(self.cpu)))
        jitter = rng.uniform(0.85, 1.15, (2, n_nodes))

        demand = self.cpu * (1 + self.daily * wave) * np.exp(0.22 * noise[0] - 0.0242)
        memory = self.memory * (1 + self.memory_daily * wave) * np.exp(0.03 * noise[1])
        if weekend:
            demand *= self.weekend
            memory *= 1 - 0.3 * (1 - self.weekend)
        leaking = np.maximum(0.0, start.timestamp() - self.leak_from) / 3600  # hours, or 0
        memory *= 1 + LEAK_PER_HOUR * leaking
        cpu = np.minimum(demand, self.cpu_limit)
        memory = np.minimum(memory, self.memory_cap)
        throttled = np.round(np.clip((demand / self.cpu_limit - 0.7) * 1.5, 0, 1), 4)

        # a node cannot run more than it has: squeeze its containers into their share
        cpu = np.round(cpu * self._squeeze(cpu, self.cap_cpu), 6)
        memory = np.floor(memory * self._squeeze(memory, self.cap_memory))
        rss = np.floor(memory * self.rss)
        node_cpu = np.minimum(
            np.bincount(self.node_of, cpu, n_nodes)
            + self.cap_cpu * self.overhead[:, 0] * jitter[0],
            self.cap_cpu,
        ).round(6)
        node_memory = np.minimum(
            np.bincount(self.node_of, memory, n_nodes)
            + np.floor(self.cap_memory * self.overhead[:, 1] * jitter[1]),
            self.cap_memory,
        )
        throttle_column = throttled.astype(object)
        throttle_column[~self.limited] = None

        cpu_l, memory_l, rss_l = cpu.tolist(), memory.tolist(), rss.tolist()
        restarts_l, throttle_l = self.restarts.tolist(), throttle_column.tolist()
        reasons = self.reasons
        node_cpu_l, node_memory_l = node_cpu.tolist(), node_memory.tolist()
        hours = (start - self.origin) / HOUR
        out: list[Message] = []
        for i, node in enumerate(self.nodes):
            a, b = self.bounds[i]
            namespaces, pods, uids, containers = self.columns[i]
            pvcs = self.pvcs[i]
            batch = MetricBatch(
                cluster=cluster,
                node=node.name,
                window_start=start,
                window_end=end,
                node_usage=NodeUsage(cpu_cores=node_cpu_l[i], memory_bytes=node_memory_l[i]),
                node_capacity=self.capacity[i],
                containers=ContainerSamples(
                    namespace=namespaces,
                    pod=pods,
                    pod_uid=uids,
                    container=containers,
                    cpu_cores=cpu_l[a:b],
                    memory_working_set_bytes=memory_l[a:b],
                    memory_rss_bytes=rss_l[a:b],
                    restarts=restarts_l[a:b],
                    last_terminated_reason=reasons[a:b],
                    cpu_throttled_ratio=throttle_l[a:b],
                ),
                pvcs=self._pvcs(pvcs, hours) if pvcs else _NO_PVCS,
            )
            out.append((Topic.METRICS, batch))
        return out

    @staticmethod
    def _pvcs(pvcs: list[tuple[str, str, float, float, float]], hours: float) -> PvcSamples:
        """Volumes fill slowly from where they started."""
        return PvcSamples(
            namespace=[p[0] for p in pvcs],
            name=[p[1] for p in pvcs],
            used_bytes=[float(math.floor(p[2] * min(0.97, p[3] + p[4] * hours))) for p in pvcs],
            capacity_bytes=[p[2] for p in pvcs],
        )

    def _squeeze(self, values: _Floats, capacity: _Floats) -> _Floats:
        """Per container, the factor that keeps each node's sum within its containers' room."""
        totals = np.bincount(self.node_of, values, len(self.nodes))
        room = capacity * _CONTAINER_ROOM
        factor = np.where(totals > room, room / np.maximum(totals, 1e-12), 1.0)
        squeezed: _Floats = factor[self.node_of]
        return squeezed
