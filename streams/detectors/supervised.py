"""River's supervised anomaly detectors (``GaussianScorer``: the score of a target
``y``) as unsupervised ones of the value: ``x["value"]`` is the target."""

from typing import Any

from river import base

from kubeopera.streams.detectors import Features


class OfTheValue(base.AnomalyDetector):
    """``detector`` learning and scoring ``x["value"]`` as its target."""

    def __init__(self, detector: Any) -> None:
        self.detector = detector

    def learn_one(self, x: Features) -> None:
        self.detector.learn_one(None, x["value"])

    def score_one(self, x: Features) -> float:
        score: float = self.detector.score_one(None, x["value"])
        return score
