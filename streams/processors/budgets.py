"""The budget processor: the spend of every team, namespace and cluster in the current
week and month, hour by hour from the ``series`` topic's cost series, with a forecast to
the end of the period (``streams.forecast``: the weekly pattern, a 90 % interval); for
each budget (reference data: ``kubeopera budgets set``), a ``budget_status`` row per hour
and findings when the actual or the forecast spend reaches a threshold of the amount,
opened once per period, threshold and basis, resolved when the period ends.

Spend is kept for every cost series whether a budget names it or not, so a budget set in
the middle of a period starts from the spend so far. A budget's period runs in UTC:
Monday 00:00 to Monday, or the first of the month to the next first. A team's points
from all its clusters come to one partition (``SeriesPoint.key``); its status as of an
hour counts each cluster as far as it has reported, and forecasts each from there on.

State: an entry per budget target (``team/T``, ``namespace/<cluster>/<ns>``,
``cluster/<cluster>``): per cluster its ``streams.spend.Spend`` (pickled), and per
budget the findings open in its period.
"""

import hashlib
import json
from datetime import datetime
from typing import Any, ClassVar

import polars as pl
from pydantic import BaseModel, ConfigDict

from kubeopera.models import (
    Budget,
    BudgetScope,
    Finding,
    FindingKind,
    FindingStatus,
    SeriesKind,
    SeriesPoint,
    SeriesScope,
    Severity,
    Subject,
    Topic,
)
from kubeopera.streams.entries import Entries, pickled, unpickled
from kubeopera.streams.processor import Batch, KeptAsEntries, Output, Table
from kubeopera.streams.reference import Reference
from kubeopera.streams.registry import register
from kubeopera.streams.series import subject_of
from kubeopera.streams.spend import Spend, budget_status

BUDGET_STATUS = Table("budget_status", ("budget", "window_start"), "window_start")
SCOPES = {
    SeriesScope.TEAM: BudgetScope.TEAM,
    SeriesScope.NAMESPACE: BudgetScope.NAMESPACE,
    SeriesScope.CLUSTER: BudgetScope.CLUSTER,
    SeriesScope.LABEL: BudgetScope.LABEL,
}


class BudgetSettings(BaseModel):
    """The ``budgets:`` section (nothing to set yet: budgets are data, ``kubeopera
    budgets set``)."""

    model_config = ConfigDict(extra="forbid")


def target_of(point: SeriesPoint) -> tuple[BudgetScope, str] | None:
    """The budget scope and target a cost series is the spend of (None: no budget can
    name it)."""
    if point.kind != SeriesKind.COST or point.scope not in SCOPES:
        return None
    name = {
        SeriesScope.TEAM: point.team,
        SeriesScope.NAMESPACE: f"{point.cluster}/{point.namespace}",
        SeriesScope.CLUSTER: point.cluster,
        SeriesScope.LABEL: point.label,
    }[point.scope]
    return SCOPES[point.scope], name


@register
class BudgetTracking(KeptAsEntries):
    name: ClassVar[str] = "budgets"
    Settings: ClassVar[type[BaseModel]] = BudgetSettings
    topics: ClassVar[frozenset[Topic]] = frozenset({Topic.SERIES})
    tables: ClassVar[tuple[Table, ...]] = (BUDGET_STATUS,)

    def __init__(self, settings: BudgetSettings | None = None) -> None:
        self.settings = settings or BudgetSettings()

    def process(self, batch: Batch, reference: Reference, state: Entries) -> Output:
        """Each hour of cost, in order (an hour counted already is a duplicate): the
        spend, the forecast, each budget's status and the thresholds it reached. Counts
        ``budget_findings``."""
        output = Output()
        rows: list[dict[str, Any]] = []
        for point in batch.of(SeriesPoint):
            target = target_of(point)
            if target is None:
                continue
            if not self._account(point, target, state, reference, rows, output.findings):
                output.duplicates += 1
        if rows:
            output.rows.append((BUDGET_STATUS, pl.DataFrame(rows, schema=ROW_SCHEMA)))
        output.counts.update(budget_findings=len(output.findings))
        return output

    def _account(
        self,
        point: SeriesPoint,
        target: tuple[BudgetScope, str],
        state: Entries,
        reference: Reference,
        rows: list[dict[str, Any]],
        findings: list[Finding],
    ) -> bool:
        """Count the hour; False if its cluster has counted it already."""
        key, at = "/".join(target), point.window_start
        entry = json.loads(state[key]) if key in state else _adopted(key, reference)
        spends = {c: unpickled(text) for c, text in entry["clusters"].items()}
        if not spends.setdefault(point.cluster, Spend()).count(at, point.value):
            return False
        entry["clusters"][point.cluster] = pickled(spends[point.cluster])
        for budget in reference.budgets_for(*target):
            if budget.deleted:
                findings += _withdrawn(point, budget, entry["opened"])
                continue
            status = budget_status(budget, at, spends)
            rows.append(status)
            findings += _thresholds(point, budget, status, entry["opened"])
        state[key] = json.dumps(entry)
        return True


