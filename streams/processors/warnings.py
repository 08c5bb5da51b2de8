"""The Warning Events processor: how many Warning Events each workload and its pods had
in each hour, as a ``series`` point for the anomaly processor (a crash-looping release,
a scheduling storm).

An Event repeats by counting (``count`` rises, ``last_time`` moves): an update counts
what the count rose by; an Event first seen counts once (a relist of an old Event brings
no flood). Events about a Pod count for its top controller (from the pods the reference
data holds, when the hour closes); about a workload (Deployment, StatefulSet, DaemonSet,
Job, CronJob), for itself; others (Nodes, ReplicaSets, ...) are no workload's. The
``events`` topic is keyed by cluster, so a workload's Events are all in one partition
and each hour is whole there. Hours close with the partition's watermark (the Events' ``last_time``)
past their end by the allowed lateness; a later occurrence is a dead letter saying so.
Each hour, every workload of a cluster this partition has had Events of since (its pods
that existed then, from the reference data) is sent, 0 when it had no Warning: the
detector learns quiet hours too, so a workload's first burst of Warnings stands out;
a workload gone keeps being sent for ``remember_days`` after its last Warning.

State: the open hours' counts, each Event's last count (for as long as its hour can
still take one), the workloads that had Warnings and when last, the clusters seen.
"""

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from kubeopera.models import KubeEvent, Message, SeriesKind, SeriesPoint, SeriesScope, Topic
from kubeopera.streams.cost import hour_of
from kubeopera.streams.processor import Batch, Output, Table
from kubeopera.streams.reference import Reference
from kubeopera.streams.registry import register
from kubeopera.streams.watermark import END_OF_INPUT
from kubeopera.streams.windows import HOUR

WORKLOAD_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"})

Workload = tuple[str, str, str, str]  # cluster, namespace, kind, name


class WarningSettings(BaseModel):
    """The ``warnings:`` section."""

    model_config = ConfigDict(extra="forbid")

    allowed_lateness_minutes: int = Field(default=10, ge=0)
    remember_days: int = Field(default=7, ge=1)


@dataclass
class WarningState:
    """``open``: (hour, what the Warnings were about: cluster, namespace, kind, uid or
    name) -> Warnings; ``counts``: Event (cluster/namespace/uid or name) -> its last
    count and last time; ``seen``: workload -> the last hour it had
    a Warning; ``closed_until``: the hours before are closed; ``latest``: the latest
    Event time taken."""

    open: dict[tuple[datetime, Workload], int] = field(default_factory=dict)
    counts: dict[str, tuple[int, datetime]] = field(default_factory=dict)
    seen: dict[Workload, datetime] = field(default_factory=dict)
    closed_until: datetime | None = None
    latest: datetime | None = None  # the latest Event time taken (any type)
    # cluster -> the hour of its first Event: its workloads are sent from then
    clusters: dict[str, datetime] = field(default_factory=dict)
    since: datetime | None = None  # the hour of the earliest Event taken: the first sent


