"""The drift processor: each object against its baselines (``streams.baselines``: the
declared manifests, the last approved state), as drift findings: opened when a field
drifts, changed when the drifted fields change, resolved when the object matches again
(or is deleted, or its baseline withdrawn).

Every object version is compared with the baselines valid at its time, and a baseline
recorded later with the object version live then, in event-time order: a baseline
recorded after the partition's latest object change waits (in the state) until the
partition's watermark passes it, as a window waits to close, however early the engine
learnt of it. So the findings depend neither on how the input is batched nor on when the
reference data arrived. A finding's ``first_seen`` is when its drift began;
``last_seen`` the last comparison that changed it.

Objects a controller made (those with an owner: Pods, ReplicaSets, Jobs of a CronJob)
are nobody's declaration and are not compared.

State: for each live object of the partition (the ``objects`` topic is keyed by object),
its last version without status and bookkeeping, its field managers (to leave out, by
``ignore_differences``, a field an autoscaler manages) and its verdict for each
baseline, forgotten when the object is deleted; and the baselines waiting for the
watermark. It grows with live objects, not with history.
"""

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import from_json, to_json

from kubeopera.models import (
    Baseline,
    BaselineKind,
    ChangeType,
    Finding,
    FindingKind,
    FindingStatus,
    ObjectChange,
    Severity,
    Subject,
    Topic,
)
from kubeopera.models.objects import FieldManager
from kubeopera.streams.baselines import PeerGroup
from kubeopera.streams.drift import PER_CLUSTER, WORKLOADS, Drift, against
from kubeopera.streams.entries import Entries
from kubeopera.streams.ignore_differences import (
    IgnoreDifferences,
    autoscaled_replicas,
    ignored,
    latest,
    owners,
)
from kubeopera.streams.object_diff import comparable
from kubeopera.streams.processor import Batch, Output, Table
from kubeopera.streams.reference import Reference
from kubeopera.streams.registry import register
from kubeopera.streams.watermark import END_OF_INPUT

SERIOUS = {"image", "RBAC rules"}
"""Categories of drift that make a finding high severity (what runs, who may do what)."""


class Across(BaseModel):
    """Clusters (or environments) that run the same objects: the first one's live objects
    of these kinds are the peer baselines of the others' (the same namespace, kind and
    name)."""

    model_config = ConfigDict(extra="forbid")

    clusters: list[str] = Field(min_length=2)
    kinds: list[str] = Field(default_factory=lambda: list(WORKLOADS))

    @field_validator("clusters")
    @classmethod
    def _distinct(cls, clusters: list[str]) -> list[str]:
        if len(set(clusters)) != len(clusters):
            raise ValueError("a cluster is named twice")
        return clusters


class DriftSettings(BaseModel):
    """The ``drift:`` section."""

    model_config = ConfigDict(extra="forbid")

    ignore_differences: list[IgnoreDifferences] = Field(default_factory=autoscaled_replicas)
    across: list[Across] = Field(default_factory=list)


@dataclass
class DriftState:
    """``objects``: object key -> its last version, field managers and verdicts, as
    JSON, saved entry by entry (``processor.KeepsEntries``). ``pending``: baselines
    recorded after ``clock`` (the partition's latest object change), as (recorded at,
    POSIX seconds; object key; baseline JSON), in time order. ``compared``: how far the
    reference's baselines have been taken in (``Baselines.changed``)."""

    objects: Entries = field(default_factory=Entries)
    pending: list[tuple[float, str, str]] = field(default_factory=list)
    clock: datetime | None = None
    compared: tuple[str, int] | None = None


@dataclass(frozen=True)
class _Step:
    """One comparison to make, in time order: an object version, or a baseline recorded
    since the object's last comparison with its kind."""

    at: datetime
    change: ObjectChange | None = None
    baseline: Baseline | None = None


