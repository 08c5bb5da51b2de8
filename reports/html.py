"""The HTML report: the dashboards' views (``kubeopera.dashboards.DASHBOARDS``) over one
time range, as one self-contained page that opens offline.

Every panel's SQL is expanded as Grafana would (``kubeopera.dashboards.expand``) and run
on the store. A multi-value variable is at All: every value its own query returns (in
order: a later variable's query sees the earlier ones). The single-value variables (the
workload detail board's cluster, namespace and workload) take the costliest workload of
the window: the first row of the cost overview's "Top workloads" panel.

A stat is one big number in its unit, a time series a Plotly line chart (the first
column is the time; one line per value of the string columns and numeric column), a pie
or bar chart a Plotly one (labels, then values), a table an HTML table that sorts by a
click on a header. Each panel shows the SQL it ran on demand. plotly.js is inlined once
and the page loads nothing from anywhere (its Content-Security-Policy forbids it).
"""

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
import plotly.graph_objects as go
import plotly.io as pio
import polars as pl
from plotly.offline import get_plotlyjs

from kubeopera.dashboards import DASHBOARDS, Board, Panel, TimeRange, expand, interval_for
from kubeopera.dashboards.catalogue import COST_OVERVIEW, HOURS
from kubeopera.dashboards.panels import column_unit
from kubeopera.reports.sql import COST_SPAN_SQL
from kubeopera.sinks.clickhouse import Store

TOP_WORKLOADS = "Top workloads"
"""The cost overview's panel whose first row is the workload the detail board shows."""

NO_DATA = "No data in this window"
"""What a panel without rows (or a stat without a value) says instead of a chart."""

_MINUTE = "%Y-%m-%d %H:%M"
_SECOND = "%Y-%m-%d %H:%M:%S"
_IEC = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
_DURATIONS = ((86_400.0, "d"), (3_600.0, "h"), (60.0, "min"))
_DATE_TICKS = [
    {"dtickrange": [None, 86_400_000], "value": "%b %d %H:%M"},
    {"dtickrange": [86_400_000, None], "value": "%b %d"},
]


@dataclass(frozen=True)
class Workload:
    """A workload (top controller) and where it runs."""

    cluster: str
    namespace: str
    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.name} in {self.cluster}/{self.namespace}"


@dataclass(frozen=True)
class ReportSummary:
    """What ``write_report`` wrote: the file (absolute), the boards and panels (and how
    many panels had data), the hourly cost rows in the window, the workload the detail
    board shows (None: no workload had cost) and the file's size in bytes."""

    path: Path
    boards: int
    panels: int
    panels_with_data: int
    cost_rows: int
    workload: Workload | None
    size_bytes: int


@dataclass(frozen=True)
class Cell:
    """A table cell: its text, and the key it sorts by (the number, or the time as ISO
    text; empty for a missing value)."""

    text: str
    sort: str


@dataclass(frozen=True)
class Table:
    """A table panel's rows: the column names, what each holds (``number``, ``time`` or
    ``text``: how it sorts and is laid out), the cells."""

    columns: list[str]
    kinds: list[str]
    rows: list[list[Cell]]


@dataclass(frozen=True)
class PanelView:
    """A panel as the page shows it: the SQL it ran, and a stat (text, raw value), a
    Plotly figure (JSON), a table, or none of them (no data)."""

    panel: Panel
    sql: str
    stat: tuple[str, float] | None = None
    figure: str | None = None
    table: Table | None = None

    @property
    def has_data(self) -> bool:
        return self.stat is not None or self.figure is not None or self.table is not None


@dataclass(frozen=True)
class BoardView:
    """A board as the page shows it: its variables' settings, a note (the workload it
    shows, or why it shows nothing) and its panels."""

    board: Board
    choices: list[str]
    note: str | None
    panels: list[PanelView]


