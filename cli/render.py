"""Printing frames for people (tables) and for programs (csv, json, parquet)."""

import io
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:  # frames come from the commands that load polars
    import polars as pl

Format = Literal["table", "csv", "json", "parquet"]
FORMATS: tuple[Format, ...] = ("table", "csv", "json", "parquet")

MONEY_COLUMNS = ("cost",)
RATIO_COLUMNS = ("efficiency",)


def console() -> Console:
    """A console wide enough for reports even when output goes to a pipe or a test."""
    return Console(width=None if sys.stdout.isatty() else 140, highlight=False)


def money(value: float) -> str:
    return f"${value:,.2f}"


def _cell(column: str, value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if column.endswith(MONEY_COLUMNS):
            return money(value)
        if column.endswith(RATIO_COLUMNS):
            return f"{value:.0%}"
        return f"{round(value, 3):,}"  # never more digits than the value has (129.08)
    return str(value)


def table(frame: "pl.DataFrame", title: str | None = None, limit: int | None = None) -> Table:
    shown = frame.head(limit) if limit else frame
    out = Table(title=title, title_justify="left", title_style="bold")
    for column, dtype in frame.schema.items():
        # A long value wraps in its cell rather than being cut: a path or an image tag
        # whose end is what tells two rows apart stays readable.
        out.add_column(column, justify="right" if dtype.is_numeric() else "left", overflow="fold")
    for row in shown.iter_rows():
        # As text, never markup: a value such as a path's ``[name=app]`` prints as it is.
        out.add_row(*[Text(_cell(c, v)) for c, v in zip(frame.columns, row, strict=True)])
    if limit and frame.height > limit:
        out.caption = f"{frame.height - limit} more rows not shown"
    return out


def write(
    frame: "pl.DataFrame",
    fmt: Format,
    output: Path | None = None,
    title: str | None = None,
    notes: Sequence[str] = (),
    empty_table: bool = True,
) -> None:
    """Write ``frame`` to ``output`` (or stdout) in ``fmt``: every command that prints a
    table goes through here, so ``--format`` and ``-o`` mean the same everywhere. A table
    has ``title`` above it and ``notes`` below; the other formats carry the frame alone
    (for programs), and the notes go to stderr. Without ``empty_table`` a table with no
    rows is left out (the notes say why).

    Raises ``ValueError`` for parquet to a terminal."""
    if fmt == "parquet":
        if output is None:
            if sys.stdout.isatty():
                raise ValueError("parquet is binary: give --output FILE or redirect stdout")
            buffer = io.BytesIO()
            frame.write_parquet(buffer)
            sys.stdout.buffer.write(buffer.getvalue())
        else:
            frame.write_parquet(output)
    elif fmt == "table":
        emit([table(frame, title=title)] if frame.height or empty_table else [], output, notes)
        return
    else:
        _emit(frame.write_csv() if fmt == "csv" else frame.write_json() + "\n", output)
    for note in notes:
        print(note, file=sys.stderr)


_SIGNS = {"ADDED": ("+", "green"), "DELETED": ("-", "red"), "MODIFIED": ("~", "yellow")}


def diff(rows: "pl.DataFrame") -> list[Text]:
    """The change timeline for people: one header per object version (time, object, top
    controller, who), then its fields, ``~ path: old -> new`` (``+`` added, ``-``
    removed), each with its own manager where another made it, coloured on a terminal."""
    lines: list[Text] = []
    version, by = None, ""
    for row in rows.iter_rows(named=True):
        key = (row["at"], row["cluster"], row["namespace"], row["kind"], row["name"])
        who = row["manager"] + (f" ({row['operation']})" if row["operation"] else "")
        if key != version:
            version, by = key, who
            top = f"{row['top_kind']}/{row['top_name']}"
            where = "/".join(p for p in (row["cluster"], row["namespace"]) if p)
            header = f"{row['at']:%Y-%m-%d %H:%M:%S} {where} {row['kind']}/{row['name']}"
            lines.append(Text(f"{header}  [{top}]  by {who or 'unknown'}", style="bold"))
        sign, colour = _SIGNS[row["field_change"]]
        line = Text(f"  {sign} {row['path']}: ", style=colour)
        if row["old"] is not None:
            line.append(row["old"], style="red")
        if row["old"] is not None and row["new"] is not None:
            line.append(" -> ")
        if row["new"] is not None:
            line.append(row["new"], style="green")
        if who != by:  # a field another manager changed in the same version
            line.append(f"  (by {who or 'unknown'})", style="dim")
        lines.append(line)
    return lines


def emit(lines: Sequence[RenderableType], output: Path | None, notes: Sequence[str] = ()) -> None:
    """Tables or lines for people, then ``notes``: styled on a terminal, plain in a file
    or a pipe."""
    terminal = output is None and sys.stdout.isatty()
    text = io.StringIO()
    out = Console(width=None if terminal else 140, file=text, highlight=False,
                  force_terminal=terminal, no_color=not terminal)  # fmt: skip
    for line in [*lines, *notes]:
        out.print(line)
    _emit(text.getvalue(), output)


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")


def anomaly_rows(found: "pl.DataFrame") -> "pl.DataFrame":
    """Anomaly episodes (``reports.anomalies``) as a narrow table: times as ``MM-DD
    HH:MM`` (UTC), the workload as ``kind/name``, values to four figures."""
    import polars as pl

    minute = "%m-%d %H:%M"
    return found.select(
        pl.col("began").dt.strftime(minute),
        pl.col("ended").dt.strftime(minute).fill_null("open"),
        "series_kind", "cluster", "namespace",
        pl.format("{}/{}", "kind", "name").alias("subject"),
        pl.col("observed").round_sig_figs(4),
        pl.col("expected_at_most").round_sig_figs(4), "unit",
    )  # fmt: skip
