"""What a budget target has spent, hour by hour, and a budget's status from it: the
budget processor keeps one ``Spend`` per target and cluster as the hours come;
``kubeopera budgets status`` builds the same from the store's hourly costs.

>>> from datetime import UTC, datetime, timedelta
>>> from kubeopera.models import Budget
>>> monday = datetime(2026, 3, 2, tzinfo=UTC)
>>> spend = Spend()
>>> all(spend.count(monday + timedelta(hours=hour), 2.0) for hour in range(10))
True
>>> budget = Budget(scope="team", target="web", period="weekly", amount=400,
...                 recorded_at=monday)
>>> status = budget_status(budget, monday + timedelta(hours=9), {"prod": spend})
>>> status["spend"], status["forecast"]  # $20 so far, $2 an hour for the 158 hours left
(20.0, 336.0)
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from kubeopera.models import Budget, BudgetPeriod
from kubeopera.streams.forecast import HOUR, HourlyForecast, interval


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


@dataclass
class Spend:
    """One target's cost in one cluster: the last hour counted (UTC), the spend (USD) of
    the week and month that hour is in, and the forecast model of its hours."""

    last: datetime | None = None
    spent: dict[BudgetPeriod, tuple[datetime, float]] = field(default_factory=dict)
    model: HourlyForecast = field(default_factory=HourlyForecast)

    def count(self, at: datetime, value: float) -> bool:
        """The hour starting at ``at`` cost ``value`` USD; False (and nothing counted)
        for an hour at or before the last counted."""
        if self.last is not None and at <= self.last:
            return False
        for period in BudgetPeriod:
            began = period_of(period, at)[0]
            known = self.spent.get(period)
            self.spent[period] = (began, (known[1] if known and known[0] == began else 0.0) + value)
        self.model.learn(at, value)
        self.last = at
        return True


def budget_status(budget: Budget, at: datetime, spends: dict[str, Spend]) -> dict[str, Any]:
    """The budget's status as of the hour starting at ``at`` (UTC), over the clusters'
    ``spends``: the spend of its period so far (USD), and the forecast to the period's
    end, each cluster from the hour after its last counted, with the 90 % interval.
    Keys: those of the ``budget_status`` table."""
    start, end = period_of(budget.period, at)
    spend, expected, variance = 0.0, 0.0, 0.0
    for name in sorted(spends):
        cluster = spends[name]
        began, spent = cluster.spent.get(budget.period, (start, 0.0))
        if began == start:
            spend += spent
        after = max(cluster.last + HOUR, start) if cluster.last else start
        more, spread = cluster.model.ahead(after, end)
        expected += more
        variance += spread
    low, high = interval(spend + expected, variance)
    return {
        "budget": budget.name(), "scope": budget.scope, "target": budget.target,
        "period": budget.period, "period_start": start, "period_end": end,
        "window_start": at, "amount": budget.amount, "spend": spend,
        "forecast": spend + expected, "forecast_low": low, "forecast_high": high,
    }  # fmt: skip
