"""``kubeopera report``: the dashboards' views over a window, as one HTML file."""

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from kubeopera.cli.fleet import duration_option
from kubeopera.settings import Settings
from kubeopera.settings.durations import window_start


@click.command(short_help="Write the dashboards' views over a window as one HTML file.")
@duration_option("--window", "7d", "How far back from now.", reaching_back=True)
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path, dir_okay=False),
    default="report.html",
    show_default=True,
    help="The HTML file to write (replaced if it exists).",
)
@click.pass_obj
def report(settings: Settings, window: timedelta, output: Path) -> None:
    """Write one self-contained HTML file (it opens offline) with the panels of the four
    Grafana dashboards over the last --window: every variable at All, the workload
    detail for the window's costliest workload; charts, tables that sort on a click,
    and the SQL behind each panel. The store is opened read-only."""
    from kubeopera.dashboards import TimeRange
    from kubeopera.reports.html import write_report  # polars, plotly, Jinja: when it runs

    now = datetime.now(UTC)
    with settings.open_store() as store:
        store.read_only()
        began = time.perf_counter()
        summary = write_report(store, TimeRange(window_start(window, now), now), output, now)
        seconds = time.perf_counter() - began
        described = store.describe()
    shown = f"workload detail: {summary.workload}" if summary.workload else "no workload"
    click.echo(f"Report: {summary.path}")
    click.echo(
        f"{summary.boards} dashboards, {summary.panels_with_data} of {summary.panels} panels "
        f"with data, {summary.cost_rows:,} hourly cost rows in the window; {shown}; "
        f"{summary.size_bytes / 1024**2:.1f} MiB written in {seconds:.1f} s"
    )
    click.echo(f"Store: {described}")
