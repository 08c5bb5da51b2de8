"""Waiting out an unavailable ClickHouse: retries with exponential backoff.

Only ``ClickHouseUnavailableError`` (the server cannot be reached) is retried; a statement
ClickHouse refuses fails at once, since retrying it cannot help. While an insert
retries, its caller does not consume more input, so memory stays bounded and nothing
is dropped.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from kubeopera.sinks.clickhouse.backends import ClickHouseUnavailableError

Result = TypeVar("Result")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Backoff:
    initial_s: float = 0.5
    factor: float = 2.0
    maximum_s: float = 30.0
    give_up_after_s: float | None = None  # None: wait for as long as it takes


DEFAULT_BACKOFF = Backoff()


def with_retries(
    action: Callable[[], Result],
    backoff: Backoff = DEFAULT_BACKOFF,
    sleep: Callable[[float], None] = time.sleep,
) -> Result:
    """``action()``, retried while ClickHouse is unavailable."""
    delay, waited = backoff.initial_s, 0.0
    while True:
        try:
            return action()
        except ClickHouseUnavailableError as error:
            if backoff.give_up_after_s is not None and waited + delay > backoff.give_up_after_s:
                raise
            log.warning("ClickHouse unavailable (%s); retrying in %.1f s", error, delay)
            sleep(delay)
            waited += delay
            delay = min(delay * backoff.factor, backoff.maximum_s)
