"""Container restarts per pod and hour, counted from the restart counter each scrape
carries (the kubelet's ``restartCount``): what the counter rose by since the
container's previous scrape, in the hour of the scrape that saw it (a counter that went
down is a new container instance: its whole count is new); and of those, the OOM kills:
a rise whose scrape says the container last terminated ``OOMKilled`` (several restarts
between two scrapes count as the last one's reason says).

Part of the cost processor's state: a container's scrapes all come from its node, so
they are in one partition, in order.

>>> from kubeopera.models import ContainerSamples, NodeCapacity, NodeUsage
>>> def scrape(minute: int, count: int) -> MetricBatch:
...     at = datetime(2026, 3, 2, 9, minute, tzinfo=UTC)
...     return MetricBatch(cluster="prod", node="n1", window_start=at,
...         window_end=at.replace(second=59), node_usage=NodeUsage(cpu_cores=1, memory_bytes=1),
...         node_capacity=NodeCapacity(cpu_cores=4, memory_bytes=8),
...         containers=ContainerSamples(namespace=["shop"], pod=["cart-1"], pod_uid=["u1"],
...             container=["app"], cpu_cores=[0.1], memory_working_set_bytes=[1.0],
...             memory_rss_bytes=[None], restarts=[count], cpu_throttled_ratio=[None]))
>>> counter = RestartCounter()
>>> counter.add([scrape(0, 4), scrape(1, 4), scrape(2, 7), scrape(3, 1)])  # 3, then a new one
>>> counter.due(datetime(2026, 3, 2, 10, tzinfo=UTC)).rows()  # doctest: +ELLIPSIS
[(datetime.datetime(2026, 3, 2, 9, 0, ...), 'prod', 'u1', 4, 0)]
"""

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import polars as pl

from kubeopera.models import MetricBatch
from kubeopera.streams.cost import HOUR_MS

FORGET_MS = 24 * HOUR_MS
"""How long a container not scraped is remembered: a day (its pod is gone by then);
only a scrape gap longer than that makes what is counted depend on batching."""
SCHEMA = pl.Schema(
    {
        "window_start": pl.Datetime("ms", "UTC"),
        "cluster": pl.String(),
        "pod_uid": pl.String(),
        "restarts": pl.Int64(),
        "oom_kills": pl.Int64(),
    }
)


class RestartCounter:
    def __init__(self) -> None:
        self._last: dict[tuple[str, str, str], tuple[int, int]] = {}  # -> (ms, count)
        # (hour ms, cluster, pod_uid) -> [restarts, of which after an OOM kill]
        self._counts: dict[tuple[int, str, str], list[int]] = {}

    def add(self, scrapes: Iterable[MetricBatch]) -> None:
        """New scrapes, in the order they were admitted."""
        for scrape in scrapes:
            ms = int(scrape.window_start.timestamp() * 1000)
            hour, cluster, samples = ms - ms % HOUR_MS, scrape.cluster, scrape.containers
            reasons = samples.last_terminated_reason or [None] * len(samples)
            for pod, container, count, reason in zip(
                samples.pod_uid, samples.container, samples.restarts, reasons, strict=True
            ):
                previous = self._last.get((cluster, pod, container))
                if previous is not None and ms <= previous[0]:
                    continue  # older than a scrape counted already
                self._last[(cluster, pod, container)] = (ms, count)
                if previous is None:
                    continue  # a container's first count is its past
                rise = count if count < previous[1] else count - previous[1]
                if rise:
                    counts = self._counts.setdefault((hour, cluster, pod), [0, 0])
                    counts[0] += rise
                    counts[1] += rise if reason == "OOMKilled" else 0

    def due(self, until: datetime) -> pl.DataFrame:
        """The restarts of the hours before ``until`` (``SCHEMA`` columns), forgotten
        here; containers not scraped for ``FORGET_MS`` before it are forgotten too (a
        container scraped again after longer, its restarts meanwhile are not counted)."""
        limit = int(until.timestamp() * 1000) if until.year < 9999 else 2**62
        due = sorted(k for k in self._counts if k[0] < limit)
        rows = [
            (datetime.fromtimestamp(h / 1000, UTC), c, p, *self._counts.pop((h, c, p)))
            for h, c, p in due
        ]
        self._last = {k: v for k, v in self._last.items() if v[0] >= limit - FORGET_MS}
        return pl.DataFrame(rows, schema=SCHEMA, orient="row")

    def to_json(self) -> dict[str, Any]:
        return {
            "last": sorted([*k, *v] for k, v in self._last.items()),
            "counts": sorted([*k, *v] for k, v in self._counts.items()),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "RestartCounter":
        counter = cls()
        counter._last = {(c, p, n): (ms, count) for c, p, n, ms, count in data["last"]}
        counter._counts = {(h, c, p): [n, oom] for h, c, p, n, oom in data["counts"]}
        return counter
