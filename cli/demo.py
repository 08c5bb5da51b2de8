"""``kubeopera demo``: a simulated fleet through the embedded pipeline, then its costs."""

import shlex
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import polars as pl
from rich.console import Console

from kubeopera.cli import render
from kubeopera.cli.demo_cluster import ClusterOptions, replayed
from kubeopera.cli.fleet import simulated
from kubeopera.cli.render import anomaly_rows
from kubeopera.collectors.simulator import FleetSpec, injections
from kubeopera.collectors.simulator.declared import write_declared
from kubeopera.dashboards import TimeRange
from kubeopera.deploy.paths import default_path
from kubeopera.models import IDLE, Budget, BudgetPeriod, BudgetScope, Topic
from kubeopera.reports import (
    EXAMPLE_SQL,
    Sharing,
    anomalies,
    budget_report,
    cost_report,
    notable_changes,
    open_drift,
    pricing_notes,
    record_budgets,
    recorded_baselines,
    sample_counts,
)
from kubeopera.reports.html import write_report
from kubeopera.settings import Settings
from kubeopera.settings.durations import format_duration
from kubeopera.streams.embedded import RunStats, tune_gc_for_batches

if TYPE_CHECKING:
    from kubeopera.sinks.clickhouse import Store


def run_demo(
    settings: Settings, spec: FleetSpec, keep: bool, cluster: ClusterOptions | None = None
) -> RunStats:
    """``cluster``: replay the simulated cluster into a real API server for the real
    collector to watch, instead of feeding the simulator's messages straight in."""
    tune_gc_for_batches()
    start = spec.start
    out = render.console()
    with settings.open_store() as store:
        if not keep:
            store.reset()
        runner = settings.engine(store, spec.resolved_catalogue())
        began = time.perf_counter()
        if cluster is None:
            stats = runner.run(simulated(spec, "simulating and allocating"))
        else:
            with replayed(spec, cluster) as (stream, replay, url):
                stats = runner.run(stream)
        seconds = time.perf_counter() - began
        _print_summary(out, sample_counts(store), spec, stats, seconds)
        if cluster is not None:
            out.print(f"Through kube-apiserver at {url} ({replay.writes:,} requests): the")
            out.print(
                f"collector reported {replay.reported[Topic.OBJECTS]:,} object changes, "
                f"{replay.reported[Topic.PRICES]:,} price facts, "
                f"{replay.reported[Topic.EVENTS]:,} events."
            )
        until = start + spec.duration
        sharing = Sharing()
        by_team = cost_report(store, "team", start, until, sharing)
        out.print(
            render.table(
                by_team.select(
                    "team", "total_cost", "cpu_cost", "ram_cost", "cpu_efficiency", "ram_efficiency"
                ),
                title="Cost by team",
            )
        )
        by_namespace = cost_report(store, "cluster,namespace", start, until, sharing)
        out.print(
            render.table(
                by_namespace.filter(pl.col("namespace") != IDLE).select(
                    "cluster", "namespace", "total_cost", "cpu_efficiency", "ram_efficiency"
                ),
                title="Cost by namespace",
                limit=15,
            )
        )
        idle = by_namespace.filter(pl.col("namespace") == IDLE).select(
            "cluster", idle_cost="total_cost"
        )
        out.print(render.table(idle, title="Idle cost per cluster"))
        workloads = cost_report(store, "cluster,controller", start, until, sharing).filter(
            pl.col("namespace") != IDLE
        )
        out.print(
            render.table(
                workloads.select(
                    "cluster",
                    "namespace",
                    "controller_kind",
                    "controller_name",
                    "total_cost",
                    "cpu_efficiency",
                    "ram_efficiency",
                ),
                title="10 most expensive workloads (efficiency = usage / request)",
                limit=10,
            )
        )
        total = float(by_team["total_cost"].sum())
        idle_total = float(idle["idle_cost"].sum())
        out.print(
            f"Total fleet cost: {render.money(total)} "
            f"(allocated {render.money(total - idle_total)}, idle {render.money(idle_total)})"
        )
        for note in pricing_notes(store, start, until):
            out.print(note)
        _print_changes_and_drift(out, store, start, until)
        _print_anomalies(out, store, spec, start)
        _print_budgets(out, store, by_team, spec, until)
        declared, baselines = default_path("declared"), recorded_baselines(store)
        files = write_declared(baselines, declared)
        if baselines:
            cluster_dir = sorted(p.name for p in declared.iterdir())[0]
            out.print(f"Declared manifests: {files} files in {declared}/<cluster>; try:")
            folder = shlex.quote(str(declared / cluster_dir))
            out.print(f"  kubeopera drift --baseline {folder} --cluster {cluster_dir}")
        _write_report(out, store, start, until)
        out.print(f"Data: {store.describe()}")
        out.print(f'Try:  kubeopera sql "{EXAMPLE_SQL}"')
        running = cluster.still_running() if cluster is not None else None
        if running is not None:
            out.print(running)
    return stats


