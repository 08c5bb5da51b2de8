"""The drift baselines as reference data: every object's declared and approved
baselines, each a timeline (``streams.timeline``) from the time it was recorded, so an
object version is compared with the baseline valid at its time however the input is
batched.

>>> from datetime import UTC, datetime
>>> from kubeopera.models import Baseline, BaselineKind
>>> def approved(hour: int, replicas: int) -> Baseline:
...     return Baseline(baseline=BaselineKind.APPROVED, origin="ops", cluster="prod",
...         api_version="apps/v1", kind="Deployment", namespace="shop", name="web",
...         object={"spec": {"replicas": replicas}},
...         recorded_at=datetime(2026, 3, 2, hour, tzinfo=UTC))
>>> baselines = Baselines()
>>> baselines.apply([approved(9, 2), approved(12, 3), approved(13, 3)])
True
>>> key = "prod/Deployment/shop/web"
>>> [b.object for b in baselines.versions(key, BaselineKind.APPROVED)]
[{'spec': {'replicas': 2}}, {'spec': {'replicas': 3}}]
>>> baselines.valid(key, BaselineKind.APPROVED, datetime(2026, 3, 2, 8, tzinfo=UTC)) is None
True
"""

import uuid
from collections.abc import Iterable, KeysView
from dataclasses import dataclass, field
from datetime import datetime

from kubeopera.models import Baseline, BaselineKind, ChangeType, ObjectChange
from kubeopera.streams.object_diff import comparable
from kubeopera.streams.timeline import Timeline, prune, record


def _same(a: Baseline, b: Baseline) -> bool:
    """The same baseline recorded again: no change."""
    return a.object == b.object and a.origin == b.origin


@dataclass
class Baselines:
    """Object key (``cluster/kind/namespace/name``) -> baseline kind -> timeline; and
    the keys in the order their baselines changed (``changed``)."""

    _timelines: dict[str, dict[BaselineKind, Timeline[Baseline]]] = field(default_factory=dict)
    _log: list[str] = field(default_factory=list)
    epoch: str = field(default_factory=lambda: uuid.uuid4().hex)
    """Names this instance's log: a position in another's (a restarted engine's) means
    nothing here."""

    def apply(self, baselines: Iterable[Baseline]) -> bool:
        """Record each baseline from its time; returns whether any was new."""
        changed = False
        for baseline in baselines:
            kinds = self._timelines.setdefault(baseline.object_key(), {})
            timeline = kinds.setdefault(baseline.baseline, [])
            if record(timeline, baseline.recorded_at, baseline, _same):
                self._log.append(baseline.object_key())
                changed = True
        return changed

    def changed(self, since: tuple[str, int] | None) -> tuple[set[str], tuple[str, int]]:
        """The objects whose baselines changed since position ``since`` (``(epoch,
        index)`` as this returned it before; None, or another epoch's: every object with
        a baseline), and the position now."""
        now = (self.epoch, len(self._log))
        if since is None or since[0] != self.epoch:
            return set(self._timelines), now
        return set(self._log[since[1] :]), now

    def keys(self) -> KeysView[str]:
        """The objects that have a baseline."""
        return self._timelines.keys()

    def kinds(self, key: str) -> list[BaselineKind]:
        return sorted(self._timelines.get(key, {}))

    def versions(self, key: str, kind: BaselineKind) -> list[Baseline]:
        """Every recorded version of the object's baseline of ``kind``, oldest first."""
        return [b for _, b in self._timelines.get(key, {}).get(kind, [])]

    def valid(self, key: str, kind: BaselineKind, at: datetime) -> Baseline | None:
        """The baseline valid at ``at``: None before the first was recorded (or when the
        one valid withdrew it: ``object`` None)."""
        found = None
        for since, baseline in self._timelines.get(key, {}).get(kind, []):
            if since > at:
                break
            found = baseline
        return found if found is not None and found.object is not None else None

    def forget_before(self, horizon: datetime) -> None:
        """Drop baselines superseded before ``horizon``; the one valid then stays."""
        for kinds in self._timelines.values():
            for timeline in kinds.values():
                prune(timeline, horizon)


@dataclass(frozen=True)
class PeerGroup:
    """Clusters (or environments) that run the same objects: the first one's live
    objects of ``kinds`` (all kinds when empty) are the peer baselines of the others'."""

    clusters: tuple[str, ...]
    kinds: frozenset[str] = frozenset()

    def leads(self, cluster: str, kind: str) -> bool:
        """Whether an object of ``kind`` in ``cluster`` is a baseline for the others."""
        return cluster == self.clusters[0] and (not self.kinds or kind in self.kinds)


def peer_baselines(change: ObjectChange, groups: Iterable[PeerGroup]) -> list[Baseline]:
    """The peer baselines an object change of a group's first cluster gives its other
    clusters (its deletion withdraws them; an object a controller made gives none).

    >>> from datetime import UTC, datetime
    >>> change = ObjectChange(cluster="prod", api_version="v1", kind="ConfigMap",
    ...     namespace="shop", name="web", uid="u1", observed_at=datetime(2026, 3, 2, tzinfo=UTC),
    ...     change="ADDED", object={"metadata": {"name": "web"}, "data": {"LEVEL": "info"}})
    >>> [(b.cluster, b.origin, b.object) for b in peer_baselines(change, [
    ...     PeerGroup(("prod", "staging"))])]
    [('staging', 'prod', {'metadata': {'name': 'web'}, 'data': {'LEVEL': 'info'}})]
    """
    if change.owner_chain:
        return []
    gone = change.change == ChangeType.DELETED
    return [
        Baseline(
            baseline=BaselineKind.PEER, origin=change.cluster, cluster=cluster,
            api_version=change.api_version, kind=change.kind, namespace=change.namespace,
            name=change.name, object=None if gone else comparable(change.object),
            recorded_at=change.observed_at,
        )
        for group in groups
        if group.leads(change.cluster, change.kind)
        for cluster in group.clusters[1:]
    ]  # fmt: skip
