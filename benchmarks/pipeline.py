"""Embedded pipeline throughput and memory: simulated fleets of 1, 10 and 50 clusters.

Prints, per fleet size, the container samples processed, the pipeline's own rate
(time inside the runner: decode-free processing, allocation, ClickHouse inserts), the
end-to-end rate including the simulator, and the peak RSS of a fresh process. Each
size runs in its own process so that peak RSS is its own.

    python benchmarks/pipeline.py                       # 1, 10, 50 clusters, 2 h at 1 min
    python benchmarks/pipeline.py --clusters 1 10 --duration 6h
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from machine import describe  # benchmarks/machine.py

from kubeopera.collectors.simulator import FleetSpec, simulate
from kubeopera.deploy.processes import stop_on_sigterm
from kubeopera.models import Message
from kubeopera.settings.durations import parse_duration
from kubeopera.sinks.clickhouse import ChdbBackend, Store
from kubeopera.streams.embedded import EmbeddedEngine, tune_gc_for_batches


def measure(clusters: int, pods: int, duration: timedelta) -> dict[str, float]:
    """One run in this process; returns its figures."""
    start = datetime(2026, 3, 2, tzinfo=UTC)
    spec = FleetSpec(clusters=clusters, pods_per_cluster=pods, start=start, duration=duration)
    simulated = 0.0

    def timed_source() -> Iterator[list[Message]]:
        nonlocal simulated
        steps = simulate(spec)
        while True:
            began = time.perf_counter()
            messages = next(steps, None)
            simulated += time.perf_counter() - began
            if messages is None:
                return
            yield messages

    with tempfile.TemporaryDirectory() as folder, Store(ChdbBackend(Path(folder)), 0) as store:
        runner = EmbeddedEngine(store)
        began = time.perf_counter()
        stats = runner.run(timed_source())
        total = time.perf_counter() - began
    return {
        "clusters": clusters,
        "samples": stats.counts["samples"],
        "seconds": total,
        "pipeline_seconds": total - simulated,
        "pipeline_rate": stats.counts["samples"] / (total - simulated),
        "end_to_end_rate": stats.counts["samples"] / total,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "dead_letters": stats.dead_letters,
    }


def main() -> None:
    stop_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clusters", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--pods-per-cluster", type=int, default=170)
    parser.add_argument("--duration", default="2h")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    duration = parse_duration(args.duration)
    if args.child:
        tune_gc_for_batches()  # as the kubeopera command does
        print(json.dumps(measure(args.clusters[0], args.pods_per_cluster, duration)))
        return
    print(describe(), flush=True)
    header = ("clusters", "samples", "pipeline/s", "end-to-end/s", "wall s", "peak RSS MiB")
    print(" ".join(f"{h:>13}" for h in header))
    for clusters in args.clusters:
        child = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                "--clusters",
                str(clusters),
                "--pods-per-cluster",
                str(args.pods_per_cluster),
                "--duration",
                args.duration,
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        r = json.loads(child.stdout.strip().splitlines()[-1])
        print(
            f"{r['clusters']:>13} {r['samples']:>13,} {r['pipeline_rate']:>13,.0f} "
            f"{r['end_to_end_rate']:>13,.0f} {r['seconds']:>13.1f} {r['peak_rss_mib']:>13.0f}"
        )


if __name__ == "__main__":
    main()