@register
class DriftDetector:
    name: ClassVar[str] = "drift"
    Settings: ClassVar[type[BaseModel]] = DriftSettings
    topics: ClassVar[frozenset[Topic]] = frozenset({Topic.OBJECTS})
    reference_topics: ClassVar[frozenset[Topic]] = frozenset({Topic.BASELINES})
    tables: ClassVar[tuple[Table, ...]] = ()  # findings only

    def __init__(self, settings: DriftSettings | None = None) -> None:
        self.settings = settings or DriftSettings()

    def new_state(self) -> DriftState:
        return DriftState()

    def entries(self, state: DriftState) -> Entries:
        return state.objects

    def prepare(self, reference: Reference) -> None:
        """The reference keeps the ``across`` groups' leading objects as peer baselines."""
        reference.peer_groups = [
            PeerGroup(tuple(group.clusters), frozenset(group.kinds))
            for group in self.settings.across
        ]

    def process(self, batch: Batch, reference: Reference, state: DriftState) -> Output:
        """Findings for the batch's object versions and for the baselines recorded before
        its latest one (later ones wait: ``close``). Counts ``drift_findings``."""
        changes = [c for c in batch.of(ObjectChange) if not c.owner_chain]  # see above
        state.clock = max([c.observed_at for c in changes], default=state.clock)
        changed, state.compared = reference.baselines.changed(state.compared)
        self._hold({c.key() for c in changes} | (state.objects.keys() & changed), reference, state)
        steps: dict[str, list[_Step]] = {}
        for change in changes:
            steps.setdefault(change.key(), []).append(_Step(change.observed_at, change=change))
        for key, baseline in self._due(state, state.clock):
            steps.setdefault(key, []).append(_Step(baseline.recorded_at, baseline=baseline))
        output = Output()
        for key, ordered in steps.items():
            # At one instant the object's version first: it is compared with the
            # baselines valid then, those recorded at that instant included (a rollout
            # and its declaration arrive together, and are no drift even for a moment).
            for step in sorted(ordered, key=lambda s: (s.at, s.change is None)):
                output.findings.extend(self._step(key, step, reference, state))
        output.counts["drift_findings"] = len(output.findings)
        return output

    def _hold(self, keys: set[str], reference: Reference, state: DriftState) -> None:
        """Add to the pending baselines each version of ``keys``' baselines recorded
        after the one its verdict last compared with (and not pending already)."""
        held = set(state.pending)
        for key in keys & reference.baselines.keys():
            verdicts = from_json(state.objects[key])["verdicts"] if key in state.objects else {}
            for kind in reference.baselines.kinds(key):
                since = verdicts.get(kind, {}).get("baseline_at")
                for baseline in reference.baselines.versions(key, kind):
                    if since is None or baseline.recorded_at > datetime.fromisoformat(since):
                        entry = (baseline.recorded_at.timestamp(), key, baseline.model_dump_json())
                        if entry not in held:
                            state.pending.append(entry)
                            held.add(entry)
        state.pending.sort()

    @staticmethod
    def _due(state: DriftState, until: datetime | None) -> list[tuple[str, Baseline]]:
        """The pending baselines recorded before ``until``, taken out of the state. At
        ``until`` itself more of the partition's changes may come (another cluster's
        change makes a peer baseline at the instant of this one's own change): a
        baseline of that instant waits until the partition has moved past it."""
        limit = until.timestamp() if until is not None else float("-inf")
        due = [(k, Baseline.model_validate_json(t)) for at, k, t in state.pending if at < limit]
        state.pending = [p for p in state.pending if p[0] >= limit]
        return due

    def _step(
        self, key: str, step: _Step, reference: Reference | None, state: DriftState
    ) -> list[Finding]:
        """One comparison: an object version with the baselines valid at its time (from
        ``reference``), or a baseline (``step.baseline``) with the object's version."""
        objects, change = state.objects, step.change
        if change is not None and change.change == ChangeType.DELETED:
            entry = from_json(objects.pop(key)) if key in objects else None
            return self._resolve_all(entry, step.at) if entry else []
        if key not in objects and change is None:
            return []  # a baseline of an object not seen (yet)
        if key in objects:
            entry = from_json(objects[key])
        else:
            assert change is not None and reference is not None
            entry = _entry(change, reference)
        at = max(step.at, datetime.fromisoformat(entry["at"])) if entry["at"] else step.at
        entry["at"] = at.isoformat()
        if change is not None:
            entry["object"] = comparable(change.object)
            entry["managers"] = [m.model_dump(mode="json") for m in change.field_managers]
        compared: list[tuple[BaselineKind, Baseline | None]]
        if step.baseline is not None:
            compared = [(step.baseline.baseline, step.baseline)]
        else:
            assert reference is not None
            compared = [(k, reference.baselines.valid(key, k, at)) for k in BaselineKind]
        found = [
            finding
            for kind, baseline in compared
            if (finding := self._compare(entry, kind, baseline, at))
        ]
        objects[key] = to_json(entry).decode()
        return found

    def _compare(
        self, entry: dict[str, Any], kind: BaselineKind, baseline: Baseline | None, at: datetime
    ) -> Finding | None:
        """The finding that comparing ``entry``'s object with ``baseline`` opens, changes
        or resolves (None: nothing new)."""
        verdict = entry["verdicts"].setdefault(kind, {"first_seen": None, "digest": None})
        if baseline is not None:
            verdict["baseline_at"] = baseline.recorded_at.isoformat()
            if baseline.object is None:  # withdrawn
                baseline = None
        drift = self._drift(entry, baseline) if baseline is not None else []
        if not drift:
            if verdict["first_seen"] is None:
                return None
            finding = _finding(entry, kind, verdict, [], at, "matches" if baseline else "withdrawn")
            verdict.update(first_seen=None, digest=None)
            return finding
        digest = hashlib.sha256(json.dumps([d.as_dict() for d in drift]).encode()).hexdigest()
        if verdict["digest"] == digest:
            return None
        verdict.update(first_seen=verdict["first_seen"] or at.isoformat(), digest=digest)
        verdict["origin"] = baseline.origin  # type: ignore[union-attr]
        return _finding(entry, kind, verdict, drift, at)

    def _drift(self, entry: dict[str, Any], baseline: Baseline) -> list[Drift]:
        managers = [FieldManager.model_validate(m) for m in entry["managers"]]
        kind, rules = entry["subject"]["kind"], self.settings.ignore_differences
        declared = baseline.baseline == BaselineKind.DECLARED
        per_cluster = PER_CLUSTER if baseline.baseline == BaselineKind.PEER else ()
        return [
            d
            for d in against(baseline.object or {}, entry["object"], declared, per_cluster)
            if not ignored(rules, kind, _manager(managers, d.path), d.path)
        ]

    def _resolve_all(self, entry: dict[str, Any], at: datetime) -> list[Finding]:
        return [
            _finding(entry, BaselineKind(kind), verdict, [], at, "deleted")
            for kind, verdict in sorted(entry["verdicts"].items())
            if verdict["first_seen"] is not None
        ]

    def close(self, state: DriftState, watermark: datetime) -> Output:
        """Findings for the pending baselines the watermark has passed."""
        output = Output()
        for key, baseline in self._due(state, watermark):
            step = _Step(baseline.recorded_at, baseline=baseline)
            output.findings.extend(self._step(key, step, None, state))
        output.counts["drift_findings"] = len(output.findings)
        return output

    def horizon(self, state: DriftState) -> datetime | None:
        return END_OF_INPUT  # baselines it still needs are in its state

    def state_to_bytes(self, state: DriftState) -> bytes:
        """The pending baselines and the clock (the objects are entries; ``compared``
        stays: a restarted engine's reference is another)."""
        clock = state.clock.isoformat() if state.clock else None
        return to_json({"pending": state.pending, "clock": clock})

    def state_from_bytes(self, data: bytes) -> DriftState:
        if not data:
            return DriftState()
        saved = from_json(data)
        clock = datetime.fromisoformat(saved["clock"]) if saved["clock"] else None
        pending = [(at, key, text) for at, key, text in saved["pending"]]
        return DriftState(Entries(), pending, clock)


