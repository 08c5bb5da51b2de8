"""The anomaly processor: every hourly series (``series`` topic: cost per cluster,
namespace and team; CPU, memory and restarts per workload) scored online by a river
anomaly detector, hour by hour as they arrive, into ``series_hourly`` (value, expected
band, score) and anomaly findings: one per episode, opened when an hour scores at or
above the threshold, resolved at the first hour back below it.

The detector is any of ``streams.detectors.NAMES`` or any of river's own unsupervised
detectors by class name (``river.anomaly.HalfSpaceTrees``), built with
``detector_params``; the default is the seasonal detector scoring rises only (a cost
that falls is no alarm) at the threshold that scored best on NAB's realKnownCause
(``kubeopera anomalies eval``), and for restarts a deviation of at least one restart
(``params_by_kind``: a single restart is no storm). A series opens no finding before it has
``warm_up_hours`` of history: a detector that has not seen a day cannot know its
morning ramp.

State, per series: the detector (pickled, as river models are saved) and what it was
built from, the last hour scored (an hour seen again, sent twice, counts once), hours
seen, the recent history and the open episode; an entry each
(``processor.KeepsEntries``), so it grows with the series, not with their history. A
finding's fingerprint is the series': an episode that ends and a later one are the same
alert firing again, as in Alertmanager.
"""

import hashlib
import json
import statistics
from datetime import UTC, datetime
from typing import Any, ClassVar

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, model_validator

from kubeopera.models import (
    UNITS,
    Finding,
    FindingKind,
    FindingStatus,
    SeriesKind,
    SeriesPoint,
    Severity,
    Topic,
)
from kubeopera.streams.detectors import build_detector
from kubeopera.streams.entries import Entries, pickled, unpickled
from kubeopera.streams.processor import Batch, KeptAsEntries, Output, Table
from kubeopera.streams.reference import Reference
from kubeopera.streams.registry import register
from kubeopera.streams.series import subject_of, title

SERIES_HOURLY = Table(
    "series_hourly", ("cluster", "namespace", "series_id", "window_start"), "window_start"
)


KIND_DEFAULTS: dict[str, dict[SeriesKind, dict[str, Any]]] = {
    "seasonal": {
        SeriesKind.RESTARTS: {"min_deviation": 1.0},
        SeriesKind.OOM_KILLS: {"min_deviation": 1.0},
        SeriesKind.WARNINGS: {"min_deviation": 1.0},
    },
}
"""Per-kind parameters a detector gets unless ``params_by_kind`` says otherwise: for the
seasonal detector, counts (restarts, OOM kills, Warnings) deviate by one at least (a
single restart of a workload that never restarts is no storm)."""


class AnomalySettings(BaseModel):
    """The ``anomalies:`` section."""

    model_config = ConfigDict(extra="forbid")

    detector: str = "seasonal"
    detector_params: dict[str, Any] = Field(default_factory=dict)
    params_by_kind: dict[SeriesKind, dict[str, Any]] | None = None
    threshold: float = Field(default=0.99998, gt=0, lt=1)
    warm_up_hours: int = Field(default=24, ge=0)
    history_hours: int = Field(default=24, ge=1, le=168)
    kinds: list[SeriesKind] = Field(default_factory=lambda: list(SeriesKind))

    @model_validator(mode="after")
    def _detector_builds(self) -> "AnomalySettings":
        for kind in SeriesKind:  # raises ValueError, saying why
            build_detector(self.detector, self.params(kind))
        return self

    def params(self, kind: SeriesKind) -> dict[str, Any]:
        """The detector's parameters for series of ``kind``: ``detector_params``, then
        ``params_by_kind`` (when not given, the detector's own per-kind defaults:
        ``KIND_DEFAULTS``)."""
        by_kind = self.params_by_kind
        if by_kind is None:
            by_kind = KIND_DEFAULTS.get(self.detector, {})
        return {**self.detector_params, **by_kind.get(kind, {})}


