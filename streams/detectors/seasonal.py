"""A detector that knows the daily and weekly pattern of cluster workloads: each value
is compared with what is usual at that hour of that day of the week (a morning ramp is
usual at 9 a.m. on a Monday; the same ramp at 3 a.m. is not), learnt online with
exponential forgetting, so a pattern that shifts is followed.

Each of the week's 168 hours keeps an exponentially weighted mean and variance of its
values; a value's score is ``erf(|z| / sqrt(2))`` with ``z`` its distance from its hour's
mean in that hour's standard deviation (no less than ``floor`` times the whole series'
own, so a quiet hour does not make noise an anomaly). Until an hour has seen
``warm_up`` values, the whole series' mean and deviation stand in.

``x`` holds ``value`` and ``at``, the time as POSIX seconds (UTC).

>>> detector = Seasonal()
>>> monday = 1_767_571_200  # 2026-01-05 00:00 UTC, a Monday
>>> for week in range(4):
...     for hour in range(168):
...         busy = 9 <= hour % 24 < 18
...         detector.learn_one({"value": 80.0 if busy else 20.0,
...                             "at": monday + (week * 168 + hour) * 3600})
>>> at = lambda hour: monday + (4 * 168 + hour) * 3600
>>> round(detector.score_one({"value": 80.0, "at": at(10)}), 3)  # busy at 10 a.m.
0.0
>>> detector.score_one({"value": 80.0, "at": at(3)}) > 0.99  # the same at 3 a.m.
True
"""

import math

from river import base

from kubeopera.streams.detectors import Features

HOURS_A_WEEK = 168


class Seasonal(base.AnomalyDetector):
    """``alpha``: the weight of a new value in its hour's mean and variance;
    ``warm_up``: values an hour needs before its own statistics are used; ``floor``:
    the least deviation, as a share of the whole series' deviation."""

    def __init__(self, alpha: float = 0.3, warm_up: int = 2, floor: float = 0.1) -> None:
        self.alpha = alpha
        self.warm_up = warm_up
        self.floor = floor
        self._hours: dict[int, tuple[int, float, float]] = {}  # hour -> count, mean, var
        self._count, self._mean, self._squares = 0, 0.0, 0.0  # the whole series (Welford)

    @staticmethod
    def _hour(at: float) -> int:
        # 1970-01-01 was a Thursday: shift so that hour 0 is Monday 00:00 UTC
        return int((at // 3600 + 72) % HOURS_A_WEEK)

    def learn_one(self, x: Features) -> None:
        value, hour = x["value"], self._hour(x["at"])
        self._count += 1
        delta = value - self._mean
        self._mean += delta / self._count
        self._squares += delta * (value - self._mean)
        count, mean, var = self._hours.get(hour, (0, value, 0.0))
        if count:
            delta = value - mean
            mean += self.alpha * delta
            var = (1 - self.alpha) * (var + self.alpha * delta * delta)
        self._hours[hour] = (count + 1, mean, var)

    def score_one(self, x: Features) -> float:
        if self._count < 2:
            return 0.0
        overall = math.sqrt(self._squares / self._count)
        count, mean, var = self._hours.get(self._hour(x["at"]), (0, 0.0, 0.0))
        if count < self.warm_up:
            mean, std = self._mean, overall
        else:
            std = max(math.sqrt(var), self.floor * overall)
        return math.erf(abs(x["value"] - mean) / (std or 1e-6) / math.sqrt(2))
