"""Budgets as reports: the budgets the store holds, and each one's status (spend so far,
forecast to the period's end with its interval) worked out from the store's hourly
costs with the budget processor's own functions (``streams.spend``), so a budget set
today reports this period's spend at once."""

from datetime import datetime, timedelta
from typing import Any

import polars as pl

from kubeopera.models import Budget, BudgetPeriod, BudgetScope
from kubeopera.reports.sql import literal, time_literal
from kubeopera.sinks.clickhouse import Store
from kubeopera.streams.processors.budgets import ROW_SCHEMA
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


def record_budgets(store: Store, budgets: list[Budget], now: datetime) -> None:
    """Store budget definitions (a deletion is a definition with ``deleted``) and, for
    those in force, their status as of the store's latest hour of cost (``statuses``),
    so that ``v_budget_status`` shows a budget set mid-period at once rather than when
    the budget processor next closes an hour (it writes that hour's row over this one)."""
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
    rows = [status for budget, status in statuses(store, budgets, now) if not budget.deleted]
    if rows and store.query(LATEST_HOUR_SQL)["latest"].item() is not None:
        store.insert("budget_status", pl.DataFrame(rows, schema=ROW_SCHEMA))


def _target_where(budget: Budget) -> str:
    """The cost rows of the budget's target, as the cost processor's series add them up:
    a team's, a namespace's and a label value's allocations, a cluster's idle too."""
    if budget.scope == BudgetScope.TEAM:
        where = f"team = {literal(budget.target)} AND NOT is_idle"
    elif budget.scope == BudgetScope.NAMESPACE:
        cluster, _, namespace = budget.target.partition("/")
        where = f"cluster = {literal(cluster)} AND namespace = {literal(namespace)} AND NOT is_idle"
    elif budget.scope == BudgetScope.LABEL:
        key, _, value = budget.target.partition("=")
        where = f"labels[{literal(key)}] = {literal(value)} AND NOT is_idle"
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


LATEST_HOUR_SQL = (
    "SELECT if(count() = 0, NULL, max(window_start)) AS latest FROM cost_allocation_hourly"
)
"""The latest hour of cost in the store (NULL: none)."""


def target_spends(store: Store, budget: Budget, through: datetime) -> dict[str, Spend]:
    """The budget's target's spend by cluster through the hour starting at ``through``
    (UTC), learnt from the hours of the month and of ``HISTORY`` before (a week's and a
    month's budget of one target read the same), each cluster to its last stored hour."""
    start = period_of(BudgetPeriod.MONTHLY, through)[0]
    spends: dict[str, Spend] = {}
    for cluster, at, cost in store.query(hourly_cost_sql(budget, start - HISTORY)).iter_rows():
        if at <= through:
            spends.setdefault(cluster, Spend()).count(at, cost)
    return spends


def recorded_spends(store: Store) -> dict[str, dict[str, Spend]]:
    """Each budget target's spend by cluster through the store's latest hour, keyed as
    the budget processor keys its state (``team/web``): what an embedded run starts
    from."""
    latest = store.query(LATEST_HOUR_SQL)["latest"].item()
    if latest is None:
        return {}
    return {
        f"{budget.scope}/{budget.target}": target_spends(store, budget, latest)
        for budget in recorded_budgets(store)
        if not budget.deleted
    }


def statuses(
    store: Store, budgets: list[Budget], now: datetime
) -> list[tuple[Budget, dict[str, Any]]]:
    """Each of ``budgets`` with its status (``streams.spend.budget_status``: the keys of
    the ``budget_status`` table) as of the store's latest hour of cost (``now``'s
    previous hour while it has none), in the period that hour falls in."""
    latest = store.query(LATEST_HOUR_SQL)["latest"].item()
    through = latest or now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    found = []
    for budget in budgets:
        spends = target_spends(store, budget, through)
        for spend in spends.values():  # a cluster with no cost lately cost nothing
            spend.advance(through)
        found.append((budget, budget_status(budget, through, spends)))
    return found


def budget_report(store: Store, now: datetime) -> pl.DataFrame:
    """Each budget in force, as of the store's latest hour of cost (``now``'s while it
    has none), in the period that hour falls in: ``budget``, ``period``, ``amount``,
    ``period_start``, ``as_of`` (the end of that hour), ``spend``, ``spent_share``,
    ``forecast``, ``forecast_low``, ``forecast_high`` (the 90 % interval),
    ``forecast_share``."""
    in_force = [b for b in recorded_budgets(store) if not b.deleted]
    rows = [
        {
            "budget": budget.name(), "period": budget.period.value, "amount": budget.amount,
            "period_start": status["period_start"],
            "as_of": status["window_start"] + timedelta(hours=1),
            "spend": status["spend"], "spent_share": status["spend"] / budget.amount,
            "forecast": status["forecast"], "forecast_low": status["forecast_low"],
            "forecast_high": status["forecast_high"],
            "forecast_share": status["forecast"] / budget.amount,
        }
        for budget, status in statuses(store, in_force, now)
    ]  # fmt: skip
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
