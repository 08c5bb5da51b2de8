"""Detectors side by side on a NAB-style corpus (``reports.nab_corpus``), scored the NAB
way (``reports.nab``): each detector scores every series online (``score_one`` then
``learn_one`` per point, as a live series would be); a detection is an episode's onset
(the score reaches the threshold after ``rest`` points below it: one finding per
episode, as KubeOpera reports them); for each profile the threshold that scores best
over the corpus is chosen, as NAB's optimiser chooses it."""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from kubeopera.reports.nab import PROFILES, normalised, score, weights
from kubeopera.reports.nab_corpus import LabelledSeries
from kubeopera.streams.detectors import build

REST = 30
"""Points below the threshold that end an episode."""


@dataclass(frozen=True)
class Result:
    """A detector's score under a profile, at its best threshold, with each series'
    raw score and counts (``series``: name -> (raw, tp, fp, fn))."""

    detector: str
    profile: str
    threshold: float
    score: float
    series: dict[str, tuple[float, int, int, int]]


def anomaly_scores(detector: str, series: LabelledSeries) -> np.ndarray:
    """The detector's score of each point, online."""
    model = build(detector, min(series.values), max(series.values))
    scores = np.empty(len(series.values))
    for index, (at, value) in enumerate(zip(series.timestamps, series.values, strict=True)):
        x = {"value": value, "at": at.timestamp()}
        scores[index] = model.score_one(x)
        model.learn_one(x)
    return scores


def onsets(scores: np.ndarray, threshold: float, rest: int = REST) -> np.ndarray:
    """Where an episode starts: a score at or over ``threshold`` after ``rest`` below."""
    above = np.flatnonzero(scores >= threshold)
    starts = np.zeros(len(scores), dtype=bool)
    if above.size:
        gaps = np.diff(above, prepend=-rest - 1) > rest
        starts[above[gaps]] = True
    return starts


def evaluate(corpus: Sequence[LabelledSeries], detectors: Sequence[str]) -> list[Result]:
    """Every detector under every profile, at its best threshold over ``corpus``."""
    results = []
    for detector in detectors:
        scores = [anomaly_scores(detector, s) for s in corpus]
        flat = np.concatenate(scores)
        candidates = np.unique(np.quantile(flat, np.linspace(0.5, 1.0, 501)))
        for profile in PROFILES.values():
            worth = [weights(len(s.values), s.windows, profile) for s in corpus]
            best: Result | None = None
            for threshold in candidates:
                parts = [
                    score(onsets(x, threshold), w, profile)
                    for x, w in zip(scores, worth, strict=True)
                ]
                total = normalised(
                    sum(p.raw for p in parts), sum(p.tp + p.fn for p in parts), profile
                )
                if best is None or total > best.score:
                    detail = {
                        s.name: (p.raw, p.tp, p.fp, p.fn)
                        for s, p in zip(corpus, parts, strict=True)
                    }
                    best = Result(detector, profile.name, float(threshold), total, detail)
            assert best is not None
            results.append(best)
    return results
