"""A panel's SQL as Grafana and the ClickHouse data source turn it into ClickHouse SQL.

Grafana first replaces the dashboard's variables: ``${name:singlequote}`` quotes each
value (``'`` escaped as ``\\'``), ``${name:csv}`` and ``${name:raw}`` join the values
with commas, and plain ``$name`` / ``${name}`` take the plugin's own format
(``CHDatasource.format``: a multi-value variable's values as ``'a','b'``, unescaped; a
single value as it is). A multi-value variable set to All is every value its query
returned. Then the plugin expands its macros on the server
(``grafana/clickhouse-datasource``, ``pkg/macros/macros.go``; arguments may nest
parentheses):

====================  =====================================================================
``$__timeFilter(c)``  ``c >= toDateTime(FROM) AND c <= toDateTime(TO)`` (Unix seconds)
``$__timeFilter_ms``  the same with ``fromUnixTimestamp64Milli(FROM_MS)``
``$__dateFilter(c)``  ``c >= toDate('YYYY-MM-DD') AND c <= toDate('YYYY-MM-DD')``
``$__dateTimeFilter`` ``(date filter) AND (time filter)`` (also ``$__dt``)
``$__fromTime``       ``toDateTime(FROM)``; ``$__toTime`` likewise; ``_ms`` variants in ms
``$__timeInterval``   ``toStartOfInterval(toDateTime(c), INTERVAL N second)``
``$__timeInterval_ms`` ``toStartOfInterval(toDateTime64(c, 3), INTERVAL N millisecond)``
``$__interval_s``     ``N``: the query's interval in seconds (at least 1)
====================  =====================================================================

The plugin also takes sqlds' generic macros (``$__timeGroup``, ``$__table``, ...) and
the front end's ``$__conditionalAll``; the dashboards do not use them, and any other
``$__`` macro is refused here rather than sent on unexpanded.

>>> from datetime import UTC, datetime
>>> window = TimeRange(datetime(2026, 1, 5, tzinfo=UTC), datetime(2026, 1, 6, tzinfo=UTC))
>>> print(expand("WHERE $__timeFilter(at) AND c IN (${c:singlequote})", window,
...              {"c": ["a", "b'c"]}, 3600))
WHERE at >= toDateTime(1767571200) AND at <= toDateTime(1767657600) AND c IN ('a','b\\'c')
"""

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

NICE_INTERVALS_S = (3600, 2 * 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400)
"""The intervals the report's buckets may take: an hour (the store's finest hourly data,
each panel's minimum ``interval`` in Grafana) up to a week. (Grafana picks its own,
rounding range / max data points to the nearest of its steps.)"""

_VARIABLE = re.compile(r"\$\{(\w+)(?::(\w+))?\}|\$(?!__)(\w+)")
_MACRO = re.compile(r"\$__(\w+)")

Values = Mapping[str, str | Sequence[str]]
"""Each variable's value: one string for a single-value variable, the values chosen for a
multi-value one (All: every value)."""


