"""Dashboard query times on a month of a 10,000-pod fleet, and the report's time on the demo.

Builds (once) a chDB store holding a simulated fleet of 20 clusters x 500 pods (about
10,100 pods at a time) over the 30 days before today at 5-minute scrapes, run through
the embedded pipeline with every default processor; budgets for two teams, a cluster and
a namespace are set after the first simulated day (from its run rate) so the budget
tables fill. A later run finds the marker file the build wrote and reuses the store
(opening it applies migrations added since, their backfills included). Then every
variable and panel query of ``kubeopera.dashboards.DASHBOARDS`` is expanded for the
store's whole range, a multi-value variable at All (every value its query returns), a
single-value one at the workload with the most container-hours (its cluster, namespace
and ``kind/name``), and timed: one warm-up run, then three; the median passes under 1 s.

    python benchmarks/dashboards.py                  # build if needed (~1 h), then time
    python benchmarks/dashboards.py --build-only     # build only
    python benchmarks/dashboards.py --before         # also: rollup panels on v_cost_hourly
    python benchmarks/dashboards.py --report         # also: the HTML report, here and on
                                                     # a default `kubeopera demo`
    python benchmarks/dashboards.py --store /tmp/s --clusters 2 --duration 2d   # smaller

The store keeps raw rows forever (retention 0): the simulated month lies in the past, and
the default 30-day TTL would drop its raw rows as the calendar moves on.
"""

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
from machine import describe  # benchmarks/machine.py

from kubeopera.collectors.simulator import FleetSpec, simulate
from kubeopera.deploy.processes import stop_on_sigterm
from kubeopera.models import Budget, BudgetPeriod, BudgetScope, Message, Topic
from kubeopera.reports import record_budgets
from kubeopera.settings import Settings
from kubeopera.settings.durations import parse_duration
from kubeopera.sinks.clickhouse import ChdbBackend, ClickHouseError, Store
from kubeopera.streams.embedded import RunStats, tune_gc_for_batches

MARKER = "complete.json"
"""Written into the store's folder when its build has finished: its figures and range."""

LIMIT_S = 1.0
"""What a dashboard query must answer within."""

ROWS_SQL = (
    "SELECT table, sum(rows) AS rows, sum(data_compressed_bytes) AS bytes FROM system.parts "
    "WHERE active AND database = currentDatabase() GROUP BY table ORDER BY rows DESC"
)
"""Rows and compressed bytes per table (active parts: a ReplacingMergeTree's rows not
merged away yet count)."""


def rss_mib() -> tuple[float, float]:
    """This process's current and peak resident set size, MiB."""
    current = 0.0
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmRSS:"):
                current = int(line.split()[1]) / 1024
    return current, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def open_store(folder: Path) -> Store:
    """The benchmark's store: raw rows and history kept forever (see the module text)."""
    return Store(ChdbBackend(folder / "chdb"), 0, history_retention_days=0)


# -- building the store ------------------------------------------------------------------


