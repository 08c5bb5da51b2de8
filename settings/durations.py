"""Durations on the command line: ``90m``, ``24h``, ``7d``, ``2w``."""

import re
from datetime import timedelta

_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """``90m``, ``24h``, ``7d``, ``2w`` as a timedelta; a clear error otherwise."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([mhdw])", text.strip())
    if not match or float(match[1]) <= 0:
        raise ValueError(
            f"invalid duration {text!r}: use a positive number and m, h, d or w, e.g. 7d"
        )
    return timedelta(**{_UNITS[match[2]]: float(match[1])})


def format_duration(span: timedelta) -> str:
    """The inverse of ``parse_duration`` for display: ``1d6h``, ``24h`` stays ``1d``."""
    seconds = int(span.total_seconds())
    parts = []
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"
