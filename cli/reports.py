"""Reports the commands print, read from the store."""

import re
from datetime import datetime, timedelta

import polars as pl

from kubeopera.sinks.clickhouse import Store
from kubeopera.sinks.clickhouse.queries import cost_rows_sql
from kubeopera.streams.aggregate import INPUT_MEASURES, Sharing, aggregate, key_columns

NO_SHARING = Sharing()
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


REPORT_COLUMNS = [
    "total_cost",
    "cpu_cost",
    "ram_cost",
    "gpu_cost",
    "idle_cost",
    "shared_cost",
    "cpu_efficiency",
    "ram_efficiency",
]


def cost_report(
    store: Store,
    by: str,
    since: datetime,
    until: datetime | None = None,
    sharing: Sharing = NO_SHARING,
) -> pl.DataFrame:
    """Cost per group of ``by`` between ``since`` and ``until`` (now), largest first."""
    keys = key_columns(by)
    rows = store.query(cost_rows_sql(keys, INPUT_MEASURES, since, until))
    if rows.is_empty():
        return pl.DataFrame(
            schema={**{k: pl.String for k in keys}, **{c: pl.Float64 for c in REPORT_COLUMNS}}
        )
    return aggregate(rows, by, sharing).select(*keys, *REPORT_COLUMNS)