def budgets_after_first_day(store: Store, spec: FleetSpec, at: datetime) -> list[Budget]:
    """Budgets from the first simulated day's run rate (hours written so far): the most
    expensive team weekly at 1.25 x, the second monthly at 0.9 x (an overrun, so budget
    findings open), the first cluster weekly at 1.1 x and its most expensive namespace
    monthly at 1.5 x. None yet (empty) while those hours are not all in the store.
    """
    since, until = spec.start, spec.start + timedelta(hours=20)
    between = (
        f"window_start >= toDateTime64('{since:%Y-%m-%d %H:%M:%S}', 3, 'UTC') "
        f"AND window_start < toDateTime64('{until:%Y-%m-%d %H:%M:%S}', 3, 'UTC')"
    )
    hourly = "sum(total_cost) / 20"
    teams = store.query(
        f"SELECT team, {hourly} AS usd FROM cost_allocation_hourly WHERE NOT is_idle "
        f"AND {between} GROUP BY team ORDER BY usd DESC LIMIT 2"
    ).rows()
    cluster = "prod-us-east-1"
    (written,) = store.query(
        f"SELECT uniqExact(window_start) FROM cost_allocation_hourly WHERE {between}"
    ).row(0)
    if written < 20 or len(teams) < 2:
        return []
    (cluster_usd,) = store.query(
        f"SELECT {hourly} FROM cost_allocation_hourly WHERE cluster = '{cluster}' AND {between}"
    ).row(0)
    namespace, namespace_usd = store.query(
        f"SELECT namespace, {hourly} AS usd FROM cost_allocation_hourly "
        f"WHERE cluster = '{cluster}' AND NOT is_idle AND {between} "
        "GROUP BY namespace ORDER BY usd DESC LIMIT 1"
    ).row(0)
    week, month = 168.0, 24.0 * 30

    def budget(scope: BudgetScope, target: str, period: BudgetPeriod, usd: float) -> Budget:
        return Budget(
            scope=scope, target=target, period=period, amount=round(usd, 2), recorded_at=at
        )

    (team1, usd1), (team2, usd2) = teams
    return [
        budget(BudgetScope.TEAM, team1, BudgetPeriod.WEEKLY, 1.25 * usd1 * week),
        budget(BudgetScope.TEAM, team2, BudgetPeriod.MONTHLY, 0.9 * usd2 * month),
        budget(BudgetScope.CLUSTER, cluster, BudgetPeriod.WEEKLY, 1.1 * cluster_usd * week),
        budget(
            BudgetScope.NAMESPACE,
            f"{cluster}/{namespace}",
            BudgetPeriod.MONTHLY,
            1.5 * namespace_usd * month,
        ),
    ]


def build(folder: Path, spec: FleetSpec) -> dict[str, Any]:
    """Simulate ``spec`` through the embedded pipeline (every default processor) into a
    fresh store in ``folder``, streaming the simulator's steps; print progress; write the
    marker. Returns the marker's figures."""
    if folder.exists():
        shutil.rmtree(folder)  # a build that did not finish: start again
    folder.mkdir(parents=True)
    simulated = 0.0
    budgets: list[Budget] = []
    began = time.perf_counter()
    with open_store(folder) as store:
        engine = Settings().engine(store, spec.resolved_catalogue())
        budget_at = spec.start + timedelta(days=1)

        def source() -> Iterator[list[Message]]:
            nonlocal simulated, budgets
            steps = simulate(spec)
            for step in range(spec.steps):
                at = spec.start + step * spec.resolution
                if not budgets and at >= budget_at and at.minute == 0:
                    budgets = budgets_after_first_day(store, spec, at)
                    if budgets:
                        record_budgets(store, budgets, at)  # what v_budget_status reads
                        yield [(Topic.BUDGETS, b) for b in budgets]  # what the processor reads
                t0 = time.perf_counter()
                messages = next(steps)
                simulated += time.perf_counter() - t0
                yield messages

        last = [began]

        def progress(stats: RunStats) -> None:
            now = time.perf_counter()
            if now - last[0] < 60:
                return
            last[0] = now
            current, peak = rss_mib()
            samples = stats.counts["samples"]
            elapsed = now - began
            print(
                f"  {elapsed / 60:6.1f} min  {samples:>13,} samples  "
                f"{samples / elapsed:>8,.0f}/s  RSS {current:,.0f} MiB (peak {peak:,.0f})",
                flush=True,
            )

        stats = engine.run(source(), on_batch=progress)
        seconds = time.perf_counter() - began
        tables = {str(t): int(r) for t, r, _ in store.query(ROWS_SQL).rows()}
    figures = {
        "clusters": spec.clusters,
        "pods_per_cluster": spec.pods_per_cluster,
        "start": spec.start.isoformat(),
        "end": (spec.start + spec.duration).isoformat(),
        "resolution_s": spec.resolution.total_seconds(),
        "samples": stats.counts["samples"],
        "messages": stats.messages,
        "dead_letters": stats.dead_letters,
        "seconds": seconds,
        "simulator_seconds": simulated,
        "peak_rss_mib": rss_mib()[1],
        "budgets": [b.name() for b in budgets],
        "rows": tables,
    }
    (folder / MARKER).write_text(json.dumps(figures, indent=1))
    return figures


