"""Durations on the command line: ``30s``, ``90m``, ``24h``, ``7d``, ``2w``."""

import re
from datetime import UTC, datetime, timedelta

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """``30s``, ``90m``, ``24h``, ``7d``, ``2w`` as a timedelta; a clear error otherwise."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([smhdw])", text.strip())
    if not match or float(match[1]) <= 0:
        raise ValueError(
            f"invalid duration {text!r}: use a positive number and s, m, h, d or w, e.g. 7d"
        )
    try:
        return timedelta(**{_UNITS[match[2]]: float(match[1])})
    except OverflowError:
        raise ValueError(f"invalid duration {text!r}: too long") from None


EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
"""The earliest instant the store's times (ClickHouse ``DateTime64``) can hold."""


def window_start(window: timedelta, now: datetime) -> datetime:
    """The start of a report window reaching back ``window`` from ``now`` (UTC).

    Raises ``ValueError`` when it would start before ``EARLIEST``.

    >>> window_start(timedelta(days=7), datetime(2026, 3, 9, tzinfo=UTC)).isoformat()
    '2026-03-02T00:00:00+00:00'
    >>> window_start(timedelta(weeks=100_000), datetime(2026, 3, 9, tzinfo=UTC))
    Traceback (most recent call last):
    ...
    ValueError: a window of 700000d reaches back before 1900-01-01, ...
    """
    if window >= now - EARLIEST:
        raise ValueError(
            f"a window of {format_duration(window)} reaches back before "
            f"{EARLIEST.date().isoformat()}, the earliest time the store holds: "
            "give a shorter window"
        )
    return now - window


def format_duration(span: timedelta) -> str:
    """The inverse of ``parse_duration`` for display: ``1d6h``, ``24h`` stays ``1d``."""
    seconds = int(span.total_seconds())
    parts = []
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"