@register
class AnomalyDetection(KeptAsEntries):
    """State: series id -> its entry (JSON: ``detector``, ``pickled``; ``made``, what it
    was built from; ``last`` hour scored; ``hours`` seen; ``history``, [hours since
    1970, value to six figures] pairs; ``episode``, the open finding's first hour and
    peak score, or null)."""

    name: ClassVar[str] = "anomalies"
    Settings: ClassVar[type[BaseModel]] = AnomalySettings
    topics: ClassVar[frozenset[Topic]] = frozenset({Topic.SERIES})
    tables: ClassVar[tuple[Table, ...]] = (SERIES_HOURLY,)

    def __init__(self, settings: AnomalySettings | None = None) -> None:
        self.settings = settings or AnomalySettings()
        self._z = statistics.NormalDist().inv_cdf((1 + self.settings.threshold) / 2)

    def process(self, batch: Batch, reference: Reference, state: Entries) -> Output:
        """Score each hour of each series, in order (an hour scored already is a
        duplicate). Counts ``series_hours`` and ``anomaly_findings``."""
        rows: list[tuple[Any, ...]] = []
        output = Output()
        for point in batch.of(SeriesPoint):
            if point.kind not in self.settings.kinds:
                continue
            scored = self._score(point, state, reference)
            if scored is None:
                output.duplicates += 1
                continue
            rows.append(scored[0])
            output.findings += scored[1]
        if rows:
            output.rows.append((SERIES_HOURLY, pl.DataFrame(rows, schema=ROW_SCHEMA, orient="row")))
        output.counts.update(series_hours=len(rows), anomaly_findings=len(output.findings))
        return output

    def _score(
        self, point: SeriesPoint, series: Entries, reference: Reference
    ) -> tuple[tuple[Any, ...], list[Finding]] | None:
        """The hour's row and the findings it opens or resolves; None for an hour the
        series has had. A series new to the state whose episode the store holds open (an
        embedded run starts without state) goes on with it, so it resolves; a series whose
        detector the settings have changed since gets a new one."""
        value, key = point.value, point.series_id()
        entry = json.loads(series[key]) if key in series else None
        if entry is not None and entry["last"] >= point.window_start.isoformat():
            return None
        made = self._made(point.kind)
        if entry is None:
            entry = {"hours": 0, "history": [], "episode": _open(key, reference)}
        if entry.get("made") != made:  # new, or the settings changed: learn from scratch
            detector = build_detector(self.settings.detector, self.settings.params(point.kind))
            entry.update(made=made, hours=0, history=[])
        else:
            detector = unpickled(entry["detector"])
        x = {"value": value, "at": point.window_start.timestamp()}
        score = float(detector.score_one(x))
        band = self._band(detector, x)
        detector.learn_one(x)
        anomalous = (
            entry["hours"] >= self.settings.warm_up_hours and score >= self.settings.threshold
        )
        entry["hours"] += 1
        entry["last"] = point.window_start.isoformat()
        entry["history"] = [*entry["history"], [_hours(point.window_start), float(f"{value:.6g}")]][
            -self.settings.history_hours :
        ]
        findings = []
        if anomalous and entry["episode"] is None:
            entry["episode"] = {"first_seen": point.window_start.isoformat(), "peak": score}
            findings.append(self._finding(point, value, score, band, entry, FindingStatus.OPEN))
        elif anomalous:
            entry["episode"]["peak"] = max(entry["episode"]["peak"], score)
        elif entry["episode"] is not None:
            findings.append(self._finding(point, value, score, band, entry, FindingStatus.RESOLVED))
            entry["episode"] = None
        entry["detector"] = pickled(detector)
        series[key] = json.dumps(entry)
        low, expected, high = band if band else (None, None, None)
        row = (
            point.cluster, point.namespace, key, point.window_start, point.kind, point.scope,
            point.team, point.workload_kind, point.workload, value, expected, low, high, score,
            anomalous,
        )  # fmt: skip
        return row, findings

    def _made(self, kind: SeriesKind) -> str:
        """What a series' detector was built from: its name and parameters."""
        return f"{self.settings.detector} {json.dumps(self.settings.params(kind), sort_keys=True)}"

    def _band(self, detector: Any, x: dict[str, float]) -> tuple[float, float, float] | None:
        """(low, expected, high): the values that score below the threshold, when the
        detector says what it expects (``expected_one``: the seasonal and windowed
        Gaussian detectors)."""
        if not hasattr(detector, "expected_one"):
            return None
        expected, deviation = detector.expected_one(x)
        return expected - self._z * deviation, expected, expected + self._z * deviation

    def _finding(
        self,
        point: SeriesPoint,
        value: float,
        score: float,
        band: tuple[float, float, float] | None,
        entry: dict[str, Any],
        status: FindingStatus,
    ) -> Finding:
        subject = subject_of(point)
        unit = UNITS[point.kind]
        what = f"{point.kind} of {title(point)}"
        if status == FindingStatus.OPEN:
            expected = f" (expected at most {band[2]:,.4g} {unit})" if band else ""
            summary = f"{what} rose to {value:,.4g} {unit}{expected}"
        else:
            summary = f"{what} is back to normal ({value:,.4g} {unit})"
        started = datetime.fromisoformat(entry["episode"]["first_seen"])
        high = band is not None and value >= 2 * max(band[1], 1e-9)
        return Finding(
            kind=FindingKind.ANOMALY,
            severity=Severity.HIGH if high else Severity.MEDIUM,
            subject=subject,
            fingerprint=fingerprint(point.series_id()),
            first_seen=started,
            last_seen=point.window_start,
            status=status,
            summary=summary,
            evidence={
                "series": point.series_id(), "series_kind": point.kind, "scope": point.scope,
                "unit": unit, "hour": point.window_start.isoformat(), "observed": value,
                "expected": band[1] if band else None,
                "band": [band[0], band[2]] if band else None,
                "score": score, "peak_score": entry["episode"]["peak"],
                "detector": self.settings.detector, "threshold": self.settings.threshold,
                "history": [[_instant(h).isoformat(), v] for h, v in entry["history"]],
            },
        )  # fmt: skip


ROW_SCHEMA = pl.Schema(
    {
        "cluster": pl.String(), "namespace": pl.String(), "series_id": pl.String(),
        "window_start": pl.Datetime("ms", "UTC"), "series_kind": pl.String(),
        "scope": pl.String(), "team": pl.String(), "workload_kind": pl.String(),
        "workload": pl.String(), "value": pl.Float64(), "expected": pl.Float64(),
        "lower": pl.Float64(), "upper": pl.Float64(), "score": pl.Float64(),
        "anomalous": pl.Boolean(),
    }
)  # fmt: skip


def _open(key: str, reference: Reference) -> dict[str, Any] | None:
    """The series' episode as the store holds it open, if it does."""
    known = reference.open_findings.get(fingerprint(key))
    if known is None or known.kind != FindingKind.ANOMALY:
        return None
    return {"first_seen": known.first_seen.isoformat(), "peak": known.evidence["peak_score"]}


def _hours(instant: datetime) -> int:
    """Hours since 1970 (UTC): how the history keeps an hour, in a few bytes."""
    return int(instant.timestamp()) // 3600


def _instant(hours: int) -> datetime:
    return datetime.fromtimestamp(hours * 3600, UTC)


def fingerprint(series_id: str) -> str:
    """An anomaly finding's fingerprint: its series', the same across restarts."""
    return hashlib.sha256(f"anomaly/{series_id}".encode()).hexdigest()[:32]
