"""Usage from the kubelet summary API (``/stats/summary``, reached through the API
server's node proxy) as one ``MetricBatch`` per node scrape.

The summary reports instantaneous CPU (nanocores) and memory (working set, RSS) per
container and for the node, and used/capacity of each PVC-backed volume.
"""

import json
import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from kubeopera.collectors.kubernetes.api import RateLimiter, get
from kubeopera.collectors.kubernetes.changes import GPU_RESOURCES
from kubeopera.models import Message, MetricBatch, Topic
from kubeopera.models.metrics import ContainerSamples, NodeCapacity, NodeUsage, PvcSamples
from kubeopera.models.quantity import parse_quantity

NANO = 1e-9


def summary_batch(
    cluster: str,
    summary: dict[str, Any],
    capacity: NodeCapacity,
    window_start: datetime,
    window_end: datetime,
    restarts: dict[tuple[str, str], int] | None = None,
) -> MetricBatch:
    """One node's scrape over [window_start, window_end). ``restarts`` maps (pod uid,
    container) to the restart count the Pod's status reports (the summary has none)."""
    node = summary["node"]
    columns: dict[str, list[Any]] = {name: [] for name in ContainerSamples.model_fields}
    pvcs: dict[str, list[Any]] = {name: [] for name in PvcSamples.model_fields}
    for pod in summary.get("pods") or []:
        ref = pod["podRef"]
        for container in pod.get("containers") or []:
            memory = container.get("memory") or {}
            columns["namespace"].append(ref["namespace"])
            columns["pod"].append(ref["name"])
            columns["pod_uid"].append(ref.get("uid", ""))
            columns["container"].append(container["name"])
            columns["cpu_cores"].append(_cores(container.get("cpu")))
            columns["memory_working_set_bytes"].append(float(memory.get("workingSetBytes", 0)))
            columns["memory_rss_bytes"].append(float(memory.get("rssBytes", 0)))
            key = (ref.get("uid", ""), container["name"])
            columns["restarts"].append((restarts or {}).get(key, 0))
            columns["cpu_throttled_ratio"].append(None)  # not in the summary
        for volume in pod.get("volume") or []:
            claim = volume.get("pvcRef")
            if claim:
                pvcs["namespace"].append(claim.get("namespace", ref["namespace"]))
                pvcs["name"].append(claim["name"])
                pvcs["used_bytes"].append(float(volume.get("usedBytes", 0)))
                pvcs["capacity_bytes"].append(float(volume.get("capacityBytes", 0)))
    return MetricBatch(
        cluster=cluster,
        node=node["nodeName"],
        window_start=window_start,
        window_end=window_end,
        node_usage=NodeUsage(
            cpu_cores=_cores(node.get("cpu")),
            memory_bytes=float((node.get("memory") or {}).get("workingSetBytes", 0)),
        ),
        node_capacity=capacity,
        containers=ContainerSamples(**columns),
        pvcs=PvcSamples(**pvcs),
    )


def _cores(cpu: dict[str, Any] | None) -> float:
    return float((cpu or {}).get("usageNanoCores", 0)) * NANO


class UsagePoller:
    """Scrapes every known node's kubelet summary through the API server's node proxy
    (``/api/v1/nodes/NAME/proxy/stats/summary``, RBAC ``nodes/proxy get``) each
    ``interval``; a scrape's window runs from the node's previous scrape to this one."""

    def __init__(
        self,
        api: ApiClient,
        cluster: str,
        sink: Callable[[list[Message]], None],
        interval: timedelta = timedelta(minutes=1),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        limiter: RateLimiter | None = None,
    ) -> None:
        self.api = api
        self.limiter = limiter
        self.cluster = cluster
        self.sink = sink
        self.interval = interval
        self.clock = clock
        self.failures: Counter[str] = Counter()  # node -> scrapes that failed
        self._capacity: dict[str, NodeCapacity] = {}
        self._restarts: dict[tuple[str, str], int] = {}
        self._last: dict[str, datetime] = {}
        self._lock = threading.Lock()  # the collector's watchers update, the poller reads

    def observe(self, kind: str, obj: dict[str, Any], deleted: bool) -> None:
        """Node capacities and container restart counts, from the watched objects."""
        metadata = obj.get("metadata") or {}
        with self._lock:
            if kind == "Node":
                capacity = _capacity(obj)
                if deleted or capacity is None:
                    self._capacity.pop(metadata.get("name", ""), None)
                else:
                    self._capacity[metadata["name"]] = capacity
            elif kind == "Pod":
                for status in (obj.get("status") or {}).get("containerStatuses") or []:
                    key = (metadata.get("uid", ""), status.get("name", ""))
                    if deleted:
                        self._restarts.pop(key, None)
                    else:
                        self._restarts[key] = int(status.get("restartCount", 0))

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(self.interval.total_seconds()):
            batches = self.scrape()
            if batches:
                self.sink(batches)

    def scrape(self) -> list[Message]:
        with self._lock:
            nodes, restarts = dict(self._capacity), dict(self._restarts)
        messages: list[Message] = []
        for node, capacity in sorted(nodes.items()):
            now = self.clock().replace(microsecond=0)
            start = self._last.get(node, now - self.interval)
            if now <= start:
                continue
            try:
                summary = self._summary(node)
                batch = summary_batch(self.cluster, summary, capacity, start, now, restarts)
            except (ApiException, HTTPError, OSError, ValueError, KeyError):
                self.failures[node] += 1
                continue
            self._last[node] = now
            messages.append((Topic.METRICS, batch))
        return messages

    def _summary(self, node: str) -> dict[str, Any]:
        path = f"/api/v1/nodes/{node}/proxy/stats/summary"
        response = get(self.api, path, timeout=30, limiter=self.limiter)
        summary: dict[str, Any] = json.loads(response.read())
        return summary


def _capacity(node: dict[str, Any]) -> NodeCapacity | None:
    capacity = (node.get("status") or {}).get("capacity") or {}
    if not capacity.get("cpu") or not capacity.get("memory"):
        return None  # not reported yet
    gpus = sum(parse_quantity(capacity.get(g, 0)) for g in GPU_RESOURCES)
    return NodeCapacity(
        cpu_cores=parse_quantity(capacity["cpu"]),
        memory_bytes=parse_quantity(capacity["memory"]),
        gpus=gpus,
    )