def print_build(figures: Mapping[str, Any], store: Store) -> None:
    """The build's figures and what each table holds now."""
    rate = figures["samples"] / figures["seconds"]
    print(
        f"store: {figures['clusters']} clusters x {figures['pods_per_cluster']} pods, "
        f"{figures['start'][:10]} to {figures['end'][:10]} at {figures['resolution_s']:.0f} s; "
        f"built in {figures['seconds'] / 60:.1f} min ({figures['samples']:,} container samples, "
        f"{rate:,.0f}/s end to end, {figures['simulator_seconds'] / 60:.1f} min of it in "
        f"the simulator), peak RSS {figures['peak_rss_mib']:,.0f} MiB, "
        f"{figures['dead_letters']} dead letters; budgets {', '.join(figures['budgets'])}"
    )
    print(f"{'table':<34} {'rows':>14} {'MiB':>9}")
    for table, rows, size in store.query(ROWS_SQL).rows():
        print(f"{table:<34} {rows:>14,} {size / 2**20:>9,.1f}")


# -- timing the dashboards' queries -------------------------------------------------------


@dataclass
class Timing:
    """One query's figures: ``seconds`` the median of the timed runs, ``best`` the
    fastest (on a shared machine the gap between them shows the noise)."""

    board: str
    panel: str
    rows: int
    seconds: float
    best: float = 0.0
    error: str = ""

    def verdict(self) -> str:
        if self.error:
            return "ERROR"
        return "PASS" if self.seconds < LIMIT_S else "FAIL"


def timed(store: Store, sql: str, runs: int = 3) -> tuple[int, float, float]:
    """Rows of the answer, and the median and fastest of ``runs`` timed runs after one
    warm-up."""
    rows = store.query(sql).height
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        store.query(sql)
        times.append(time.perf_counter() - began)
    return rows, statistics.median(times), min(times)


LARGEST_WORKLOAD_SQL = """
SELECT cluster, namespace, concat(controller_kind, '/', controller_name) AS workload,
       count() AS container_hours
FROM cost_allocation_hourly
WHERE NOT is_idle AND window_start >= toDateTime({since}) AND window_start < toDateTime({until})
GROUP BY cluster, namespace, workload
ORDER BY container_hours DESC, cluster, namespace, workload LIMIT 1
"""
"""The workload with the most container-hours in range: the single-value variables'
pick (the heaviest a workload board can be asked to draw)."""


def time_boards(store: Store, since: datetime, until: datetime, only: str | None) -> list[Timing]:
    """Expand and time every variable and panel query of every board: a multi-value
    variable at All (every value its query returns), a single-value one at the largest
    workload's cluster, namespace and workload (the first value when the largest is not
    among its values)."""
    from kubeopera.dashboards import DASHBOARDS, TimeRange, expand, interval_for

    window = TimeRange(since, until)
    interval = interval_for(window, 1000)
    largest = store.query(
        LARGEST_WORKLOAD_SQL.format(since=int(since.timestamp()), until=int(until.timestamp()))
    ).row(0, named=True)
    print(
        f"range {since:%Y-%m-%d %H:%M} to {until:%Y-%m-%d %H:%M} UTC, interval {interval} s; "
        f"single-value picks: {largest['cluster']} / {largest['namespace']} / "
        f"{largest['workload']} ({largest['container_hours']:,} container-hours)",
        flush=True,
    )
    results: list[Timing] = []
    for board in DASHBOARDS:
        if only and only not in (board.uid, board.title):
            continue
        values: dict[str, list[str]] = {}
        for variable in board.variables:
            query = f"${variable.name}"
            try:
                expanded = expand(variable.sql, window, values, interval)
                rows, seconds, best = timed(store, expanded)
                found = store.query(expanded).to_series(0).cast(str).to_list()
            except Exception as error:  # reported; the board's panels still run
                results.append(Timing(board.title, query, 0, 0.0, error=str(error)))
                values[variable.name] = []
                continue
            results.append(Timing(board.title, query, rows, seconds, best))
            pick = str(largest.get(variable.name))
            if variable.multi:
                values[variable.name] = found
            else:
                values[variable.name] = [pick] if pick in found else found[:1]
        for panel in board.panels:
            try:
                expanded = expand(panel.sql, window, values, interval)
                rows, seconds, best = timed(store, expanded)
            except Exception as error:
                results.append(Timing(board.title, panel.title, 0, 0.0, error=str(error)))
                continue
            results.append(Timing(board.title, panel.title, rows, seconds, best))
        print_board(board.title, [r for r in results if r.board == board.title])
    return results