@dataclass(frozen=True)
class TimeRange:
    """The dashboard's time range, ``start`` to ``end`` (aware datetimes, UTC).

    Raises ``ValueError`` when ``end`` is not after ``start`` or either is naive."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("a time range needs aware datetimes (UTC)")
        if self.end <= self.start:
            raise ValueError(f"the time range ends ({self.end}) before it starts ({self.start})")


def interval_for(time_range: TimeRange, max_points: int = 1000) -> int:
    """The bucket, in seconds, of a time series over ``time_range`` with at most
    ``max_points`` points per series: the range over the points, rounded up to the next of
    ``NICE_INTERVALS_S`` (an hour at least, a week at most).

    >>> from datetime import UTC, datetime
    >>> start = datetime(2026, 1, 1, tzinfo=UTC)
    >>> interval_for(TimeRange(start, start + timedelta(days=30)))
    3600
    >>> interval_for(TimeRange(start, start + timedelta(days=90)))
    10800
    """
    wanted = math.ceil((time_range.end - time_range.start) / timedelta(seconds=1) / max_points)
    return next((s for s in NICE_INTERVALS_S if s >= wanted), NICE_INTERVALS_S[-1])


def expand(
    sql: str,
    time_range: TimeRange,
    values: Values,
    interval_s: int,
) -> str:
    """``sql`` with the variables replaced by ``values`` and the plugin's macros expanded
    for ``time_range`` and ``interval_s``.

    Raises ``KeyError`` for a variable without values given, ``ValueError`` for an unknown
    macro or format, a macro with the wrong number of arguments or an unclosed one.
    """
    return _expand_macros(_replace_variables(sql, values), time_range, max(interval_s, 1))


def _replace_variables(sql: str, values: Values) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3)
        value = values[name]
        chosen = [value] if isinstance(value, str) else list(value)
        fmt = match.group(2)
        if fmt is None:  # the plugin's format
            return value if isinstance(value, str) else "'" + "','".join(chosen) + "'"
        if fmt == "singlequote":
            return ",".join("'" + v.replace("'", "\\'") + "'" for v in chosen) or "''"
        if fmt in ("raw", "csv"):
            return ",".join(chosen)
        raise ValueError(f"variable format {fmt!r} is not one the dashboards use")

    return _VARIABLE.sub(replace, sql)


def _arguments(sql: str, opening: int) -> tuple[list[str], int]:
    """The comma-separated arguments of the call whose ``(`` is at ``opening`` (commas
    inside nested parentheses belong to their argument), and the index after its ``)``.
    Raises ``ValueError`` when it is not closed."""
    depth, start, found = 0, opening + 1, []
    for index in range(opening, len(sql)):
        char = sql[index]
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                found.append(sql[start:index])
                return ([] if found == [""] else [a.strip() for a in found]), index + 1
        elif char == "," and depth == 1:
            found.append(sql[start:index])
            start = index + 1
    raise ValueError(f"unclosed macro call: {sql[opening - 20 : opening + 20]!r}")


def _seconds(moment: datetime) -> str:
    return f"toDateTime({int(moment.timestamp())})"


def _millis(moment: datetime) -> str:
    return f"fromUnixTimestamp64Milli({int(moment.timestamp() * 1000)})"


def _date(moment: datetime) -> str:
    return f"toDate('{moment:%Y-%m-%d}')"


def _between(column: str, low: str, high: str) -> str:
    return f"{column} >= {low} AND {column} <= {high}"


def _expand_macros(sql: str, tr: TimeRange, interval_s: int) -> str:
    def date_time(args: list[str]) -> str:
        return (
            f"({_between(args[0], _date(tr.start), _date(tr.end))}) AND "
            f"({_between(args[1], _seconds(tr.start), _seconds(tr.end))})"
        )

    macros: dict[str, tuple[int, Callable[[list[str]], str]]] = {
        "fromTime": (0, lambda _: _seconds(tr.start)),
        "toTime": (0, lambda _: _seconds(tr.end)),
        "fromTime_ms": (0, lambda _: _millis(tr.start)),
        "toTime_ms": (0, lambda _: _millis(tr.end)),
        "timeFilter": (1, lambda a: _between(a[0], _seconds(tr.start), _seconds(tr.end))),
        "timeFilter_ms": (1, lambda a: _between(a[0], _millis(tr.start), _millis(tr.end))),
        "dateFilter": (1, lambda a: _between(a[0], _date(tr.start), _date(tr.end))),
        "dateTimeFilter": (2, date_time),
        "dt": (2, date_time),
        "timeInterval": (
            1,
            lambda a: f"toStartOfInterval(toDateTime({a[0]}), INTERVAL {interval_s} second)",
        ),
        "timeInterval_ms": (
            1,
            lambda a: (
                f"toStartOfInterval(toDateTime64({a[0]}, 3), "
                f"INTERVAL {interval_s * 1000} millisecond)"
            ),
        ),
        "interval_s": (0, lambda _: str(interval_s)),
    }

    out, position = [], 0
    while (match := _MACRO.search(sql, position)) is not None:
        name, end = match.group(1), match.end()
        if name not in macros:
            raise ValueError(f"$__{name} is not a macro the dashboards may use")
        arity, render = macros[name]
        args: list[str] = []
        if end < len(sql) and sql[end] == "(":
            args, end = _arguments(sql, end)
        if len(args) != arity:
            raise ValueError(f"$__{name} takes {arity} argument(s), got {len(args)}")
        out += [sql[position : match.start()], render(args)]
        position = end
    return "".join([*out, sql[position:]])