def write_report(
    store: Store, time_range: TimeRange, path: Path, now: datetime | None = None
) -> ReportSummary:
    """Write the report of ``time_range`` over ``store`` to ``path`` (UTF-8 HTML; about
    6 MB, most of it plotly.js) and say what it holds. ``now``: when it was generated
    (default: now), shown in its header.

    Raises ``ClickHouseError`` when a query fails, ``OSError`` when ``path`` cannot be
    written."""
    interval = interval_for(time_range)
    cost_rows = _cost_rows(store, time_range, interval)
    boards: list[BoardView] = []
    top: pl.DataFrame | None = None
    workload: Workload | None = None
    for board in DASHBOARDS:
        single = any(not v.multi for v in board.variables)
        if single:
            workload = _costliest(top)
            if workload is None:
                boards.append(BoardView(board, [], "No workload had cost in this window.", []))
                continue
        values = _values(store, board, time_range, interval, workload)
        panels = []
        for panel in board.panels:
            sql = expand(panel.sql, time_range, values, interval)
            frame = store.query(sql)
            if board is COST_OVERVIEW and panel.title == TOP_WORKLOADS:
                top = frame
            panels.append(_view(panel, sql, frame))
        choices = [
            f"{v.label}: " + (f"all {len(values[v.name])}" if v.multi else values[v.name][0])
            for v in board.variables
        ]
        note = f"{workload}: the costliest workload in this window." if single else None
        boards.append(BoardView(board, choices, note, panels))
    html = _page(store, time_range, cost_rows, boards, now or datetime.now(UTC))
    path.write_text(html, encoding="utf-8")
    return ReportSummary(
        path=path.absolute(),
        boards=len(boards),
        panels=sum(len(b.panels) for b in DASHBOARDS),
        panels_with_data=sum(p.has_data for b in boards for p in b.panels),
        cost_rows=cost_rows,
        workload=workload,
        size_bytes=len(html.encode()),
    )


def _cost_rows(store: Store, time_range: TimeRange, interval: int) -> int:
    """The hourly cost rows in the window, which counts hours as the panels do."""
    sql = expand(f"SELECT count() FROM v_cost_hourly WHERE {HOURS}", time_range, {}, interval)
    return int(store.query(sql).item())


def _values(
    store: Store, board: Board, time_range: TimeRange, interval: int, workload: Workload | None
) -> dict[str, list[str]]:
    """The values of ``board``'s variables: a multi-value one at All (its query's first
    column as text, expanded with the variables before it), a single-value one the
    ``workload``'s ``cluster``, ``namespace`` or ``workload`` (``kind/name``).

    Raises ``KeyError`` for a single-value variable of another name, or without a
    workload."""
    focus: dict[str, str] = {}
    if workload is not None:
        focus = {
            "cluster": workload.cluster,
            "namespace": workload.namespace,
            "workload": f"{workload.kind}/{workload.name}",
        }
    values: dict[str, list[str]] = {}
    for variable in board.variables:
        if variable.multi:
            frame = store.query(expand(variable.sql, time_range, values, interval))
            values[variable.name] = [str(v) for v in frame.to_series(0).to_list()]
        else:
            values[variable.name] = [focus[variable.name]]
    return values


def _costliest(top: pl.DataFrame | None) -> Workload | None:
    """The first row of the cost overview's Top workloads panel; None when it has no
    rows.

    Raises ``ValueError`` when that panel has not run (the boards run in order: the
    overview must come before a board with single-value variables)."""
    if top is None:
        raise ValueError(f"a workload board needs the cost overview's {TOP_WORKLOADS} first")
    if top.is_empty():
        return None
    row = top.row(0, named=True)
    return Workload(
        row["cluster"], row["namespace"], row["controller_kind"], row["controller_name"]
    )


def _view(panel: Panel, sql: str, frame: pl.DataFrame) -> PanelView:
    """What ``panel`` shows of its query's ``frame``."""
    if panel.kind == "stat":
        value = _number(frame.item(0, 0)) if frame.height else None
        if value is None:
            return PanelView(panel, sql)
        return PanelView(panel, sql, stat=(format_value(value, panel.unit), value))
    if panel.kind == "table":
        return PanelView(panel, sql, table=_table(frame, panel.unit) if frame.height else None)
    measures = [c for c in frame.columns[1:] if frame.schema[c].is_numeric()]
    divisor, shown = _scale(panel.unit, _largest(frame, measures))
    traces = _CHARTS[panel.kind](frame, measures, divisor)
    if not traces:
        return PanelView(panel, sql)
    return PanelView(panel, sql, figure=_figure(panel, traces, shown))