def print_board(title: str, results: Sequence[Timing]) -> None:
    """One board's queries: rows of the answer, median and best seconds, the verdict."""
    print(f"\n{title}", flush=True)
    print(f"  {'query':<40} {'rows':>8} {'median s':>8} {'best s':>7}  verdict")
    for r in results:
        print(
            f"  {r.panel[:40]:<40} {r.rows:>8,} {r.seconds:>8.3f} {r.best:>7.3f}  {r.verdict()}"
            f"{'  ' + first_line(r.error) if r.error else ''}",
            flush=True,
        )


def print_summary(results: Sequence[Timing]) -> None:
    """How many queries passed, which did not, and the machine's load meanwhile."""
    failed = [r for r in results if r.verdict() != "PASS"]
    print(f"\n{len(results) - len(failed)} of {len(results)} queries under {LIMIT_S:.0f} s", end="")
    print(f"; over it: {', '.join(f'{r.board} / {r.panel}' for r in failed)}" if failed else "")
    load = os.getloadavg()
    print(f"load average after timing: {load[0]:.1f} (1 min), {load[1]:.1f} (5 min)")


def first_line(text: str) -> str:
    return re.sub(r"\s+", " ", text)[:160]


# -- before the rollup ------------------------------------------------------------------

ROLLUP = "FROM cost_by_workload_hourly"
BEFORE = "FROM (SELECT * REPLACE (if(is_idle, '__idle__', team) AS team) FROM v_cost_hourly)"
"""A panel on the hourly workload rollup (migration 013), and the same panel on the view
of every container-hour it replaced (idle rows under team ``__idle__``, as the rollup
keys them)."""


def compare_before(store: Store, since: datetime, until: datetime) -> None:
    """Time every panel that reads the rollup against the same SQL on ``v_cost_hourly``
    (``cost_allocation_hourly FINAL``), and check both answer the same."""
    from kubeopera.dashboards import DASHBOARDS, TimeRange, expand, interval_for

    window = TimeRange(since, until)
    interval = interval_for(window, 1000)
    print("\nPanels on the rollup, and the same SQL on v_cost_hourly (medians)")
    print(f"  {'panel':<40} {'v_cost_hourly s':>15} {'rollup s':>8}  same answer")
    for board in DASHBOARDS:
        if not any(ROLLUP in panel.sql for panel in board.panels):
            continue
        values: dict[str, list[str]] = {}
        for variable in board.variables:
            found = store.query(expand(variable.sql, window, values, interval))
            values[variable.name] = found.to_series(0).cast(str).to_list()
        for panel in board.panels:
            if ROLLUP not in panel.sql:
                continue
            sql = expand(panel.sql, window, values, interval)
            before = sql.replace(ROLLUP, BEFORE)
            _, old, _ = timed(store, before)
            _, new, _ = timed(store, sql)
            same = close(store.query(before), store.query(sql))
            print(f"  {panel.title[:40]:<40} {old:>15.3f} {new:>8.3f}  {same}", flush=True)


def close(a: pl.DataFrame, b: pl.DataFrame) -> bool:
    """Two frames with the same columns and rows in any order (rows tied in a panel's
    ORDER BY may come either way), floats equal to 1e-9 relative."""
    if a.shape != b.shape or a.columns != b.columns:
        return False
    a, b = a.sort(a.columns), b.sort(b.columns)
    for column in a.columns:
        x, y = a[column], b[column]
        if x.dtype.is_float():
            if not ((x - y).abs().fill_null(0) <= 1e-9 * y.abs().fill_null(0) + 1e-9).all():
                return False
        elif not x.equals(y):
            return False
    return True


# -- the report on the default demo -------------------------------------------------------


