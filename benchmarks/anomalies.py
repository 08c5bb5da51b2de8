"""The anomaly and budget processors: points scored per second, and the state each
series keeps.

Input: ``--series`` hourly series (workload CPU; 1 in 50 a namespace's cost, which the
budget processor takes too), each with ``--hours`` hours of a daily wave with noise, fed
hour by hour in batches of every series' point for that hour.

1. Scoring throughput: the anomaly processor (the default seasonal detector) alone, in
   points per second, the state saved entry by entry as an engine does; then the budget
   processor on the cost series. The target: real time for 100k series at one point a
   minute on one core, 100,000 / 60 = 1,667 points per second.
2. State: the bytes of each series' entry (what an engine saves: the pickled detector,
   the recent history, the episode), mean and largest; the target is under 2 KB.

    python benchmarks/anomalies.py                        # 100k series, 30 hours
    python benchmarks/anomalies.py --series 20000 --hours 48
"""

import argparse
import math
import random
import time
from datetime import UTC, datetime, timedelta

from machine import describe  # benchmarks/machine.py

from kubeopera.models import Budget, SeriesKind, SeriesPoint, SeriesScope, Topic
from kubeopera.streams.pipeline import Pipeline
from kubeopera.streams.pricing import Pricer
from kubeopera.streams.processor import Envelope
from kubeopera.streams.processors.anomalies import AnomalyDetection
from kubeopera.streams.processors.budgets import BudgetTracking
from kubeopera.streams.reference import Reference

START = datetime(2026, 3, 2, tzinfo=UTC)
TARGET = 100_000 / 60  # points a second: 100k series at one point a minute


def hour_batches(series: int, hours: int) -> list[list[Envelope]]:
    """For each hour, one point of every series, in series order."""
    rng = random.Random(7)
    scale = [rng.uniform(0.1, 8.0) for _ in range(series)]
    batches = []
    for hour in range(hours):
        at = START + timedelta(hours=hour)
        wave = 1 + 0.4 * math.cos(2 * math.pi * (at.hour - 14) / 24)
        points = []
        for n in range(series):
            cost = n % 50 == 0
            point = SeriesPoint(
                kind=SeriesKind.COST if cost else SeriesKind.CPU,
                scope=SeriesScope.NAMESPACE if cost else SeriesScope.WORKLOAD,
                cluster=f"c{n % 10}", namespace=f"ns{n // 50}",
                workload_kind="" if cost else "Deployment", workload="" if cost else f"w{n}",
                window_start=at, value=scale[n] * wave * rng.lognormvariate(0, 0.05),
            )  # fmt: skip
            points.append(Envelope(Topic.SERIES, point, 0, hour * series + n))
        batches.append(points)
    return batches


def drive(pipeline: Pipeline, batches: list[list[Envelope]]) -> float:
    """Seconds to run every batch and collect what an engine would save after each."""
    began = time.perf_counter()
    for batch in batches:
        _, touched = pipeline.run(batch)
        for slot in touched:
            pipeline.saved(slot)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=100_000)
    parser.add_argument("--hours", type=int, default=30)
    args = parser.parse_args()
    print(describe())
    began = time.perf_counter()
    batches = hour_batches(args.series, args.hours)
    points = args.series * args.hours
    print(f"input: {args.series:,} series x {args.hours} hours = {points:,} points "
          f"(built in {time.perf_counter() - began:.1f} s)")  # fmt: skip

    anomalies = Pipeline([AnomalyDetection()], Reference(Pricer()))
    seconds = drive(anomalies, batches)
    rate = points / seconds
    print(f"anomalies: {points:,} points in {seconds:.1f} s = {rate:,.0f} points/s "
          f"({rate / TARGET:.1f} x the {TARGET:,.0f} points/s of 100k series a minute)"
    )  # fmt: skip
    (slot,) = anomalies.slots.values()
    sizes = [len(v) for v in slot.state.values()]
    print(f"anomaly state: {len(sizes):,} series, {sum(sizes) / len(sizes):,.0f} bytes a series "
          f"on average, {max(sizes):,} at most, {sum(sizes) / 2**20:,.1f} MiB in all")  # fmt: skip

    budgets = Pipeline([BudgetTracking()], Reference(Pricer()))
    budgets.reference.apply_budgets(
        [Budget(scope="namespace", target=f"c{n % 10}/ns{n // 50}", period="monthly",
                amount=1000.0, recorded_at=START)
         for n in range(0, args.series, 50)]
    )  # fmt: skip
    cost = [[e for e in batch if e.message.kind == SeriesKind.COST] for batch in batches]
    seconds = drive(budgets, cost)
    count = sum(len(b) for b in cost)
    (slot,) = budgets.slots.values()
    sizes = [len(v) for v in slot.state.values()]
    print(f"budgets: {count:,} cost points (each with a budget) in {seconds:.1f} s = "
          f"{count / seconds:,.0f} points/s; {sum(sizes) / len(sizes):,.0f} bytes a target"
    )  # fmt: skip


if __name__ == "__main__":
    main()
