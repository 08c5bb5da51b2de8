"""A detector that knows the daily and weekly pattern of cluster workloads: each value
is compared with what is usual at that hour of a weekday, or of a weekend day (a
morning ramp is usual at 9 a.m. on a Monday; the same ramp at 3 a.m. is not, and a
batch job that runs every weekend is usual on Saturdays).

Additive Holt-Winters smoothing without trend (Hyndman & Athanasopoulos, *Forecasting:
Principles and Practice*, 3rd ed., section 8.3) over 48 seasons (weekday or weekend,
hour of the day, UTC), with a level of its own for each kind of day (Monday morning
follows Friday's, not Sunday's): the expected value is the day's level plus the
season's offset; the level follows each value quickly (``beta``, so a workload scaled
up is its new normal within hours), each season's offset slowly (``gamma``, once a day
at most). The
residuals (value less expected) of every season share one exponentially weighted
variance (``delta``): pooled, it is known after a day. Once values are judged, each is
learnt cleaned, clipped to ``clip`` deviations from the expected (Huber's psi, as in
Gelper, Fried & Croux, "Robust forecasting with exponential and Holt-Winters
smoothing", Journal of Forecasting 29, 2010): an anomaly neither moves the level nor
widens the band it is judged by, so an episode lasts while the values stay out of it,
and a lasting change becomes the new normal within hours. A value's score is
``erf(z / sqrt(2))``, ``z`` its residual in deviations (no less than ``floor`` times
the expected value, nor ``min_deviation``); with ``direction="up"`` only values above
the expected score (a cost that falls is no alarm). Nothing scores above 0 before the
variance has ``warm_up`` residuals, nor in a season seen fewer than ``seen`` times: what
is usual on Saturdays cannot be known on the first Saturday.
The state is two arrays of 48 numbers and a few more: about a kilobyte pickled.

``x`` holds ``value`` and ``at``, the time as POSIX seconds (UTC).

>>> detector = Seasonal()
>>> monday = 1_767_571_200  # 2026-01-05 00:00 UTC, a Monday
>>> def week(hour: int) -> float:  # busy in office hours, Monday to Friday
...     return 80.0 if 9 <= hour % 24 < 18 and hour % 168 < 120 else 20.0
>>> for hour in range(4 * 168 + 10):  # four weeks, and a Monday morning to 10 a.m.
...     detector.learn_one({"value": week(hour), "at": monday + hour * 3600})
>>> at = lambda hour: monday + (4 * 168 + hour) * 3600
>>> detector.score_one({"value": 80.0, "at": at(10)}) < 0.9  # busy at 10 a.m.
True
>>> detector.score_one({"value": 80.0, "at": at(3)}) > 0.99  # the same at 3 a.m.
True
>>> detector.score_one({"value": 80.0, "at": at(5 * 24 + 10)}) > 0.99  # on a Saturday
True
>>> 78 < detector.expected_one({"value": 0.0, "at": at(10)})[0] < 82  # expected at 10 a.m.
True
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
    """``beta``: an hourly value's weight in the level; ``gamma``: its weight in its
    season's offset; ``delta``: its weight in the residuals' variance (a value that
    comes ``h`` hours after the one before weighs ``1 - (1 - rate) ** h``: the same
    memory in time at any resolution); ``floor``: the least
    deviation as a share of the expected value; ``min_deviation``: the least deviation
    in the series' unit; ``direction``: ``"both"``, or ``"up"`` to score only values
    above the expected; ``seen``: the visits a season needs before its values are
    judged; ``warm_up``: the residuals the variance needs first; ``clip``: the most
    deviations a value is learnt at (an outlier does not teach that it is usual).
    Raises ``ValueError`` for a value out of its range."""

    def __init__(
        self,
        beta: float = 0.2,
        gamma: float = 0.5,
        delta: float = 0.05,
        floor: float = 0.05,
        min_deviation: float = 0.0,
        direction: Literal["both", "up"] = "both",
        seen: int = 3,
        warm_up: int = 24,
        clip: float = 2.0,
    ) -> None:
        for name, rate in (("beta", beta), ("gamma", gamma), ("delta", delta)):
            if not isinstance(rate, int | float) or not 0 < rate <= 1:
                raise ValueError(f"{name} is a weight between 0 and 1, got {rate!r}")
        for name, least in (("floor", floor), ("min_deviation", min_deviation), ("clip", clip)):
            if not isinstance(least, int | float) or not least >= 0:
                raise ValueError(f"{name} must be a number >= 0, got {least!r}")
        for name, count in (("seen", seen), ("warm_up", warm_up)):
            if not isinstance(count, int) or count < 0:
                raise ValueError(f"{name} must be a whole number >= 0, got {count!r}")
        if direction not in ("both", "up"):
            raise ValueError(f"direction is 'both' or 'up', got {direction!r}")
        self.beta = beta
        self.gamma = gamma
        self.delta = delta
        self.floor = floor
        self.min_deviation = min_deviation
        self.direction = direction
        self.seen = seen
        self.warm_up = warm_up
        self.clip = clip
        self._residuals = 0  # residuals learnt into the variance
        self._offsets = array("f", bytes(4 * SLOTS))  # single precision: plenty, and small
        self._counts = array("H", bytes(2 * SLOTS))  # visits, up to 65,535
        self._levels = [0.0, 0.0]  # weekdays, weekends
        self._variance = 0.0
        self._count = 0
        self._last = -math.inf  # the latest ``at`` learnt

    def _offset(self, here: int) -> float:
        """The season's offset; one not seen yet borrows the same hour's of the other kind
        of day, else 0."""
        if self._counts[here]:
            return self._offsets[here]
        other = (here + 24) % SLOTS
        return self._offsets[other] if self._counts[other] else 0.0

    def _level(self, here: int) -> float:
        """The level of the season's kind of day; until that kind has been seen, the
        other's."""
        kind = here // 24
        return self._levels[kind] if self._seen_kind(kind) else self._levels[1 - kind]

    def _seen_kind(self, kind: int) -> bool:
        return any(self._counts[kind * 24 : kind * 24 + 24])

    def expected_one(self, x: Features) -> tuple[float, float]:
        """The value expected at ``x["at"]`` and the deviation a residual is measured in."""
        here = slot(x["at"])
        expected = self._level(here) + self._offset(here)
        deviation = max(math.sqrt(self._variance), self.floor * abs(expected))
        return expected, max(deviation, self.min_deviation)

    def learn_one(self, x: Features) -> None:
        value, at, here = x["value"], x["at"], slot(x["at"])
        if not self._count:
            self._levels = [value, value]
        hours = min(max((at - self._last) / 3600, 0.0), 24.0) if self._count else 1.0
        beta, gamma, delta = (1 - (1 - r) ** hours for r in (self.beta, self.gamma, self.delta))
        offset, level = self._offset(here), self._level(here)
        if self._judged(here):  # an outlier is learnt as the nearest usual value
            bound = self.clip * self.expected_one(x)[1]
            value = min(max(value, level + offset - bound), level + offset + bound)
        if self._counts[here]:
            residual = value - level - offset
            self._variance += delta * (residual * residual - self._variance)
            self._residuals += 1
        level += beta * (value - offset - level)
        self._offsets[here] = offset + gamma * (value - level - offset)
        self._counts[here] = min(self._counts[here] + 1, 2**16 - 1)
        self._levels[here // 24] = level
        self._last = max(self._last, at)
        self._count += 1

    def _judged(self, here: int) -> bool:
        return self._residuals >= self.warm_up and self._counts[here] >= self.seen

    def score_one(self, x: Features) -> float:
        if not self._judged(slot(x["at"])):
            return 0.0
        expected, deviation = self.expected_one(x)
        z = (x["value"] - expected) / (deviation or 1e-9)
        if self.direction == "up":
            z = max(z, 0.0)
        return math.erf(abs(z) / math.sqrt(2))
