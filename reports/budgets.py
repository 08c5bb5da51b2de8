"""Budgets as reports: the budgets the store holds, and each one's status (spend so far,
forecast to the period's end with its interval) worked out from the store's hourly
costs with the budget processor's own functions (``streams.spend``), so a budget set
today reports this period's spend at once."""

from datetime import datetime, timedelta

import polars as pl

from kubeopera.models import Budget, BudgetScope
from kubeopera.reports.sql import literal, time_literal
from kubeopera.sinks.clickhouse import Store
from kubeopera.streams.spend import Spend, budget_status, period_of

HISTORY = timedelta(weeks=4)
"""How far before its period a budget's forecast learns the weekly pattern."""

BUDGETS_SQL = (
    "SELECT budget, argMax(scope, at) AS scope, argMax(target, at) AS target, "
    "argMax(period, at) AS period, argMax(amount, at) AS amount, "
    "argMax(thresholds, at) AS thresholds, max(at) AS recorded_at, "
    "argMax(deleted, at) AS deleted "
    "FROM (SELECT *, recorded_at AS at FROM budgets) GROUP BY budget ORDER BY budget"
)


def recorded_budgets(store: Store) -> list[Budget]:
    """The latest definition of every budget the store holds (deleted ones too: they
    withdraw what an older definition says)."""
    return [
        Budget(
            scope=row["scope"], target=row["target"], period=row["period"],
            amount=row["amount"], thresholds=row["thresholds"],
            recorded_at=row["recorded_at"], deleted=row["deleted"],
        )
        for row in store.query(BUDGETS_SQL).to_dicts()
    ]  # fmt: skip


def record_budgets(store: Store, budgets: list[Budget]) -> None:
    """Store budget definitions (a deletion is a definition with ``deleted``)."""
    store.insert(
        "budgets",
        pl.DataFrame(
            [
                {"budget": b.name(), "scope": b.scope.value, "target": b.target,
                 "period": b.period.value, "amount": b.amount, "thresholds": b.thresholds,
                 "recorded_at": b.recorded_at, "deleted": b.deleted}
                for b in budgets
            ],
            schema={"budget": pl.String, "scope": pl.String, "target": pl.String,
                    "period": pl.String, "amount": pl.Float64,
                    "thresholds": pl.List(pl.Float64),
                    "recorded_at": pl.Datetime("ms", "UTC"), "deleted": pl.Boolean},
        ),
    )  # fmt: skip


def _target_where(budget: Budget) -> str:
    """The cost rows of the budget's target, as the cost processor's series add them up:
    a team's and a namespace's allocations, a cluster's idle too."""
    if budget.scope == BudgetScope.TEAM:
        where = f"team = {literal(budget.target)} AND NOT is_idle"
    elif budget.scope == BudgetScope.NAMESPACE:
        cluster, _, namespace = budget.target.partition("/")
        where = f"cluster = {literal(cluster)} AND namespace = {literal(namespace)} AND NOT is_idle"
    else:
        where = f"cluster = {literal(budget.target)}"
    return where


def hourly_cost_sql(budget: Budget, since: datetime) -> str:
    """The target's cost per cluster and hour since ``since`` (``cluster``,
    ``window_start``, ``cost``)."""
    return (
        "SELECT cluster, window_start, sum(total_cost) AS cost FROM cost_allocation_hourly FINAL "
        f"WHERE {_target_where(budget)} AND window_start >= {time_literal(since)} "
        "GROUP BY cluster, window_start ORDER BY window_start, cluster"
    )


def latest_hour_sql(budget: Budget) -> str:
    """The latest hour of the target's cost in the store (``latest``; NULL: none)."""
    return (
        "SELECT if(count() = 0, NULL, max(window_start)) AS latest "
        f"FROM cost_allocation_hourly WHERE {_target_where(budget)}"
    )


def budget_report(store: Store, now: datetime) -> pl.DataFrame:
    """Each budget in force, as of the latest hour of its target's cost in the store, in
    the period that hour falls in (the one ``now`` falls in while the store has none):
    ``budget``, ``period``, ``amount``, ``period_start``, ``as_of``, ``spend``,
    ``spent_share``, ``forecast``, ``forecast_low``, ``forecast_high`` (the 90 %
    interval), ``forecast_share``."""
    rows = []
    for budget in recorded_budgets(store):
        if budget.deleted:
            continue
        known = store.query(latest_hour_sql(budget))["latest"].item()
        start = period_of(budget.period, known or now)[0]
        hours = store.query(hourly_cost_sql(budget, start - HISTORY))
        spends: dict[str, Spend] = {}
        for cluster, at, cost in hours.iter_rows():
            spends.setdefault(cluster, Spend()).count(at, cost)
        latest = max((s.last for s in spends.values() if s.last), default=None)
        status = budget_status(budget, latest or start - timedelta(hours=1), spends)
        rows.append(
            {
                "budget": budget.name(), "period": budget.period.value, "amount": budget.amount,
                "period_start": status["period_start"],
                "as_of": latest + timedelta(hours=1) if latest else None,
                "spend": status["spend"], "spent_share": status["spend"] / budget.amount,
                "forecast": status["forecast"], "forecast_low": status["forecast_low"],
                "forecast_high": status["forecast_high"],
                "forecast_share": status["forecast"] / budget.amount,
            }
        )  # fmt: skip
    return pl.DataFrame(rows, schema=REPORT_SCHEMA)


REPORT_SCHEMA = pl.Schema(
    {
        "budget": pl.String(), "period": pl.String(), "amount": pl.Float64(),
        "period_start": pl.Datetime("ms", "UTC"), "as_of": pl.Datetime("ms", "UTC"),
        "spend": pl.Float64(), "spent_share": pl.Float64(), "forecast": pl.Float64(),
        "forecast_low": pl.Float64(), "forecast_high": pl.Float64(),
        "forecast_share": pl.Float64(),
    }
)  # fmt: skip