def time_report_on_demo() -> None:
    """``kubeopera demo`` (defaults) into a fresh data home, then ``kubeopera report`` on
    it, each a process of its own as a user runs it: the command's wall time, and the
    time the report command says ``write_report`` took (queries, charts, the page)."""
    kubeopera = shutil.which("kubeopera") or "kubeopera"
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "KUBEOPERA_HOME": home}
        output = str(Path(home) / "report-again.html")
        for what, command in (
            ("kubeopera demo (writes the report too)", [kubeopera, "demo"]),
            ("kubeopera report (default --window 7d)", [kubeopera, "report", "-o", output]),
        ):
            began = time.perf_counter()
            done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
            seconds = time.perf_counter() - began
            said = re.search(r"written in ([\d.]+) s", done.stdout)
            inside = f", write_report {said.group(1)} s" if said else ""
            status = "" if done.returncode == 0 else f", exit {done.returncode}"
            print(f"{what}: {seconds:.1f} s wall{inside}{status}", flush=True)
            if done.returncode:
                print("  " + first_line(done.stderr or done.stdout))
                return


def time_report_on_store(store: Store, since: datetime, until: datetime, folder: Path) -> None:
    """``write_report`` over the whole benchmark store's range, in this process."""
    from kubeopera.dashboards import TimeRange
    from kubeopera.reports.html import write_report

    path = folder / "report.html"
    began = time.perf_counter()
    summary = write_report(store, TimeRange(since, until), path)
    seconds = time.perf_counter() - began
    print(
        f"write_report over the store's {(until - since).days} days: {seconds:.1f} s "
        f"({summary.panels_with_data} of {summary.panels} panels with data, "
        f"{summary.cost_rows:,} hourly cost rows, {summary.size_bytes / 2**20:.1f} MiB, "
        f"workload {summary.workload})",
        flush=True,
    )


# -- the command --------------------------------------------------------------------------


def default_start(duration: timedelta) -> datetime:
    """The span ending at today's midnight UTC (as ``kubeopera demo`` places it)."""
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight - duration


def main() -> None:
    stop_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=Path("/tmp/kubeopera-bench-30d"))
    parser.add_argument("--clusters", type=int, default=20)
    parser.add_argument("--pods-per-cluster", type=int, default=500)
    parser.add_argument("--duration", default="30d")
    parser.add_argument("--resolution", default="5m")
    parser.add_argument("--build-only", action="store_true", help="build the store, time nothing")
    parser.add_argument("--rebuild", action="store_true", help="build the store again")
    parser.add_argument("--board", help="time only this board (uid or title)")
    parser.add_argument(
        "--before",
        action="store_true",
        help="also time the panels that read the hourly rollup on v_cost_hourly instead",
    )
    parser.add_argument(
        "--report",
        action="store_true",
        help="also time the HTML report: over the store's range, and on the default demo",
    )
    args = parser.parse_args()
    print(describe(), flush=True)
    tune_gc_for_batches()
    marker = args.store / MARKER
    if marker.exists() and not args.rebuild:
        figures = json.loads(marker.read_text())
    else:
        duration = parse_duration(args.duration)
        spec = FleetSpec(
            clusters=args.clusters,
            pods_per_cluster=args.pods_per_cluster,
            start=default_start(duration),
            duration=duration,
            resolution=parse_duration(args.resolution),
        )
        print(f"building {args.store}: {spec.steps:,} steps", flush=True)
        figures = build(args.store, spec)
    try:
        store = open_store(args.store)
    except ClickHouseError as error:  # e.g. a migration edited after this store applied it
        sys.exit(f"cannot open {args.store}: {error}\n(--rebuild builds it again)")
    with store:
        print_build(figures, store)
        if not args.build_only:
            store.read_only()
            since, until = (datetime.fromisoformat(figures[k]) for k in ("start", "end"))
            print_summary(time_boards(store, since, until, args.board))
            if args.before:
                compare_before(store, since, until)
            if args.report:
                time_report_on_store(store, since, until, args.store)
    if args.report:
        time_report_on_demo()


if __name__ == "__main__":
    main()
