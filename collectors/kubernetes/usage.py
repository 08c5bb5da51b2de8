"""Each node's usage as one ``MetricBatch`` per scrape, from one of two sources.

- ``metrics.k8s.io`` (metrics-server, or any adapter serving it): the whole cluster in
  two requests; CPU and working-set memory per container and per node, no RSS and no
  volumes. Pods are named there, not numbered: the collector's Pod watch supplies
  their uids and nodes.
- The kubelet summary API (``/stats/summary``) through the API server's node proxy:
  one request per node; adds RSS and each PVC-backed volume's used/capacity bytes.

``auto`` takes metrics.k8s.io when the cluster serves it, the summaries otherwise.
"""

import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from pydantic import BaseModel
from urllib3.exceptions import HTTPError

from kubeopera.collectors.kubernetes.api import RateLimiter, get_json
from kubeopera.collectors.kubernetes.changes import GPU_RESOURCES
from kubeopera.models import Message, MetricBatch, Topic
from kubeopera.models.metrics import ContainerSamples, NodeCapacity, NodeUsage, PvcSamples
from kubeopera.models.quantity import parse_quantity

NANO = 1e-9
Restarts = dict[tuple[str, str], tuple[int, str | None]]
"""(pod uid, container) -> its restart count and why it last terminated, from the Pod's
status (``restartCount``, ``lastState.terminated.reason``)."""


def summary_batch(
    cluster: str,
    summary: dict[str, Any],
    capacity: NodeCapacity,
    window_start: datetime,
    window_end: datetime,
    restarts: Restarts | None = None,
) -> MetricBatch:
    """One node's scrape over [window_start, window_end). ``restarts``: what the Pods'
    status says of each container's restarts (the summary has none)."""
    node = summary["node"]
    columns = _columns(ContainerSamples)
    pvcs = _columns(PvcSamples)
    for pod in summary.get("pods") or []:
        ref = pod["podRef"]
        for container in pod.get("containers") or []:
            memory = container.get("memory") or {}
            _add_container(
                columns,
                (ref["namespace"], ref["name"], ref.get("uid", ""), container["name"]),
                cpu_cores=_cores(container.get("cpu")),
                working_set=float(memory.get("workingSetBytes", 0)),
                rss=float(memory.get("rssBytes", 0)),
                restarts=restarts,
            )
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


def metrics_api_batches(
    cluster: str,
    node_metrics: dict[str, Any],
    pod_metrics: dict[str, Any],
    pods: dict[tuple[str, str], tuple[str, str]],
    capacity: dict[str, NodeCapacity],
    windows: dict[str, tuple[datetime, datetime]],
    restarts: Restarts | None = None,
) -> list[MetricBatch]:
    """One batch per node that has a window and a capacity, from a NodeMetricsList and a
    PodMetricsList. ``pods`` maps (namespace, name) to (uid, node): a pod the collector
    has not seen yet is left for the next scrape."""
    columns: dict[str, dict[str, list[Any]]] = {}
    for item in pod_metrics.get("items") or []:
        meta = item.get("metadata") or {}
        namespace, name = meta.get("namespace", ""), meta.get("name", "")
        uid, node = pods.get((namespace, name), ("", ""))
        if node not in windows:
            continue
        into = columns.setdefault(node, _columns(ContainerSamples))
        for container in item.get("containers") or []:
            usage = container.get("usage") or {}
            _add_container(
                into,
                (namespace, name, uid, container.get("name", "")),
                cpu_cores=parse_quantity(usage.get("cpu", 0)),
                working_set=parse_quantity(usage.get("memory", 0)),
                rss=None,  # not in metrics.k8s.io
                restarts=restarts,
            )
    batches = []
    for item in node_metrics.get("items") or []:
        node = (item.get("metadata") or {}).get("name", "")
        if node not in windows or node not in capacity:
            continue
        usage = item.get("usage") or {}
        start, end = windows[node]
        batches.append(
            MetricBatch(
                cluster=cluster,
                node=node,
                window_start=start,
                window_end=end,
                node_usage=NodeUsage(
                    cpu_cores=parse_quantity(usage.get("cpu", 0)),
                    memory_bytes=parse_quantity(usage.get("memory", 0)),
                ),
                node_capacity=capacity[node],
                containers=ContainerSamples(**columns.get(node, _columns(ContainerSamples))),
            )
        )
    return batches


def _columns(model: type[BaseModel]) -> dict[str, list[Any]]:
    return {name: [] for name in model.model_fields}


def _add_container(
    columns: dict[str, list[Any]],
    container: tuple[str, str, str, str],  # namespace, pod, pod uid, container
    cpu_cores: float,
    working_set: float,
    rss: float | None,
    restarts: Restarts | None,
) -> None:
    """One container's row; its restart count comes from the Pod's status (no usage
    source reports it), and neither source reports CPU throttling."""
    namespace, pod, uid, name = container
    row = {
        "namespace": namespace,
        "pod": pod,
        "pod_uid": uid,
        "container": name,
        "cpu_cores": cpu_cores,
        "memory_working_set_bytes": working_set,
        "memory_rss_bytes": rss,
        "restarts": (restarts or {}).get((uid, name), (0, None))[0],
        "cpu_throttled_ratio": None,
        "last_terminated_reason": (restarts or {}).get((uid, name), (0, None))[1],
    }
    for column, value in row.items():
        columns[column].append(value)