def _write_report(out: Console, store: "Store", start: datetime, until: datetime) -> None:
    """The HTML report of the demo's span (``kubeopera report``'s) in the data home."""
    path = default_path("report.html")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_report(store, TimeRange(start, until), path)
    out.print(f"Report: {path} (the dashboards' views of the demo; open it in a browser)")


def _print_changes_and_drift(
    out: Console, store: "Store", since: datetime, until: datetime
) -> None:
    """The day's notable changes (rollouts, edits by hand) and the drift open at its end,
    times as ``MM-DD HH:MM`` (UTC) to keep the tables narrow."""
    minute = "%m-%d %H:%M"
    changes = notable_changes(store, since, until, limit=10)
    if not changes.is_empty():
        shown = changes.select(
            pl.col("at").dt.strftime(minute), "cluster", "namespace", "name", "manager", "detail"
        )
        out.print(render.table(shown, title="The 10 latest rollouts and edits by hand (UTC)"))
    drift = open_drift(store, {})
    objects = drift.select("cluster", "namespace", "kind", "name").n_unique()
    if drift.is_empty():
        out.print("No drift open: every workload matches what its owners declared.")
    else:
        shown = drift.select(
            pl.col("first_seen").dt.strftime(minute).alias("since"), "cluster", "namespace",
            "name", "baseline", "path", "expected", "live",
        )  # fmt: skip
        title = f"Open drift: {objects} objects differ from their baseline (UTC)"
        out.print(render.table(shown, title=title, limit=10))
    out.print("Try:  kubeopera timeline --since 7d   kubeopera drift")


def _print_anomalies(out: Console, store: "Store", spec: FleetSpec, since: datetime) -> None:
    """The anomaly episodes found, and which of the simulator's injections they caught."""
    found = anomalies(store, since)
    if found.is_empty():
        out.print(
            "No anomalies found: a series is judged after a day of its history, an hour of "
            "the week after three of its kind (try --duration 18d --resolution 15m)."
        )
    else:
        out.print(render.table(anomaly_rows(found), title="Anomalies found (UTC)", limit=10))
    for injected in injections(spec):
        if injected.kind == "weekend_batch":
            continue
        hour = injected.start.replace(minute=0, second=0, microsecond=0)
        caught = found.filter(
            (pl.col("began") == hour) & (pl.col("cluster") == injected.cluster)
            & pl.col("name").is_in([injected.workload, injected.cluster, injected.namespace])
        )  # fmt: skip
        verdict = "found in its first hour" if caught.height else "not found"
        out.print(
            f"Injected {injected.kind.replace('_', ' ')} at {injected.start:%m-%d %H:%M}: "
            f"{injected.namespace}/{injected.workload}: {verdict}"
        )
    out.print("Try:  kubeopera anomalies --since 30d --kind cost")


def _print_budgets(
    out: Console, store: "Store", by_team: pl.DataFrame, spec: FleetSpec, until: datetime
) -> None:
    """Demo budgets for the two most expensive teams (a week at 1.25 times their run rate:
    set before nothing ran, so their status is worked out from the store), and their
    status."""
    hours = spec.duration / timedelta(hours=1)
    top = by_team.filter(pl.col("team") != IDLE).sort("total_cost", descending=True).head(2)
    demo = [
        Budget(
            scope=BudgetScope.TEAM, target=team, period=BudgetPeriod.WEEKLY,
            amount=round(1.25 * cost / hours * 168, 2), recorded_at=until,
        )
        for team, cost in top.select("team", "total_cost").iter_rows()
    ]  # fmt: skip
    record_budgets(store, demo, until)
    status = budget_report(store, until - timedelta(hours=1))
    shown = status.select(
        "budget", "amount", pl.col("spend").round(2), pl.col("forecast").round(2),
        pl.format("{} - {}", pl.col("forecast_low").round(2), pl.col("forecast_high").round(2))
        .alias("90 % interval"),
        (pl.col("forecast_share") * 100).round(1).alias("forecast %"),
    )  # fmt: skip
    out.print(render.table(shown, title="Demo budgets (1.25 x each team's weekly run rate)"))
    out.print("Try:  kubeopera budgets set --team web --monthly 1200   kubeopera budgets status")


def _print_summary(
    out: Console, counts: dict[str, int], spec: FleetSpec, stats: RunStats, seconds: float
) -> None:
    clusters = f"{counts['clusters']} cluster" + ("s" if counts["clusters"] != 1 else "")
    out.print(
        f"KubeOpera demo: {clusters}, {counts['pods']:,} pods over the run "
        f"(about {counts['pods_at_a_time']:,} at a time), "
        f"{format_duration(spec.duration)} at {format_duration(spec.resolution)} resolution "
        f"(seed {spec.seed})"
    )
    rate = stats.counts["samples"] / seconds if seconds else 0.0
    out.print(
        f"Processed {stats.counts['samples']:,} container samples in {seconds:.1f} s "
        f"({rate:,.0f} samples/s); "
        f"{stats.dead_letters} dead letters, {stats.counts['cost_rows']:,} hourly cost rows."
    )
