"""Hourly series: what the anomaly and budget processors read (topic ``series``).

The cost processor holds each cluster's scrapes in one partition (``metrics`` is keyed
by cluster), so when it closes an hour it knows the whole hour of each of the cluster's
series, and sends it as one point, keyed by the series (a repartition, as Kafka Streams
does before a group-by): every hour of a series comes to one partition of ``series``,
in order. A team's points from every cluster share a key (the team), so that its budget
sees them together.
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
    OOM_KILLS = "oom_kills"  # of those, the restarts after an OOM kill
    WARNINGS = "warnings"  # Warning Events about the workload or its pods in the hour


UNITS = {
    SeriesKind.COST: "USD",
    SeriesKind.CPU: "cores",
    SeriesKind.MEMORY: "bytes",
    SeriesKind.RESTARTS: "restarts",
    SeriesKind.OOM_KILLS: "OOM kills",
    SeriesKind.WARNINGS: "Warning Events",
}


class SeriesScope(StrEnum):
    """What a series is of, in one cluster: the cluster, a namespace, a team, the pods
    with a label's value, or a workload (top controller)."""

    CLUSTER = "cluster"
    NAMESPACE = "namespace"
    TEAM = "team"
    LABEL = "label"  # the pods with one value of a label (``label``: ``key=value``)
    WORKLOAD = "workload"


class SeriesPoint(Contract):
    """One hour of one series of one cluster (topic ``series``, key ``key()``), its
    ``value`` in the kind's unit (``UNITS``)."""

    kind: SeriesKind
    scope: SeriesScope
    cluster: str = Field(min_length=1)
    namespace: str = ""
    team: str = ""
    workload_kind: str = ""
    workload: str = ""
    label: str = ""  # ``key=value``, for the label scope
    window_start: UtcDatetime
    value: NonNegative

    def series_id(self) -> str:
        """``kind/scope/cluster/namespace/team/workload_kind/workload``, then
        ``/key=value`` for a label's series."""
        parts = (self.cluster, self.namespace, self.team, self.workload_kind, self.workload)
        return "/".join((self.kind, self.scope, *parts, *([self.label] if self.label else [])))

    def key(self) -> str:
        """The series, but a team's or a label's without the cluster: its clusters'
        points meet."""
        if self.scope == SeriesScope.TEAM:
            return f"{self.kind}/{self.scope}/{self.team}"
        if self.scope == SeriesScope.LABEL:
            return f"{self.kind}/{self.scope}/{self.label}"
        return self.series_id()

    def event_time(self) -> datetime:
        return self.window_start
