"""A detector that knows the daily and weekly pattern of cluster workloads: each value
is compared with what is usual at that hour of a weekday, or of a weekend day (a
morning ramp is usual at 9 a.m. on a Monday; the same ramp at 3 a.m. is not, and a
batch job that runs every weekend is usual on Saturdays), learnt online with
exponential forgetting, so a pattern that shifts is followed.

Each of the 48 slots (weekday or weekend, hour of the day, UTC) keeps an exponentially
weighted mean of its values (``alpha``); what a value is expected to be is its slot's
mean, else (a slot not seen yet) the same hour's on the other kind of day, else the
series' level (an exponentially weighted mean, ``beta``). The residuals (value less
expected) of every slot share one exponentially weighted variance (``beta``): pooled,
it is known after a day, where 48 variances of their own would take weeks. A value's
score is ``erf(z / sqrt(2))``, ``z`` its residual in deviations (the deviation no less
than ``floor`` times the level, nor ``min_deviation``); with ``direction="up"`` only
values above the expected score (a cost that falls is no alarm). The state is two
arrays of 48 numbers and four more: about a kilobyte pickled, whatever the history.

``x`` holds ``value`` and ``at``, the time as POSIX seconds (UTC).

>>> detector = Seasonal()
>>> monday = 1_767_571_200  # 2026-01-05 00:00 UTC, a Monday
>>> for week in range(4):
...     for hour in range(168):
...         busy = 9 <= hour % 24 < 18 and hour < 120  # office hours, Monday to Friday
...         detector.learn_one({"value": 80.0 if busy else 20.0,
...                             "at": monday + (week * 168 + hour) * 3600})
>>> at = lambda hour: monday + (4 * 168 + hour) * 3600
>>> round(detector.score_one({"value": 80.0, "at": at(10)}), 3)  # busy at 10 a.m.
0.0
>>> detector.score_one({"value": 80.0, "at": at(3)}) > 0.99  # the same at 3 a.m.
True
>>> detector.score_one({"value": 80.0, "at": at(5 * 24 + 10)}) > 0.99  # on a Saturday
True
>>> detector.expected_one({"value": 0.0, "at": at(10)})[0]  # the expected value at 10 a.m.
80.0
"""

import math
from array import array
from typing import Literal

from river import base

from kubeopera.streams.detectors import Features

SLOTS = 48  # weekday hours 0-23, weekend hours 24-47


def slot(at: float) -> int:
    """The slot of POSIX seconds ``at``: its hour of the day, plus 24 on a weekend."""
    hours = int(at // 3600)
    weekday = (hours // 24 + 3) % 7  # 1970-01-01 was a Thursday (3: Monday is 0)
    return hours % 24 + (24 if weekday >= 5 else 0)


class Seasonal(base.AnomalyDetector):
    """``alpha``: a new value's weight in its slot's mean; ``beta``: its weight in the
    level and the residuals' variance; ``floor``: the least deviation as a share of the
    level; ``min_deviation``: the least deviation in the series' unit; ``direction``:
    ``"both"``, or ``"up"`` to score only values above the expected."""

    def __init__(
        self,
        alpha: float = 0.3,
        beta: float = 0.05,
        floor: float = 0.05,
        min_deviation: float = 0.0,
        direction: Literal["both", "up"] = "both",
    ) -> None:
        self.alpha = alpha
        self.beta = beta
        self.floor = floor
        self.min_deviation = min_deviation
        self.direction = direction
        self._means = array("d", bytes(8 * SLOTS))
        self._counts = array("I", bytes(4 * SLOTS))
        self._level = 0.0
        self._variance = 0.0
        self._count = 0

    def expected_one(self, x: Features) -> tuple[float, float]:
        """The value expected at ``x["at"]`` and the deviation a residual is measured in."""
        here = slot(x["at"])
        other = (here + 24) % SLOTS
        if self._counts[here]:
            expected = self._means[here]
        elif self._counts[other]:
            expected = self._means[other]
        else:
            expected = self._level
        deviation = max(math.sqrt(self._variance), self.floor * abs(self._level))
        return expected, max(deviation, self.min_deviation)

    def learn_one(self, x: Features) -> None:
        value, here = x["value"], slot(x["at"])
        if self._count:
            residual = value - self.expected_one(x)[0]
            self._variance = (1 - self.beta) * self._variance + self.beta * residual * residual
            self._level += self.beta * (value - self._level)
        else:
            self._level = value
        mean = self._means[here] if self._counts[here] else value
        self._means[here] = mean + self.alpha * (value - mean)
        self._counts[here] = min(self._counts[here] + 1, 2**32 - 1)
        self._count += 1

    def score_one(self, x: Features) -> float:
        if self._count < 2:
            return 0.0
        expected, deviation = self.expected_one(x)
        z = (x["value"] - expected) / (deviation or 1e-9)
        if self.direction == "up":
            z = max(z, 0.0)
        return math.erf(abs(z) / math.sqrt(2))