def _number(value: object) -> float | None:
    """A cell as a float; None for NULL, NaN (0/0 in ClickHouse) and what is no number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return None if math.isnan(value) else float(value)


def _points(series: pl.Series, divisor: float) -> list[float | None]:
    """A numeric column divided by ``divisor``; NULL and NaN are gaps."""
    return [None if (v := _number(x)) is None else v / divisor for x in series.to_list()]


def _largest(frame: pl.DataFrame, columns: Sequence[str]) -> float:
    """The largest absolute value in ``columns`` (0 without any)."""
    found = (_number(v) for c in columns for v in frame[c].to_list())
    return max((abs(v) for v in found if v is not None), default=0.0)


def _lines(frame: pl.DataFrame, measures: Sequence[str], divisor: float) -> list[Any]:
    """One line per value of the string columns and numeric column (by the first
    column, the time), leaving out those without a value to draw."""
    labels = [c for c in frame.columns[1:] if frame.schema[c] == pl.String]
    parts = frame.partition_by(labels, as_dict=True) if labels else {(): frame}
    traces = []
    for key, part in parts.items():
        time = part.to_series(0).dt.strftime(_SECOND).to_list()
        for measure in measures:
            y = _points(part[measure], divisor)
            if all(v is None for v in y):
                continue
            named = [str(k) or "(none)" for k in key]
            if len(measures) > 1 or not named:
                named.append(measure)
            drawn = sum(v is not None for v in y)  # a lone point draws no line
            mode = "lines" if drawn > 1 else "markers"
            traces.append(go.Scatter(x=time, y=y, name=" / ".join(named), mode=mode))
    return traces


def _labels(frame: pl.DataFrame) -> list[str]:
    return [str(v) or "(none)" for v in frame.to_series(0).to_list()]


def _pie(frame: pl.DataFrame, measures: Sequence[str], divisor: float) -> list[Any]:
    if frame.is_empty():
        return []
    values = _points(frame[measures[0]], divisor)
    return [go.Pie(labels=_labels(frame), values=values, sort=False, hole=0.4)]


def _bars(frame: pl.DataFrame, measures: Sequence[str], divisor: float) -> list[Any]:
    if frame.is_empty():
        return []
    return [go.Bar(x=_labels(frame), y=_points(frame[measures[0]], divisor))]


_CHARTS: dict[str, Callable[[pl.DataFrame, Sequence[str], float], list[Any]]] = {
    "timeseries": _lines,
    "piechart": _pie,
    "barchart": _bars,
}


def _scale(unit: str, largest: float) -> tuple[float, str]:
    """What values of ``unit`` up to ``largest`` are divided by to be shown, and the
    unit they are then shown in: bytes in the largest IEC unit they reach (B to PiB),
    seconds in the largest of minutes, hours or days they reach (else s); (1, "") for
    other units."""
    if unit == "bytes":
        power = 0
        while power < len(_IEC) - 1 and largest >= 1024.0 ** (power + 1):
            power += 1
        return 1024.0**power, _IEC[power]
    if unit == "s":
        return next(((s, name) for s, name in _DURATIONS if largest >= s), (1.0, "s"))
    return 1.0, ""


def _figure(panel: Panel, traces: list[Any], shown: str) -> str:
    """The figure's JSON (``data`` and ``layout``) for ``Plotly.newPlot``; ``shown`` is
    the unit the scaled values are in (for bytes and seconds)."""
    axis: dict[str, Any] = {"automargin": True, "hoverformat": ",.3~f"}
    prefix = ""
    suffix = f" {shown}" if shown else ""
    if panel.unit == "currencyUSD":
        prefix = "$"
        axis.update(tickprefix=prefix, tickformat=",.2~f", hoverformat=",.2f")
    elif panel.unit == "percentunit":
        axis.update(tickformat=".0%", hoverformat=".1%")
    elif suffix:
        axis["ticksuffix"] = suffix
    layout: dict[str, Any] = {
        "height": max(panel.height * 36, 240),
        "margin": {"l": 10, "r": 10, "t": 10, "b": 10},
        "yaxis": axis,
        "legend": {"font": {"size": 11}},
    }
    if panel.kind == "timeseries":
        layout["xaxis"] = {
            "type": "date",
            "title": {"text": "UTC"},
            "automargin": True,
            "hoverformat": "%Y-%m-%d %H:%M",
            "tickformatstops": _DATE_TICKS,  # every tick its day: a day's span has no midnight
        }
        axis["rangemode"] = "tozero"
        layout["hovermode"] = "x unified"
    if panel.kind == "piechart":
        for trace in traces:
            trace.hovertemplate = (
                f"%{{label}}: {prefix}%{{value:,.2f}}{suffix} (%{{percent}})<extra></extra>"
            )
    figure = go.Figure(data=traces, layout={**layout, "template": "none"}).to_plotly_json()
    figure["layout"]["template"] = _look()
    return str(pio.to_json(figure, validate=False))


@functools.cache
def _look() -> dict[str, Any]:
    """Plotly's ``plotly_white`` template as JSON, built once: a figure given it by
    name would build it again (a third of the report's time)."""
    template: dict[str, Any] = pio.templates["plotly_white"].to_plotly_json()
    return template


def _table(frame: pl.DataFrame, unit: str) -> Table:
    kinds: list[str] = []
    cells: list[Callable[[object], Cell]] = []
    for column, kind in frame.schema.items():
        if kind.is_numeric():
            kinds.append("number")
            cells.append(_number_cell(column_unit(column, unit)))
        elif isinstance(kind, pl.Datetime):
            kinds.append("time")
            cells.append(_time_cell)
        else:
            kinds.append("text")
            cells.append(_text_cell)
    rows = [[cell(v) for cell, v in zip(cells, row, strict=True)] for row in frame.iter_rows()]
    return Table(frame.columns, kinds, rows)


def _number_cell(unit: str) -> Callable[[object], Cell]:
    def cell(value: object) -> Cell:
        number = _number(value)
        return Cell("-", "") if number is None else Cell(format_value(number, unit), repr(number))

    return cell


def _time_cell(value: object) -> Cell:
    if not isinstance(value, datetime):
        return Cell("-", "")
    text = value.astimezone(UTC).strftime(_SECOND)
    return Cell(text, text)


def _text_cell(value: object) -> Cell:
    text = "" if value is None else str(value)
    return Cell(text, text)


def format_value(value: float, unit: str) -> str:
    """``value`` as Grafana's ``unit`` reads: USD with cents, bytes in IEC units, a ratio
    as a percentage, seconds up to days, other numbers plain.

    >>> format_value(1234.5, "currencyUSD"), format_value(-3.2, "currencyUSD")
    ('$1,234.50', '-$3.20')
    >>> format_value(1536 * 1024**2, "bytes"), format_value(1023, "bytes")
    ('1.5 GiB', '1,023 B')
    >>> format_value(0.4567, "percentunit")
    '45.7%'
    >>> format_value(42, "s"), format_value(95, "s"), format_value(7200, "s")
    ('42 s', '1.6 min', '2.0 h')
    >>> format_value(1234567, "short"), format_value(2.5, "short"), format_value(0.0123, "short")
    ('1,234,567', '2.50', '0.0123')
    """
    sign, size = ("-" if value < 0 else ""), abs(value)
    if unit == "currencyUSD":
        return f"{sign}${size:,.2f}"
    if unit == "percentunit":
        return f"{value:.1%}"
    if unit in ("bytes", "s"):
        divisor, shown = _scale(unit, size)
        digits = ",.1f" if divisor > 1 else ",.0f" if unit == "bytes" else ".3g"
        return f"{sign}{size / divisor:{digits}} {shown}"
    if float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.2f}" if size >= 1 else f"{value:.3g}"


def _span(store: Store) -> str:
    """Which cost hours the store holds, said of a window without any."""
    first, last = store.query(COST_SPAN_SQL).row(0)
    if first is None:
        return "the store holds no cost data yet (kubeopera demo, replay or worker fill it)"
    return f"the store holds hours from {first:{_MINUTE}} to {last:{_MINUTE}} UTC"


def _page(
    store: Store, time_range: TimeRange, cost_rows: int, boards: Sequence[BoardView], now: datetime
) -> str:
    environment = jinja2.Environment(
        # beside this module's source, also when a strict editable install linked it alone
        loader=jinja2.FileSystemLoader(Path(__file__).resolve().parent),
        autoescape=True,  # select_autoescape would leave a .j2 file unescaped
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    start, end = (t.astimezone(UTC) for t in (time_range.start, time_range.end))
    window = f"{start:{_MINUTE}} to {end:{_MINUTE}} UTC"
    return environment.get_template("report.html.j2").render(
        window=window,
        empty=None if cost_rows else f"No cost data from {window}: {_span(store)}.",
        store=store.describe(),
        generated=f"{now.astimezone(UTC):{_SECOND}} UTC",
        boards=boards,
        no_data=NO_DATA,
        plotly_js=get_plotlyjs(),
    )