@register
class WarningEvents:
    name: ClassVar[str] = "warnings"
    Settings: ClassVar[type[BaseModel]] = WarningSettings
    topics: ClassVar[frozenset[Topic]] = frozenset({Topic.EVENTS})
    tables: ClassVar[tuple[Table, ...]] = ()  # series points only

    def __init__(self, settings: WarningSettings | None = None) -> None:
        self.settings = settings or WarningSettings()
        self._lateness = timedelta(minutes=self.settings.allowed_lateness_minutes)
        self._reference: Reference | None = None

    def new_state(self) -> WarningState:
        return WarningState()

    def prepare(self, reference: Reference) -> None:
        """Keep the reference: the workloads of an hour are read from it as the hour
        closes (``processor.PreparesReference``)."""
        self._reference = reference

    def _closed_at(self, state: WarningState, watermark: datetime | None) -> datetime | None:
        due = hour_of(watermark - self._lateness) if watermark else None
        return max((c for c in (state.closed_until, due) if c is not None), default=None)

    def process(self, batch: Batch, reference: Reference, state: WarningState) -> Output:
        """Count each Warning's new occurrences in its hour, for what it is about (the
        workload is named when the hour closes)."""
        output = Output()
        for envelope in batch.envelopes:
            event = envelope.message
            assert isinstance(event, KubeEvent)
            closed = self._closed_at(state, envelope.watermark)
            key = f"{event.cluster}/{event.namespace}/{event.uid or event.name}"
            known = state.counts.get(key)
            if known is not None and closed is not None and known[1] < closed - HOUR:
                known = None  # as if pruned (``close`` forgets these): whatever the batching
            if known is not None and event.count <= known[0] and event.last_time <= known[1]:
                output.duplicates += 1  # an update seen before
                continue
            if closed is not None and event.last_time < closed:
                if event.type == "Warning":
                    reason = (
                        f"late Warning Event: {key} at {event.last_time.isoformat()} belongs "
                        f"to an hour closed at {closed.isoformat()} (allowed lateness "
                        f"{self._lateness})"
                    )
                    output.dead_letters.append(envelope.reject(reason))
                continue
            hour = hour_of(event.last_time)
            state.clusters[event.cluster] = min(hour, state.clusters.get(event.cluster, hour))
            state.since = min(hour, state.since or hour)
            state.latest = max(event.last_time, state.latest or event.last_time)
            if event.type != "Warning":
                continue
            count = max(event.count, known[0]) if known else event.count
            state.counts[key] = (
                count,
                max(event.last_time, known[1]) if known else event.last_time,
            )
            rise = 1 if known is None else max(event.count - known[0], 0)
            if rise:
                involved = event.involved
                slot = (hour, (event.cluster, event.namespace, involved.kind,
                               involved.uid or involved.name))  # fmt: skip
                state.open[slot] = state.open.get(slot, 0) + rise
        return output

    def close(self, state: WarningState, watermark: datetime) -> Output:
        """The hours ``watermark`` closed (at the end of input: to the latest Event's),
        in order: a point for each workload with Warnings in it, and 0 for each other
        workload that had one in the ``remember_days`` before."""
        if watermark >= END_OF_INPUT:
            if state.latest is None:
                return Output()
            watermark = state.latest + HOUR + self._lateness
        until = self._closed_at(state, watermark)
        if until is None or (state.closed_until is not None and until <= state.closed_until):
            return Output()
        if state.since is None:
            return Output()
        start = max(state.closed_until or state.since, state.since)
        points: list[Message] = []
        for hour in _hours(start, until):
            counted: dict[Workload, int] = {}
            for slot in [slot for slot in state.open if slot[0] == hour]:
                workload = self._workload(slot[1])
                if workload is not None:
                    counted[workload] = counted.get(workload, 0) + state.open[slot]
                del state.open[slot]
            state.seen.update((w, hour) for w in counted)
            forget = hour - timedelta(days=self.settings.remember_days)
            state.seen = {w: at for w, at in state.seen.items() if at > forget}
            live = {
                (cluster, *workload)
                for cluster, first in state.clusters.items()
                if first <= hour
                for workload in self._reference.inventory.workloads(cluster, hour)
            } if self._reference else set()  # fmt: skip
            for workload in sorted(live | set(state.seen)):
                cluster, namespace, kind, name = workload
                points.append((Topic.SERIES, SeriesPoint(
                    kind=SeriesKind.WARNINGS, scope=SeriesScope.WORKLOAD, cluster=cluster,
                    namespace=namespace, workload_kind=kind, workload=name, window_start=hour,
                    value=float(counted.get(workload, 0)),
                )))  # fmt: skip
        state.counts = {k: v for k, v in state.counts.items() if v[1] >= until - HOUR}
        state.closed_until = until
        return Output(messages=points)

    def _workload(self, involved: Workload) -> Workload | None:
        """The workload an Event is about (cluster, namespace, kind, uid or name): a Pod's
        top controller, a workload itself, else none."""
        cluster, namespace, kind, which = involved
        if kind == "Pod":
            found = (
                self._reference.inventory.controller(cluster, which) if self._reference else None
            )
            return (cluster, namespace, *found) if found else None
        return involved if kind in WORKLOAD_KINDS else None

    def horizon(self, state: WarningState) -> datetime | None:
        """It asks nothing to be kept: it names a Pod's controller from its latest
        version, and a pod the cost processor no longer needs (deleted before its closed
        hours) is one whose Warnings have come."""
        return END_OF_INPUT

    def state_to_bytes(self, state: WarningState) -> bytes:
        return json.dumps(
            {
                "open": sorted([h.isoformat(), *w, n] for (h, w), n in state.open.items()),
                "counts": sorted([k, n, t.isoformat()] for k, (n, t) in state.counts.items()),
                "seen": sorted([*w, t.isoformat()] for w, t in state.seen.items()),
                "closed_until": state.closed_until.isoformat() if state.closed_until else None,
                "latest": state.latest.isoformat() if state.latest else None,
                "clusters": sorted([c, t.isoformat()] for c, t in state.clusters.items()),
                "since": state.since.isoformat() if state.since else None,
            }
        ).encode()

    def state_from_bytes(self, data: bytes) -> WarningState:
        saved = json.loads(data)
        return WarningState(
            open={(_at(h), (c, ns, k, n)): v for h, c, ns, k, n, v in saved["open"]},
            counts={k: (n, _at(t)) for k, n, t in saved["counts"]},
            seen={(c, ns, k, n): _at(t) for c, ns, k, n, t in saved["seen"]},
            closed_until=_at(saved["closed_until"]) if saved["closed_until"] else None,
            latest=_at(saved["latest"]) if saved["latest"] else None,
            clusters={c: _at(t) for c, t in saved["clusters"]},
            since=_at(saved["since"]) if saved["since"] else None,
        )


def _hours(start: datetime, until: datetime) -> list[datetime]:
    """The hours from ``start`` to ``until``."""
    return [start + n * HOUR for n in range(int((until - start) / HOUR))]


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)
