"""Online anomaly detectors written here, on river's detector contract (``learn_one``,
``score_one``: a score in [0, 1], the higher the more anomalous), so that any of river's
own can stand in for them."""

from collections.abc import Hashable
from typing import Any

Features = dict[Hashable, Any]
"""A point as river takes it: ``value`` (and ``at``, POSIX seconds, UTC)."""