def _entry(change: ObjectChange, reference: Reference) -> dict[str, Any]:
    """A new object's state; the drift the store holds open for it (an embedded run
    starts with no state) is taken as known, so that it resolves, or stays open since
    its first time seen: when this version comes after the finding's last state (an
    earlier one is the same history again, which finds the same by itself)."""
    subject = Subject(
        cluster=change.cluster, namespace=change.namespace, kind=change.kind, name=change.name
    )
    verdicts = {
        kind: {"first_seen": known.first_seen.isoformat(), "digest": None,
               "origin": known.evidence.get("origin", "")}
        for kind in BaselineKind
        if (known := reference.open_findings.get(fingerprint(kind, subject))) is not None
        and change.observed_at >= known.last_seen
    }  # fmt: skip
    return {"subject": subject.model_dump(), "verdicts": verdicts, "at": None}


def _manager(managers: list[FieldManager], path: str) -> str | None:
    who = latest(owners(managers, path))
    return who.manager if who else None


def fingerprint(kind: BaselineKind, subject: Subject) -> str:
    """The drift finding's fingerprint: the same for an object and baseline kind across
    restarts, versions and re-creations of the object."""
    key = f"drift/{kind}/{subject.cluster}/{subject.kind}/{subject.namespace}/{subject.name}"
    return hashlib.sha256(key.encode()).hexdigest()[:32]


