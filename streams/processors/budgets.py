"""The budget processor: the spend of every team, namespace and cluster in the current
week and month, hour by hour from the ``series`` topic's cost series, with a forecast to
the end of the period (``streams.forecast``: the weekly pattern, a 90 % interval); for
each budget (reference data: ``kubeopera budgets set``), a ``budget_status`` row per hour
and findings when the actual or the forecast spend reaches a threshold of the amount,
opened once per period, threshold and basis, resolved when the period ends.

Spend is kept for every cost series whether a budget names it or not, so a budget set in
the middle of a period starts from the spend so far. A budget's period runs in UTC:
Monday 00:00 to Monday, or the first of the month to the next first.

State: the open hours' shares, and per series the forecast model, the spend of the week
and month it is in, and the findings open in the period (an entry per series).
"""

import base64
import hashlib
import json
import pickle
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from kubeopera.models import (
    Budget,
    BudgetPeriod,
    BudgetScope,
    Finding,
    FindingKind,
    FindingStatus,
    SeriesKind,
    SeriesPoint,
    SeriesScope,
    Severity,
    Topic,
)
from kubeopera.streams.entries import Entries
from kubeopera.streams.forecast import HOUR, HourlyForecast
from kubeopera.streams.processor import Batch, Output, Table
from kubeopera.streams.reference import Reference
from kubeopera.streams.registry import register
from kubeopera.streams.series import subject_of, title
from kubeopera.streams.series_hours import ClosedHour, SeriesHours

BUDGET_STATUS = Table("budget_status", ("budget", "window_start"), "window_start")
SCOPES = {
    SeriesScope.TEAM: BudgetScope.TEAM,
    SeriesScope.NAMESPACE: BudgetScope.NAMESPACE,
    SeriesScope.CLUSTER: BudgetScope.CLUSTER,
}


class BudgetSettings(BaseModel):
    """The ``budgets:`` section."""

    model_config = ConfigDict(extra="forbid")

    allowed_lateness_minutes: int = Field(default=0, ge=0)


def period_of(period: BudgetPeriod, at: datetime) -> tuple[datetime, datetime]:
    """The [start, end) of the period ``at`` falls in (UTC).

    >>> [t.date().isoformat() for t in period_of(BudgetPeriod.WEEKLY,
    ...                                          datetime(2026, 3, 4, 9, tzinfo=UTC))]
    ['2026-03-02', '2026-03-09']
    >>> [t.date().isoformat() for t in period_of(BudgetPeriod.MONTHLY,
    ...                                          datetime(2026, 12, 4, 9, tzinfo=UTC))]
    ['2026-12-01', '2027-01-01']
    """
    day = at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == BudgetPeriod.WEEKLY:
        start = day - timedelta(days=day.weekday())
        return start, start + timedelta(days=7)
    start = day.replace(day=1)
    return start, (start + timedelta(days=32)).replace(day=1)


def target_of(point: SeriesPoint) -> tuple[BudgetScope, str] | None:
    """The budget scope and target a cost series is the spend of (None: no budget can
    name it)."""
    if point.kind != SeriesKind.COST or point.scope not in SCOPES:
        return None
    name = {
        SeriesScope.TEAM: point.team,
        SeriesScope.NAMESPACE: f"{point.cluster}/{point.namespace}",
        SeriesScope.CLUSTER: point.cluster,
    }[point.scope]
    return SCOPES[point.scope], name


@dataclass
class BudgetState:
    hours: SeriesHours
    series: Entries = field(default_factory=Entries)


