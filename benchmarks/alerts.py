"""The notifier: finding-to-receiver latency, and memory with many open groups.

1. Latency. A real broker (started here) and the notifier reading its findings topic
   (``alerts.sources.TopicSource``, as ``kubeopera alerts run`` does) in a thread, with
   a PagerDuty subscription (a group per finding, ``group_wait: 0s``) to the loopback
   PagerDuty of tests/receivers.py. Findings are published at a steady rate (default
   100/s) for a while; each one's latency is from its publish to the receiver taking
   its trigger. Prints p50, p99 and max, and whether every finding arrived once.
2. Memory. 10,000 open findings, a group each, fed and flushed to the same receiver:
   the Python heap the groups and the notification log hold (tracemalloc) and the
   process's RSS before and after.

    python benchmarks/alerts.py                      # 100 findings/s for 30 s; 10k groups
    python benchmarks/alerts.py --rate 200 --seconds 20 --groups 20000
"""

import argparse
import gc
import resource
import statistics
import sys
import tempfile
import threading
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

import requests
from kafka import KafkaProducer
from machine import describe  # benchmarks/machine.py
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from receivers import PagerDuty  # the loopback receiver the tests use

from kubeopera.alerts.delivery import Poster
from kubeopera.alerts.notifier import Notifier, run
from kubeopera.alerts.sources import TopicSource
from kubeopera.collectors.topics import ensure_topics
from kubeopera.deploy.kafka import Broker, free_port
from kubeopera.models import Finding, Subject, Topic
from kubeopera.settings.subscriptions import Subscriptions
from kubeopera.sinks.clickhouse import ChdbBackend, Store

ROUTING_KEY = "R0UT1NGK3Y0123456789abcdefABCDEF"


def notifier(store: Store, pagerduty: PagerDuty) -> Notifier:
    subscriptions = Subscriptions.model_validate(
        {
            "subscriptions": [
                {
                    "name": "oncall",
                    "receiver": {
                        "pagerduty": {"routing_key": {"env": "UNUSED"}, "url": pagerduty.url}
                    },
                    "group_wait": "0s",
                    "group_interval": "1m",
                }
            ]
        }
    )
    session = requests.Session()
    return Notifier(
        subscriptions,
        {("oncall", "pagerduty.routing_key"): SecretStr(ROUTING_KEY)},
        store,
        Poster(subscriptions.delivery, session),
    )


def finding(index: int, prefix: str = "latency") -> Finding:
    at = datetime.now(UTC)
    return Finding(
        kind="anomaly",
        severity="high",
        fingerprint=f"{prefix}-{index:07d}",
        subject=Subject(
            cluster="prod", namespace=f"ns-{index % 50}", kind="Deployment", name=f"api-{index}"
        ),
        first_seen=at,
        last_seen=at,
        summary=f"cost of ns-{index % 50}/api-{index} rose to $412.50/h",
        evidence={"observed": 412.5, "band": [80.0, 140.0], "score": 0.99999, "unit": "USD/h"},
    )


def latency(folder: Path, rate: int, seconds: int) -> None:
    broker = Broker(state=folder / "kafka", port=free_port())
    broker.up()
    try:
        ensure_topics(broker.bootstrap, partitions=6)
        with PagerDuty() as pagerduty, Store(ChdbBackend(folder / "store")) as store:
            stop = threading.Event()
            source = TopicSource(broker.bootstrap)
            thread = threading.Thread(target=run, args=(notifier(store, pagerduty), source, stop))
            thread.start()
            producer = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=0)
            published: dict[str, float] = {}
            began = time.monotonic()
            for index in range(rate * seconds):
                due = began + index / rate
                time.sleep(max(0.0, due - time.monotonic()))
                one = finding(index)
                published[one.fingerprint] = time.monotonic()
                producer.send(
                    Topic.FINDINGS.value,
                    key=one.fingerprint.encode(),
                    value=one.model_dump_json().encode(),
                )
            producer.flush()
            deadline = time.monotonic() + 60
            while len(pagerduty.accepted) < len(published) and time.monotonic() < deadline:
                time.sleep(0.2)
            stop.set()
            thread.join()
            source.close()
            got = [(r.body["dedup_key"], r.at) for r in pagerduty.accepted]
    finally:
        broker.down()
    keys = [k for k, _ in got]
    waits = sorted(at - published[k] for k, at in got)
    cut = statistics.quantiles(waits, n=100)
    print(f"latency at {rate} findings/s for {seconds} s ({len(published):,} findings):")
    print(
        f"  delivered {len(got):,}, each once: {len(set(keys)) == len(keys)}; "
        f"p50 {cut[49] * 1000:.0f} ms, p99 {cut[98] * 1000:.0f} ms, max {waits[-1] * 1000:.0f} ms"
    )


def memory(folder: Path, groups: int) -> None:
    # chDB holds one store per process: the latency run's, its log read back
    with PagerDuty() as pagerduty, Store(ChdbBackend(folder / "store")) as store:
        alerts = notifier(store, pagerduty)
        findings = [finding(i, "memory") for i in range(groups)]
        gc.collect()
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        tracemalloc.start()
        before = tracemalloc.take_snapshot()
        now = datetime.now(UTC)
        alerts.feed(findings, now)
        began = time.perf_counter()
        report = alerts.step(now)
        took = time.perf_counter() - began
        del findings
        gc.collect()
        after = tracemalloc.take_snapshot()
        tracemalloc.stop()
        held = sum(s.size_diff for s in after.compare_to(before, "filename"))
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"memory with {groups:,} open groups (a finding each, told):")
    print(
        f"  {len(alerts.router.groups):,} groups, {len(alerts.router.log):,} log entries; "
        f"Python heap held {held / 1024**2:.1f} MiB ({held / groups:,.0f} bytes a group); "
        f"peak RSS {rss_before / 1024:.0f} -> {rss_after / 1024:.0f} MiB; "
        f"{report.told:,} told in {took:.1f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=100, help="findings per second")
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--groups", type=int, default=10_000)
    args = parser.parse_args()
    print(describe())
    with tempfile.TemporaryDirectory() as folder:
        latency(Path(folder), args.rate, args.seconds)
        memory(Path(folder), args.groups)


if __name__ == "__main__":
    main()