RESOLVED = {
    "matches": "{what} {where} matches {baseline} again",
    "withdrawn": "{what} {where} has no {kind} baseline any more: the drift no longer counts",
    "deleted": "{what} {where} was deleted: the drift from {baseline} no longer counts",
}
"""A resolved finding's summary, by why it resolved."""


def _finding(
    entry: dict[str, Any],
    kind: BaselineKind,
    verdict: dict[str, Any],
    drift: list[Drift],
    at: datetime,
    resolved: str = "matches",
) -> Finding:
    """The finding's state: open with ``drift``, else resolved (``RESOLVED``: why)."""
    subject = Subject.model_validate(entry["subject"])
    what = f"{subject.kind} {subject.namespace + '/' if subject.namespace else ''}{subject.name}"
    where = f"in {subject.cluster}"
    baseline = (
        f"the same object in {verdict.get('origin', '')}"
        if kind == BaselineKind.PEER
        else f"its {kind} baseline"
    )
    if drift:
        categories = sorted({d.category for d in drift})
        fields = "1 field" if len(drift) == 1 else f"{len(drift)} fields"
        summary = f"{what} {where} drifted from {baseline}: {fields} ({', '.join(categories)})"
    else:
        summary = RESOLVED[resolved].format(what=what, where=where, baseline=baseline, kind=kind)
    return Finding(
        kind=FindingKind.DRIFT,
        severity=Severity.HIGH if SERIOUS & {d.category for d in drift} else Severity.MEDIUM,
        subject=subject,
        fingerprint=fingerprint(kind, subject),
        first_seen=datetime.fromisoformat(verdict["first_seen"]),
        last_seen=at,
        status=FindingStatus.OPEN if drift else FindingStatus.RESOLVED,
        summary=summary,
        evidence={
            "baseline": str(kind),
            "origin": verdict.get("origin", ""),
            "entries": [d.as_dict() for d in drift],
        },
        remediation=_remediation(kind, subject, verdict.get("origin", "")) if drift else None,
    )


def _remediation(kind: BaselineKind, subject: Subject, origin: str) -> str:
    if kind == BaselineKind.DECLARED:
        return f"Re-apply the declared manifest ({origin}), or declare the live state there."
    if kind == BaselineKind.PEER:
        return (
            f"Make it match {origin}, or leave the difference out (drift.ignore_differences): "
            f"kubeopera drift --across {origin},{subject.cluster}"
        )
    scope = f"--cluster {subject.cluster}"
    if subject.namespace:
        scope += f" --namespace {subject.namespace}"
    return (
        "Revert the change, or approve it: kubeopera drift approve "
        f"{scope} --kind {subject.kind} --name {subject.name}"
    )
