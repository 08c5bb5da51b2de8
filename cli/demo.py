"""``kubeopera demo``: a simulated fleet through the embedded pipeline, then its costs."""

import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import polars as pl
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from kubeopera.cli import render
from kubeopera.cli.reports import cost_report, format_duration
from kubeopera.cli.settings import Settings
from kubeopera.collectors.simulator import FleetSpec, simulate
from kubeopera.models import Message
from kubeopera.streams.aggregate import Sharing
from kubeopera.streams.cost import IDLE
from kubeopera.streams.runner import RunStats

EXAMPLE_SQL = (
    "SELECT team, round(sum(total_cost), 2) AS usd FROM v_cost_by_team_daily "
    "GROUP BY team ORDER BY usd DESC"
)


def default_start(duration: timedelta, resolution: timedelta) -> datetime:
    """The span that ends at today's midnight UTC, aligned to the resolution."""
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    steps = -(-duration // resolution)
    return midnight - steps * resolution


def run_demo(
    settings: Settings,
    clusters: int,
    pods_per_cluster: int,
    duration: timedelta,
    resolution: timedelta,
    seed: int,
    start: datetime | None,
    keep: bool,
) -> RunStats:
    start = start.replace(tzinfo=UTC) if start else default_start(duration, resolution)
    catalogue = settings.catalogue()
    spec = FleetSpec(
        clusters=clusters,
        pods_per_cluster=pods_per_cluster,
        start=start,
        duration=duration,
        resolution=resolution,
        seed=seed,
        catalogue=catalogue,
    )
    out = render.console()
    with settings.open_store() as store:
        if not keep:
            store.reset()
        runner = settings.runner(store, catalogue)
        began = time.perf_counter()
        with Progress(
            TextColumn("simulating and allocating"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("steps"),
            TimeRemainingColumn(),
            transient=True,
            disable=not sys.stderr.isatty(),
        ) as progress:
            task = progress.add_task("steps", total=-(-duration // resolution))

            def steps() -> Iterator[list[Message]]:
                for messages in simulate(spec):
                    yield messages
                    progress.advance(task)

            stats = runner.run(steps())
        seconds = time.perf_counter() - began
        _print_summary(
            out,
            store.query(
                "SELECT uniqExact(cluster) AS clusters, uniqExact(pod_uid) AS pods, "
                "count() AS samples FROM raw_metrics"
            ).row(0, named=True),
            spec,
            stats,
            seconds,
        )
        until = start + duration
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
        out.print(f"Data: {store.describe()}")
        out.print(f'Try:  kubeopera sql "{EXAMPLE_SQL}"')
    return stats


def _print_summary(
    out: Console, counts: dict[str, int], spec: FleetSpec, stats: RunStats, seconds: float
) -> None:
    out.print(
        f"KubeOpera demo: {counts['clusters']} clusters, {counts['pods']:,} pods, "
        f"{format_duration(spec.duration)} at {format_duration(spec.resolution)} resolution "
        f"(seed {spec.seed})"
    )
    rate = stats.samples / seconds if seconds else 0.0
    out.print(
        f"Processed {stats.samples:,} container samples in {seconds:.1f} s "
        f"({rate:,.0f} samples/s); "
        f"{stats.dead_letters} dead letters, {stats.cost_rows:,} hourly cost rows."
    )
