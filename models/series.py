"""Hourly series: what the anomaly and budget processors read (topic ``series``).

A processor that closes an hour of its own source partition (the cost processor: a
partition's nodes) publishes each node's share of each series for that hour as one
point, keyed by the series, so that every share of a series lands in one partition of the
``series`` topic (a repartition, as Kafka Streams does before a group-by). The
consumer adds up the shares of an hour (one per ``source``) once the hour is complete.
"""

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from kubeopera.models.base import Contract, NonNegative, UtcDatetime


class SeriesKind(StrEnum):
    """What a series measures, and its unit."""

    COST = "cost"  # USD in the hour (allocation plus idle for a cluster)
    CPU = "cpu"  # cores used, the hour's mean
    MEMORY = "memory"  # bytes of working set, the hour's mean
    RESTARTS = "restarts"  # container restarts in the hour


UNITS = {
    SeriesKind.COST: "USD",
    SeriesKind.CPU: "cores",
    SeriesKind.MEMORY: "bytes",
    SeriesKind.RESTARTS: "restarts",
}


class SeriesScope(StrEnum):
    """What a series is of: a cluster, a namespace of a cluster, a team across the fleet,
    or a workload (top controller)."""

    CLUSTER = "cluster"
    NAMESPACE = "namespace"
    TEAM = "team"
    WORKLOAD = "workload"


class SeriesPoint(Contract):
    """One source's share of one series in one hour (topic ``series``, key
    ``series_id``). ``value`` in the kind's unit (``UNITS``); ``source`` names what the
    share is of (a node: ``cluster/node``): the shares of an hour add up, and a share
    sent twice counts once."""

    kind: SeriesKind
    scope: SeriesScope
    cluster: str = ""  # "" for a team, whose series spans the fleet
    namespace: str = ""
    team: str = ""
    workload_kind: str = ""
    workload: str = ""
    window_start: UtcDatetime
    value: NonNegative
    source: str = Field(min_length=1)

    def series_id(self) -> str:
        """``kind/scope/cluster/namespace/team/workload_kind/workload``."""
        parts = (self.cluster, self.namespace, self.team, self.workload_kind, self.workload)
        return "/".join((self.kind, self.scope, *parts))

    def key(self) -> str:
        return self.series_id()

    def event_time(self) -> datetime:
        return self.window_start
