"""The windowed-Gaussian baseline: how unlikely a value is under the normal distribution
of the last ``window_size`` values (NAB's ``windowedGaussian`` baseline detector, window
of 1,000 points). A river anomaly detector: ``score_one`` then ``learn_one`` per point.

>>> detector = WindowedGaussian(window_size=100)
>>> for value in [10.0, 11.0, 9.0, 10.0] * 25:
...     detector.learn_one({"value": value})
>>> round(detector.score_one({"value": 10.0}), 3)  # the mean
0.0
>>> round(detector.score_one({"value": 11.0}), 3)  # one deviation (sqrt(1/2)) is z = sqrt 2: erf 1
0.843
"""

import math
from collections import deque

from river import base

from kubeopera.streams.detectors import Features


class WindowedGaussian(base.AnomalyDetector):
    """``x["value"]`` against the mean and standard deviation of the last
    ``window_size`` values: the score is the probability that a normal value lies
    closer to the mean, ``erf(|z| / sqrt(2))``, in [0, 1)."""

    def __init__(self, window_size: int = 1000) -> None:
        self.window_size = window_size
        self._window: deque[float] = deque()
        self._sum = 0.0
        self._squares = 0.0

    def learn_one(self, x: Features) -> None:
        value = x["value"]
        self._window.append(value)
        self._sum += value
        self._squares += value * value
        if len(self._window) > self.window_size:
            gone = self._window.popleft()
            self._sum -= gone
            self._squares -= gone * gone

    def expected_one(self, x: Features) -> tuple[float, float]:
        """The window's mean and standard deviation (0, 0 while it is empty)."""
        count = len(self._window)
        if not count:
            return 0.0, 0.0
        mean = self._sum / count
        return mean, math.sqrt(max(self._squares / count - mean * mean, 0.0))

    def score_one(self, x: Features) -> float:
        if len(self._window) < 2:
            return 0.0
        mean, std = self.expected_one(x)
        return math.erf(abs(x["value"] - mean) / (std or 1e-6) / math.sqrt(2))