@register
class BudgetTracking:
    name: ClassVar[str] = "budgets"
    Settings: ClassVar[type[BaseModel]] = BudgetSettings
    topics: ClassVar[frozenset[Topic]] = frozenset({Topic.SERIES})
    tables: ClassVar[tuple[Table, ...]] = (BUDGET_STATUS,)

    def __init__(self, settings: BudgetSettings | None = None) -> None:
        self.settings = settings or BudgetSettings()
        self._lateness = timedelta(minutes=self.settings.allowed_lateness_minutes)
        self._reference: Reference | None = None

    def prepare(self, reference: Reference) -> None:
        """Keep the reference: its budgets are read as each hour closes
        (``processor.PreparesReference``)."""
        self._reference = reference

    def new_state(self) -> BudgetState:
        return BudgetState(SeriesHours(self._lateness))

    def entries(self, state: BudgetState) -> Entries:
        return state.series

    def process(self, batch: Batch, reference: Reference, state: BudgetState) -> Output:
        """Add each cost share to its open hour (late: a dead letter; seen: a duplicate)."""
        output = Output()
        for envelope in batch.envelopes:
            point = envelope.message
            assert isinstance(point, SeriesPoint)
            if target_of(point) is None:
                continue
            verdict = state.hours.admit(point, envelope.watermark)
            if verdict == "late":
                output.dead_letters.append(
                    envelope.reject(state.hours.late_reason(point, envelope.watermark))
                )
            elif verdict == "duplicate":
                output.duplicates += 1
        return output

    def close(self, state: BudgetState, watermark: datetime) -> Output:
        """Every complete hour, in time order: the spend, the forecast, each budget's
        status and the thresholds it reached. Counts ``budget_findings``."""
        output = Output()
        rows: list[dict[str, Any]] = []
        budgets = self._reference.budgets if self._reference else {}
        for hour in state.hours.close_due(watermark):
            self._account(hour, state.series, budgets, rows, output.findings)
        if rows:
            output.rows.append((BUDGET_STATUS, pl.DataFrame(rows, schema=ROW_SCHEMA)))
        output.counts = Counter(budget_findings=len(output.findings))
        return output

    def _account(
        self,
        hour: ClosedHour,
        series: Entries,
        budgets: dict[str, Budget],
        rows: list[dict[str, Any]],
        findings: list[Finding],
    ) -> None:
        point, at = hour.point, hour.point.window_start
        key = point.series_id()
        entry = json.loads(series[key]) if key in series else {"spend": {}, "opened": {}}
        model = _model(entry)
        for period in BudgetPeriod:
            began = period_of(period, at)[0].isoformat()
            known = entry["spend"].get(period)
            spent = known[1] if known and known[0] == began else 0.0
            entry["spend"][period] = [began, spent + hour.value]
        model.learn(at, hour.value)
        scope, target = target_of(point) or (None, "")
        for budget in sorted(budgets.values(), key=Budget.name):
            if budget.deleted or budget.scope != scope or budget.target != target:
                continue
            start, end = period_of(budget.period, at)
            spend = entry["spend"][budget.period][1]
            expected, low, high = model.ahead(at + HOUR, end)
            status = {
                "budget": budget.name(), "scope": budget.scope, "target": budget.target,
                "period": budget.period, "period_start": start, "period_end": end,
                "window_start": at, "amount": budget.amount, "spend": spend,
                "forecast": spend + expected, "forecast_low": spend + low,
                "forecast_high": spend + high,
            }  # fmt: skip
            rows.append(status)
            findings += self._thresholds(point, budget, status, entry["opened"])
        entry["model"] = base64.b64encode(pickle.dumps(model)).decode()
        series[key] = json.dumps(entry)

    def _thresholds(
        self,
        point: SeriesPoint,
        budget: Budget,
        status: dict[str, Any],
        opened: dict[str, Any],
    ) -> list[Finding]:
        """The findings the status opens (once per period, threshold and basis) and, at a
        new period, the previous period's, resolved."""
        findings = []
        start: datetime = status["period_start"]
        known = opened.get(budget.name())
        if known and known["period_start"] != start.isoformat():
            for mark in known["marks"]:
                findings.append(
                    _finding(point, budget, status, mark, FindingStatus.RESOLVED,
                             datetime.fromisoformat(known["period_start"]))
                )  # fmt: skip
            known = None
        known = known or {"period_start": start.isoformat(), "marks": []}
        for threshold in budget.thresholds:
            for basis in ("actual", "forecast"):
                mark = f"{basis}/{threshold:g}"
                value = status["spend"] if basis == "actual" else status["forecast"]
                if mark not in known["marks"] and value >= threshold * budget.amount:
                    known["marks"].append(mark)
                    findings.append(
                        _finding(point, budget, status, mark, FindingStatus.OPEN, start)
                    )
        opened[budget.name()] = known
        return findings

    def horizon(self, state: BudgetState) -> datetime | None:
        return None

    def state_to_bytes(self, state: BudgetState) -> bytes:
        return state.hours.to_json().encode()

    def state_from_bytes(self, data: bytes) -> BudgetState:
        return BudgetState(SeriesHours.from_json(data.decode(), self._lateness))


def _model(entry: dict[str, Any]) -> HourlyForecast:
    if "model" not in entry:
        return HourlyForecast()
    model: HourlyForecast = pickle.loads(base64.b64decode(entry["model"]))  # our own state
    return model


def _finding(
    point: SeriesPoint,
    budget: Budget,
    status: dict[str, Any],
    mark: str,
    state: FindingStatus,
    period_start: datetime,
) -> Finding:
    basis, threshold = mark.split("/")
    share = float(threshold)
    what = f"{budget.period} budget of {title(point)} (${budget.amount:,.2f})"
    if state == FindingStatus.RESOLVED:
        summary = f"{what}: the period from {period_start:%Y-%m-%d} has ended"
    elif basis == "actual":
        summary = f"{what}: {share:.0%} spent (${status['spend']:,.2f})"
    else:
        by = status["period_end"]
        summary = (
            f"{what}: forecast to reach {share:.0%} (${status['forecast']:,.2f} by {by:%Y-%m-%d})"
        )
    key = f"budget/{budget.name()}/{period_start.isoformat()}/{mark}"
    return Finding(
        kind=FindingKind.BUDGET,
        severity=Severity.HIGH if share >= 1 and basis == "actual" else Severity.MEDIUM,
        subject=subject_of(point),
        fingerprint=hashlib.sha256(key.encode()).hexdigest()[:32],
        first_seen=status["window_start"] if state == FindingStatus.OPEN else period_start,
        last_seen=status["window_start"],
        status=state,
        summary=summary,
        evidence={
            "budget": budget.name(), "period": budget.period,
            "period_start": period_start.isoformat(), "amount": budget.amount,
            "threshold": share, "basis": basis, "spend": status["spend"],
            "forecast": status["forecast"],
            "forecast_interval": [status["forecast_low"], status["forecast_high"]],
        },
    )  # fmt: skip


ROW_SCHEMA = pl.Schema(
    {
        "budget": pl.String(), "scope": pl.String(), "target": pl.String(), "period": pl.String(),
    "period_start": pl.Datetime("ms", "UTC"), "period_end": pl.Datetime("ms", "UTC"),
    "window_start": pl.Datetime("ms", "UTC"), "amount": pl.Float64(), "spend": pl.Float64(),
    "forecast": pl.Float64(), "forecast_low": pl.Float64(), "forecast_high": pl.Float64(),
    }
)  # fmt: skip
