"""Scoring anomaly detections the way the Numenta Anomaly Benchmark does (Lavin and
Ahmad, "Evaluating Real-time Anomaly Detection Algorithms - the Numenta Anomaly
Benchmark", IEEE ICMLA 2015; the method of NAB's ``sweeper``, written here from that
description).

A labelled series has anomaly windows (inclusive, by point index). Each detection is
weighed by where it falls: inside a window by a scaled sigmoid of its position (the
earlier in the window, the closer to the profile's true-positive weight; only the best
detection of a window counts), outside by the same sigmoid of its distance past the
last window's right edge (a detection just after a window costs little, one far from
any window the whole false-positive weight). A window with no detection costs the
false-negative weight. The first 15 % of a series (at most 750 points) is the
detector's probation: nothing there counts. Raw scores add up over a corpus and are
normalised so that detecting nothing scores 0 and detecting every window at its first
point scores 100.

>>> windows = [(8, 11)]
>>> detections = [False] * 20
>>> detections[8] = True  # the window's first point: the best possible detection
>>> score = series_score(detections, windows, PROFILES["standard"])
>>> round(score.raw, 9), normalised(score.raw, 1, PROFILES["standard"])
(1.0, 100.0)
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Profile:
    """The weights of a NAB application profile."""

    name: str
    tp: float
    fp: float
    fn: float


PROFILES = {
    p.name: p
    for p in (
        Profile("standard", tp=1.0, fp=0.11, fn=1.0),
        Profile("reward_low_FP_rate", tp=1.0, fp=0.22, fn=1.0),
        Profile("reward_low_FN_rate", tp=1.0, fp=0.11, fn=2.0),
    )
}
"""NAB's three profiles (its ``config/profiles.json``)."""

PROBATION = 0.15
"""The share of a series (at most 750 points: 15 % of 5,000) that does not count."""


def scaled_sigmoid(position: float) -> float:
    """``2 * sigmoid(-5 * position) - 1``: about 0.987 at -1 (a window's left edge), 0
    at its right edge, about -0.987 one window-width past it, and -1 from 3 on."""
    if position >= 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * position)) - 1.0


@dataclass(frozen=True)
class SeriesScore:
    """A series' raw score under a profile, and the counts behind it: windows detected
    (``tp``), detections outside any window (``fp``), windows missed (``fn``); ``tp +
    fn`` are the windows that count (those not wholly in the probation)."""

    raw: float
    tp: int
    fp: int
    fn: int


def probation_length(points: int) -> int:
    return int(min(math.floor(PROBATION * points), PROBATION * 5000))


@dataclass(frozen=True)
class Weights:
    """What a detection at each point of a series is worth under a profile
    (``weight``), and the window each point is in (``window``: its index, -1 outside
    any, -2 in the probation, where nothing counts); ``windows``: how many count."""

    weight: np.ndarray
    window: np.ndarray
    windows: int


def weights(points: int, windows: Sequence[tuple[int, int]], profile: Profile) -> Weights:
    """The worth of a detection at each of ``points`` points against ``windows`` (first
    and last point index of each, in order, not overlapping). Raises ``ValueError`` for
    a window outside the series or out of order."""
    previous = -1
    for first, last in windows:
        if not previous < first <= last < points:
            raise ValueError(f"window ({first}, {last}) is outside the series or out of order")
        previous = last
    best_tp = scaled_sigmoid(-1.0)
    weight, window = np.empty(points), np.full(points, -1)
    ahead = 0  # the next window not yet passed
    for index in range(points):
        while ahead < len(windows) and windows[ahead][1] < index:
            ahead += 1
        if ahead < len(windows) and windows[ahead][0] <= index:
            first, last = windows[ahead]
            position = -(last - index + 1) / (last - first + 1)
            weight[index] = scaled_sigmoid(position) * profile.tp / best_tp
            window[index] = ahead
        elif ahead == 0:
            weight[index] = scaled_sigmoid(3.0) * profile.fp  # before any window: all of it
        else:
            first, last = windows[ahead - 1]
            position = abs(index - last) / max(last - first, 1)
            weight[index] = scaled_sigmoid(position) * profile.fp
    probation = probation_length(points)
    window[:probation] = -2
    counted = sum(1 for _, last in windows if last >= probation)
    return Weights(weight, window, counted)


def score(detected: np.ndarray, worth: Weights, profile: Profile) -> SeriesScore:
    """The raw score of ``detected`` (a boolean per point) with the points' ``worth``:
    each window's best detection, or its miss, and every detection outside a window."""
    inside = detected & (worth.window >= 0)
    outside = detected & (worth.window == -1)
    best: dict[int, float] = {}
    for index in np.flatnonzero(inside):
        w = int(worth.window[index])
        best[w] = max(best.get(w, -math.inf), float(worth.weight[index]))
    missed = worth.windows - len(best)
    raw = sum(best.values()) + float(worth.weight[outside].sum()) - profile.fn * missed
    return SeriesScore(raw, len(best), int(outside.sum()), missed)


def series_score(
    detections: Sequence[bool], windows: Sequence[tuple[int, int]], profile: Profile
) -> SeriesScore:
    """The raw NAB score of ``detections`` (one per point) against ``windows``."""
    worth = weights(len(detections), windows, profile)
    return score(np.asarray(detections, dtype=bool), worth, profile)


def normalised(raw: float, windows: int, profile: Profile) -> float:
    """A corpus' summed raw score on NAB's scale: 0 for detecting nothing (each of the
    ``windows`` that count missed: the series' ``tp + fn``), 100 for detecting each at
    its first point."""
    null, perfect = -profile.fn * windows, profile.tp * windows
    return 100.0 * (raw - null) / (perfect - null) if windows else 0.0
