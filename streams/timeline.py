"""Timelines: values that hold from the time the cluster observed them until the next.

The reference data (pod versions, namespace labels, node prices) is kept as timelines,
so that each scrape is costed with the value valid at its time whatever order and
batching the input came in (``record`` sorts by time), and memory stays bounded
(``prune`` drops what no admissible scrape can reach).

>>> from datetime import UTC, datetime
>>> at = [datetime(2026, 1, 1, h, tzinfo=UTC) for h in range(4)]
>>> prices: Timeline[float] = []
>>> record(prices, at[2], 0.136), record(prices, at[0], 0.068), record(prices, at[3], 0.136)
(True, True, False)
>>> as_of(prices, at[1]), as_of(prices, at[2])
(0.068, 0.136)
>>> prune(prices, at[3]); prices == [(at[2], 0.136)]
True
"""

from collections.abc import Callable
from datetime import datetime
from operator import eq
from typing import Any, TypeVar

T = TypeVar("T")

Timeline = list[tuple[datetime, T]]
"""(valid_from, value) in time order; a value holds until the next one's time."""


def record(timeline: Timeline[T], at: datetime, value: T, same: Callable[[T, T], Any] = eq) -> bool:
    """Insert ``value`` as valid from ``at``. A value ``same`` as the one valid just
    before is no change; at an instant already recorded the later report wins.
    Returns whether the timeline changed."""
    index = len(timeline)
    while index and timeline[index - 1][0] > at:
        index -= 1
    if index and timeline[index - 1][0] == at:
        if same(timeline[index - 1][1], value):
            return False
        timeline[index - 1] = (at, value)
        return True
    if index and same(timeline[index - 1][1], value):
        return False
    timeline.insert(index, (at, value))
    return True


def as_of(timeline: Timeline[T], at: datetime) -> T:
    """The value valid at ``at``; before the first one, the first one. IndexError when
    the timeline is empty."""
    value = timeline[0][1]
    for since, candidate in timeline:
        if since > at:
            break
        value = candidate
    return value


def prune(timeline: Timeline[T], before: datetime) -> None:
    """Drop values superseded before ``before``; the one valid then stays."""
    while len(timeline) > 1 and timeline[1][0] <= before:
        del timeline[0]
