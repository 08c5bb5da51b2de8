"""Online anomaly detectors written here, on river's detector contract (``learn_one``,
``score_one``: a score in [0, 1], the higher the more anomalous), so that any of river's
own can stand in for them."""

from collections.abc import Callable, Hashable
from typing import Any

Features = dict[Hashable, Any]
"""A point as river takes it: ``value`` (and ``at``, POSIX seconds, UTC)."""


def build(name: str, low: float | None = None, high: float | None = None) -> Any:
    """A detector by name, for a series whose values lie between ``low`` and ``high``
    (when known: the contextual detector discretises over them): ``contextual``,
    ``seasonal``, ``windowed_gaussian``, river's ``half_space_trees`` (on the value scaled
    to [0, 1] as it arrives) and ``gaussian_scorer`` (river's supervised scorer of the
    value). Raises ``KeyError`` for another name."""
    from river import anomaly, compose, preprocessing

    from kubeopera.streams.detectors.contextual import ContextualDetector
    from kubeopera.streams.detectors.seasonal import Seasonal
    from kubeopera.streams.detectors.supervised import OfTheValue
    from kubeopera.streams.detectors.windowed_gaussian import WindowedGaussian

    makers: dict[str, Callable[[], Any]] = {
        "contextual": lambda: ContextualDetector(low=low, high=high),
        "seasonal": Seasonal,
        "windowed_gaussian": WindowedGaussian,
        "half_space_trees": lambda: (
            compose.Select("value") | preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees(seed=42)
        ),
        "gaussian_scorer": lambda: OfTheValue(
            anomaly.GaussianScorer(window_size=1000)  # type: ignore[no-untyped-call]
        ),
    }
    return makers[name]()


def build_detector(name: str, params: dict[str, Any] | None = None) -> Any:
    """A detector for the live series: one of ``NAMES`` or any of river's unsupervised
    detectors by class name (``river.anomaly.HalfSpaceTrees``, fed the value), built
    with ``params`` (the seasonal detector scores rises only unless ``direction`` says
    otherwise: a cost that falls is no alarm). Raises ``ValueError`` naming what is
    wrong."""
    from river import anomaly, base, compose

    from kubeopera.streams.detectors.seasonal import Seasonal

    params = params or {}
    if name.startswith("river.anomaly."):
        model = getattr(anomaly, name.removeprefix("river.anomaly."), None)
        if not isinstance(model, type) or not issubclass(model, base.AnomalyDetector):
            raise ValueError(f"river.anomaly has no unsupervised detector {name[14:]!r}")
        make: Callable[[], Any] = lambda: compose.Select("value") | model(**params)  # noqa: E731
    elif name == "seasonal":
        make = lambda: Seasonal(**{"direction": "up", **params})  # noqa: E731
    elif name not in NAMES:
        known = ", ".join(NAMES)
        raise ValueError(f"unknown detector {name!r} (known: {known}, river.anomaly.<Name>)")
    elif params:
        raise ValueError(f"detector {name!r} takes no detector_params here")
    else:
        make = lambda: build(name)  # noqa: E731
    try:
        return make()
    except (TypeError, ValueError) as error:  # the parameters the detector refused
        raise ValueError(f"detector {name!r}: {error}") from error


NAMES = ("contextual", "seasonal", "windowed_gaussian", "half_space_trees", "gaussian_scorer")
"""The detectors ``build`` knows."""