def _adopted(key: str, reference: Reference) -> dict[str, Any]:
    """A target's first entry: its spend so far and its budgets' open findings as the
    store holds them when the engine starts without state (an embedded run), else
    nothing."""
    opened: dict[str, Any] = {}
    for finding in reference.open_findings.values():
        evidence = finding.evidence
        if finding.kind == FindingKind.BUDGET and evidence["budget"].startswith(f"{key}/"):
            known = opened.setdefault(
                evidence["budget"], {"period_start": evidence["period_start"], "marks": []}
            )
            known["marks"].append(f"{evidence['basis']}/{evidence['threshold']:g}")
    clusters = {c: pickled(s) for c, s in reference.spends.get(key, {}).items()}
    return {"clusters": clusters, "opened": opened}


def _thresholds(
    point: SeriesPoint, budget: Budget, status: dict[str, Any], opened: dict[str, Any]
) -> list[Finding]:
    """The findings the status opens (once per period, threshold and basis) and, at a
    new period, the previous period's, resolved. A status of an earlier period than the
    findings' (a cluster that lags) changes none."""
    start: datetime = status["period_start"]
    known = opened.get(budget.name())
    if known and known["period_start"] > start.isoformat():
        return []
    findings = []
    if known and known["period_start"] < start.isoformat():
        ended = datetime.fromisoformat(known["period_start"])
        for mark in known["marks"]:
            findings.append(_finding(point, budget, status, mark, FindingStatus.RESOLVED, ended))
        known = None
    known = known or {"period_start": start.isoformat(), "marks": []}
    for threshold in budget.thresholds:
        for basis in ("actual", "forecast"):
            mark = f"{basis}/{threshold:g}"
            value = status["spend"] if basis == "actual" else status["forecast"]
            if mark not in known["marks"] and value >= threshold * budget.amount:
                known["marks"].append(mark)
                findings.append(_finding(point, budget, status, mark, FindingStatus.OPEN, start))
    opened[budget.name()] = known
    return findings


def _withdrawn(point: SeriesPoint, budget: Budget, opened: dict[str, Any]) -> list[Finding]:
    """A deleted budget's open findings, resolved."""
    known = opened.pop(budget.name(), None)
    if not known:
        return []
    began = datetime.fromisoformat(known["period_start"])
    status = {"window_start": point.window_start, "spend": 0.0, "forecast": 0.0,
              "forecast_low": 0.0, "forecast_high": 0.0, "period_end": began}  # fmt: skip
    return [
        _finding(point, budget, status, mark, FindingStatus.RESOLVED, began, withdrawn=True)
        for mark in known["marks"]
    ]


def _finding(
    point: SeriesPoint,
    budget: Budget,
    status: dict[str, Any],
    mark: str,
    state: FindingStatus,
    period_start: datetime,
    withdrawn: bool = False,
) -> Finding:
    basis, threshold = mark.split("/")
    share = float(threshold)
    what = f"{budget.period} budget of {budget.scope} {budget.target} (${budget.amount:,.2f})"
    if withdrawn:
        summary = f"{what}: the budget was deleted"
    elif state == FindingStatus.RESOLVED:
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
        subject=_subject(budget, point),
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
        "budget": pl.String(), "scope": pl.String(), "target": pl.String(),
        "period": pl.String(), "period_start": pl.Datetime("ms", "UTC"),
        "period_end": pl.Datetime("ms", "UTC"), "window_start": pl.Datetime("ms", "UTC"),
        "amount": pl.Float64(), "spend": pl.Float64(), "forecast": pl.Float64(),
        "forecast_low": pl.Float64(), "forecast_high": pl.Float64(),
    }
)  # fmt: skip


def _subject(budget: Budget, point: SeriesPoint) -> Subject:
    """A team's and a label's budget span their clusters (cluster ``*``); a
    namespace's and a cluster's are the series'."""
    if budget.scope == BudgetScope.TEAM:
        return Subject(cluster="*", kind="Team", name=budget.target)
    if budget.scope == BudgetScope.LABEL:
        return Subject(cluster="*", kind="Label", name=budget.target)
    return subject_of(point)
