"""A forecast of hourly cost to the end of a budget period, from its weekly pattern.

Each of the week's 168 hours keeps an exponentially weighted mean of its cost
(``alpha``); an hour not seen yet is expected at the series' level (an exponentially
weighted mean, ``beta``). The forecast of the hours left is the sum of what each is
expected to cost; its interval takes the hours' errors as normal with the variance of
the residuals seen (exponentially weighted, ``beta``) and as moving together (what makes
one hour dearer, a workload scaled up, lasts): the sum's deviation is one hour's times
the number of hours left, wider than independent errors' (times its square root),
which covered the actual week in under half of the demo's namespaces. Seasonal-naive
forecasting with a smoothed season (Hyndman & Athanasopoulos, *Forecasting: Principles
and Practice*, 3rd ed., sections 5.2 and 8.3).

>>> from datetime import UTC, datetime, timedelta
>>> forecast = HourlyForecast()
>>> start = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
>>> for hour in range(48):
...     forecast.learn(start + timedelta(hours=hour), 2.0)
>>> forecast.ahead(start + timedelta(hours=48), start + timedelta(days=7))  # 120 hours at $2
(240.0, 0.0)
>>> [round(end, 2) for end in interval(100.0, 4.0)]  # a deviation of 2: 100 +- 1.645 * 2
[96.71, 103.29]
"""

import math
from array import array
from datetime import datetime, timedelta

HOUR = timedelta(hours=1)
HOURS_A_WEEK = 168
Z_90 = 1.6448536269514722  # the normal quantile of 0.95: a central 90 % interval


def hour_of_week(at: datetime) -> int:
    """0 for Monday 00:00-01:00 UTC, 167 for Sunday 23:00."""
    return at.weekday() * 24 + at.hour


class HourlyForecast:
    def __init__(self, alpha: float = 0.3, beta: float = 0.05) -> None:
        self.alpha = alpha
        self.beta = beta
        self._means = array("d", bytes(8 * HOURS_A_WEEK))
        self._seen = array("B", bytes(HOURS_A_WEEK))
        self._level = 0.0
        self._variance = 0.0
        self._count = 0

    def expected(self, at: datetime) -> float:
        """The cost expected in the hour starting at ``at`` (USD)."""
        return self._expected(hour_of_week(at))

    def _expected(self, slot: int) -> float:
        return self._means[slot] if self._seen[slot] else self._level

    def learn(self, at: datetime, value: float) -> None:
        """The hour starting at ``at`` cost ``value`` USD."""
        slot = hour_of_week(at)
        if self._count:
            residual = value - self.expected(at)
            self._variance = (1 - self.beta) * self._variance + self.beta * residual * residual
            self._level += self.beta * (value - self._level)
        else:
            self._level = value
        mean = self._means[slot] if self._seen[slot] else value
        self._means[slot] = mean + self.alpha * (value - mean)
        self._seen[slot] = 1
        self._count += 1

    def ahead(self, start: datetime, end: datetime) -> tuple[float, float]:
        """The cost expected from ``start`` to ``end`` (whole hours, UTC), USD, and the
        variance of that sum, USD² (sums of forecasts add both)."""
        hours = max(0, math.ceil((end - start) / HOUR))
        weeks, rest = divmod(hours, HOURS_A_WEEK)
        first = hour_of_week(start)
        times = [weeks + ((slot - first) % HOURS_A_WEEK < rest) for slot in range(HOURS_A_WEEK)]
        expected = math.fsum(n * self._expected(slot) for slot, n in enumerate(times) if n)
        return expected, self._variance * hours * hours


def interval(expected: float, variance: float) -> tuple[float, float]:
    """The 90 % interval of a forecast (USD), no lower than 0."""
    spread = Z_90 * math.sqrt(variance)
    return max(0.0, expected - spread), expected + spread
