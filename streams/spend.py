"""What a budget target has spent, hour by hour, and a budget's status from it: the
budget processor keeps one ``Spend`` per target and cluster as the hours come;
``kubeopera budgets status`` builds the same from the store's hourly costs.

An hour a target's series skips (a namespace whose pods were all gone) cost nothing:
the hours between two counted ones are counted as $0, so the forecast learns them.

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

import math
from array import array
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from kubeopera.models import Budget, BudgetPeriod
from kubeopera.streams.forecast import HOUR, HourlyForecast, interval

PERIOD = {BudgetPeriod.WEEKLY: timedelta(days=7), BudgetPeriod.MONTHLY: timedelta(days=31)}
"""The longest of each period: the one before a new one starts within it."""
GAP = 6 * 7 * 24
"""The most hours without cost counted as $0 at once (six weeks: the forecast's weekly
means have forgotten what came before by then)."""


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
    """One target's cost in one cluster: the last hour counted (UTC), the cost (USD) of
    each hour of the week and of the month that hour is in, and of the ones before
    (a budget's status as of an earlier hour may still be asked for while another
    cluster catches up), and the forecast model of its hours."""

    last: datetime | None = None
    hours: "dict[tuple[BudgetPeriod, datetime], array[float]]" = field(default_factory=dict)
    model: HourlyForecast = field(default_factory=HourlyForecast)

    def count(self, at: datetime, value: float) -> bool:
        """The hour starting at ``at`` cost ``value`` USD (the hours since the last one
        counted, nothing); False, and nothing counted, for an hour at or before the
        last."""
        if self.last is not None and at <= self.last:
            return False
        self.advance(at - HOUR)
        self._add(at, value)
        return True

    def advance(self, through: datetime) -> None:
        """The hours after the last counted, to ``through``, cost nothing."""
        if self.last is None or through <= self.last:
            return
        gap = min(GAP, int((through - self.last) / HOUR))
        for n in range(gap, 0, -1):
            self._add(through - (n - 1) * HOUR, 0.0)

    def _add(self, at: datetime, value: float) -> None:
        for period in BudgetPeriod:
            start = period_of(period, at)[0]
            if (period, start) not in self.hours:  # a new period: the one before stays
                self.hours = {
                    (p, s): c
                    for (p, s), c in self.hours.items()
                    if p != period or s >= start - PERIOD[period]
                }
            costs = self.hours.setdefault((period, start), array("d"))
            index = int((at - start) / HOUR)
            costs.extend([0.0] * (index + 1 - len(costs)))
            costs[index] = value
        self.model.learn(at, value)
        self.last = at

    def spent(self, period: BudgetPeriod, through: datetime) -> float:
        """The cost (USD) of ``period``'s hours, in the period ``through`` is in, up to and
        including the hour starting at ``through``."""
        start = period_of(period, through)[0]
        costs = self.hours.get((period, start))
        return math.fsum(costs[: int((through - start) / HOUR) + 1]) if costs else 0.0


def budget_status(budget: Budget, at: datetime, spends: dict[str, Spend]) -> dict[str, Any]:
    """The budget's status as of the hour starting at ``at`` (UTC), over the clusters'
    ``spends``: the spend of its period through that hour (USD: a cluster's hours after
    it do not count, one that has not reported it yet counts what it has), and the
    forecast to the period's end: what each cluster cost after that hour as far as it
    has reported (one ahead of the others), and is expected to cost in the hours it has
    not reported, with the 90 % interval. The spend as of an hour is the same whatever
    order the clusters reported in; the forecast is as far as each had reported. Keys:
    those of the ``budget_status`` table."""
    start, end = period_of(budget.period, at)
    spend, expected, variance = 0.0, 0.0, 0.0
    for name in sorted(spends):
        cluster = spends[name]
        spend += cluster.spent(budget.period, at)
        if cluster.last is None:
            continue
        reported = min(cluster.last, end - HOUR)
        if reported > at:  # ahead: what it cost since
            expected += cluster.spent(budget.period, reported) - cluster.spent(budget.period, at)
        ahead, spread = cluster.model.ahead(max(cluster.last + HOUR, start), end)
        expected += ahead
        variance += spread
    low, high = interval(spend + expected, variance)
    return {
        "budget": budget.name(), "scope": budget.scope, "target": budget.target,
        "period": budget.period, "period_start": start, "period_end": end,
        "window_start": at, "amount": budget.amount, "spend": spend,
        "forecast": spend + expected, "forecast_low": low, "forecast_high": high,
    }  # fmt: skip
