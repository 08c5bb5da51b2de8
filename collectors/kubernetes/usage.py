"""Usage from the kubelet summary API (``/stats/summary``, reached through the API
server's node proxy) as one ``MetricBatch`` per node scrape.

The summary reports instantaneous CPU (nanocores) and memory (working set, RSS) per
container and for the node, and used/capacity of each PVC-backed volume.
"""

from datetime import datetime
from typing import Any

from kubeopera.models import MetricBatch
from kubeopera.models.metrics import ContainerSamples, NodeCapacity, NodeUsage, PvcSamples

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