def _cores(cpu: dict[str, Any] | None) -> float:
    return float((cpu or {}).get("usageNanoCores", 0)) * NANO


METRICS_API = "/apis/metrics.k8s.io/v1beta1"
SOURCES = ("auto", "metrics-api", "summary")


class UsagePoller:
    """Scrapes every known node each ``interval``; a node's window runs from its previous
    scrape to this one. ``source``: ``metrics-api``, ``summary`` (RBAC ``nodes/proxy
    get``) or ``auto``, which asks every ``recheck`` whether metrics.k8s.io is served."""

    def __init__(
        self,
        api: ApiClient,
        cluster: str,
        sink: Callable[[list[Message]], None],
        interval: timedelta = timedelta(minutes=1),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        limiter: RateLimiter | None = None,
        source: str = "auto",
        recheck: timedelta = timedelta(minutes=10),
    ) -> None:
        if source not in SOURCES:
            raise ValueError(f"usage source {source!r}: expected one of {', '.join(SOURCES)}")
        self.api = api
        self.limiter = limiter
        self.cluster = cluster
        self.sink = sink
        self.interval = interval
        self.clock = clock
        self.source = source
        self.recheck = recheck
        self.failures: Counter[str] = Counter()  # node (or metrics.k8s.io) -> failed scrapes
        self._served: tuple[datetime, bool] | None = None  # when auto last asked, and the answer
        self._capacity: dict[str, NodeCapacity] = {}
        self._restarts: Restarts = {}
        self._pods: dict[tuple[str, str], tuple[str, str]] = {}  # (ns, name) -> (uid, node)
        self._last: dict[str, datetime] = {}
        self._lock = threading.Lock()  # the collector's watchers update, the poller reads

    def observe(self, kind: str, obj: dict[str, Any], deleted: bool) -> None:
        """Node capacities, and each pod's uid, node and restart counts, from the watch."""
        metadata = obj.get("metadata") or {}
        with self._lock:
            if kind == "Node":
                capacity = _capacity(obj)
                if deleted or capacity is None:
                    self._capacity.pop(metadata.get("name", ""), None)
                else:
                    self._capacity[metadata["name"]] = capacity
            elif kind == "Pod":
                uid = metadata.get("uid", "")
                place = (metadata.get("namespace", ""), metadata.get("name", ""))
                if deleted:
                    self._pods.pop(place, None)
                else:
                    self._pods[place] = (uid, (obj.get("spec") or {}).get("nodeName") or "")
                for status in (obj.get("status") or {}).get("containerStatuses") or []:
                    key = (uid, status.get("name", ""))
                    if deleted:
                        self._restarts.pop(key, None)
                    else:
                        terminated = (status.get("lastState") or {}).get("terminated") or {}
                        self._restarts[key] = (
                            int(status.get("restartCount", 0)),
                            terminated.get("reason"),
                        )

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(self.interval.total_seconds()):
            batches = self.scrape()
            if batches:
                self.sink(batches)

    def scrape(self) -> list[Message]:
        with self._lock:
            nodes, restarts, pods = dict(self._capacity), dict(self._restarts), dict(self._pods)
        if self._metrics_api_served():
            return self._from_metrics_api(nodes, pods, restarts)
        return self._from_summaries(nodes, restarts)

    def _window(self, node: str, now: datetime) -> tuple[datetime, datetime] | None:
        start = self._last.get(node, now - self.interval)
        return (start, now) if now > start else None

    def _from_metrics_api(
        self,
        nodes: dict[str, NodeCapacity],
        pods: dict[tuple[str, str], tuple[str, str]],
        restarts: Restarts,
    ) -> list[Message]:
        now = self.clock().replace(microsecond=0)
        windows = {n: w for n in nodes if (w := self._window(n, now)) is not None}
        try:
            node_metrics = self._get(f"{METRICS_API}/nodes")
            pod_metrics = self._get(f"{METRICS_API}/pods")
            batches = metrics_api_batches(
                self.cluster, node_metrics, pod_metrics, pods, nodes, windows, restarts
            )
        except (ApiException, HTTPError, OSError, ValueError, KeyError):
            self.failures["metrics.k8s.io"] += 1
            return []
        for batch in batches:
            self._last[batch.node] = now
        return [(Topic.METRICS, batch) for batch in batches]

    def _from_summaries(self, nodes: dict[str, NodeCapacity], restarts: Restarts) -> list[Message]:
        messages: list[Message] = []
        for node, capacity in sorted(nodes.items()):
            now = self.clock().replace(microsecond=0)
            window = self._window(node, now)
            if window is None:
                continue
            try:
                summary = self._get(f"/api/v1/nodes/{node}/proxy/stats/summary")
                batch = summary_batch(self.cluster, summary, capacity, *window, restarts)
            except (ApiException, HTTPError, OSError, ValueError, KeyError):
                self.failures[node] += 1
                continue
            self._last[node] = now
            messages.append((Topic.METRICS, batch))
        return messages

    def _metrics_api_served(self) -> bool:
        if self.source != "auto":
            return self.source == "metrics-api"
        now = self.clock()
        if self._served is None or now - self._served[0] >= self.recheck:
            try:
                self._get(METRICS_API)
                served = True
            except (ApiException, HTTPError, OSError, ValueError):
                served = False  # 404: not registered; 503: registered, not answering
            self._served = (now, served)
        return self._served[1]

    def _get(self, path: str) -> dict[str, Any]:
        return get_json(self.api, path, timeout=30, limiter=self.limiter)


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
