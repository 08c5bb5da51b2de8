"""The change timeline and drift processors: object changes per second on both engines,
and the state memory for many live objects.

Input: ``--objects`` live Deployments (two containers, env, resources, labels) across 10
clusters, created, then ``--edits`` changes by hand (an image, an env value, replicas,
a label: one field each), then a relist of every object (RESYNC, which changes nothing).

1. Embedded: the pipeline alone (``changes``, then ``drift``: each processor on the
   whole input), and with the ClickHouse inserts (chDB), in changes per second.
2. State: the state of 100k live objects (``--state-objects``): RSS growth of the
   process while the state is built, its bytes (what a Faust worker saves), and the
   same after as many edits again (it grows with live objects, not with history).
3. Faust worker (``--worker``): the same input on a fresh broker, drained by ``kubeopera
   worker`` running ``changes`` only; changes per second from ready to the last row.

    python benchmarks/timeline.py                          # 20k objects, 20k edits
    python benchmarks/timeline.py --objects 50000 --worker
"""

import argparse
import dataclasses
import os
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kafka_pipeline import CLEANUP, fresh_broker, group_stable, lag, start_worker, stop, wait_for
from machine import describe  # benchmarks/machine.py

from kubeopera.collectors.publisher import Publisher
from kubeopera.deploy.processes import stop_on_sigterm
from kubeopera.models import Baseline, BaselineKind, ChangeType, Message, ObjectChange, Topic
from kubeopera.models.objects import FieldManager
from kubeopera.sinks.clickhouse import ChdbBackend, Store
from kubeopera.streams.embedded import EmbeddedEngine, tune_gc_for_batches
from kubeopera.streams.pipeline import Pipeline
from kubeopera.streams.pricing import Pricer
from kubeopera.streams.processor import Envelope
from kubeopera.streams.reference import Reference
from kubeopera.streams.registry import build

START = datetime(2026, 3, 2, tzinfo=UTC)
BATCH = 5_000


def deployment(index: int, tag: int, level: str, replicas: int, label: str) -> dict[str, Any]:
    name = f"web-{index}"
    containers = [
        {
            "name": "app",
            "image": f"registry.example/team-{index % 40}/{name}:v1.{tag}.0",
            "env": [{"name": f"VAR_{k}", "value": f"value-{k}"} for k in range(4)]
            + [{"name": "LOG_LEVEL", "value": level}],
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                          "limits": {"memory": "256Mi"}},
            "ports": [{"containerPort": 8080, "protocol": "TCP"}],
        },
        {"name": "sidecar", "image": "envoy:v1.31.0",
         "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}}},
    ]  # fmt: skip
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": f"ns-{index % 50}", "uid": f"uid-{index}",
                     "labels": {"app": name, "team": f"team-{index % 40}", "tier": label}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": containers}}},
        "status": {"replicas": replicas, "readyReplicas": replicas},
    }  # fmt: skip


def change(index: int, at: datetime, kind: ChangeType, obj: dict[str, Any]) -> Message:
    meta = obj["metadata"]
    manager = "helm" if kind == ChangeType.ADDED else "kubectl-edit"
    return (
        Topic.OBJECTS,
        ObjectChange(
            cluster=f"cluster-{index % 10}", api_version="apps/v1", kind="Deployment",
            namespace=meta["namespace"], name=meta["name"], uid=meta["uid"],
            resource_version=str(int(at.timestamp() * 1000)), observed_at=at, change=kind,
            object=obj, last_manager=manager,
            field_managers=[FieldManager(manager=manager, operation="Update", time=at,
                                         fields=["/spec", "/metadata/labels"])],
        ),
    )  # fmt: skip


def declared(index: int, obj: dict[str, Any]) -> Message:
    """What the object's owners declared: its manifest without status and uid."""
    meta = {k: v for k, v in obj["metadata"].items() if k != "uid"}
    return (
        Topic.BASELINES,
        Baseline(
            baseline=BaselineKind.DECLARED, origin="bench", cluster=f"cluster-{index % 10}",
            api_version="apps/v1", kind="Deployment", namespace=meta["namespace"],
            name=meta["name"], object={**obj, "metadata": meta, "status": {}},
            recorded_at=START,
        ),
    )  # fmt: skip


def workload(objects: int, edits: int, seed: int = 7) -> Iterator[Message]:
    """Each object's declared baseline, its creation as declared, edits by hand, then a
    relist: in event-time order."""
    rng = random.Random(seed)
    versions = {i: (0, "info", 2, "web") for i in range(objects)}
    at = START
    for index in range(objects):
        yield declared(index, deployment(index, *versions[index]))
    for index in range(objects):
        at += timedelta(milliseconds=10)
        yield change(index, at, ChangeType.ADDED, deployment(index, *versions[index]))
    for _ in range(edits):
        index = rng.randrange(objects)
        tag, level, replicas, label = versions[index]
        field = rng.randrange(4)
        versions[index] = (
            tag + (field == 0), "debug" if field == 1 and level == "info" else level,
            replicas + (field == 2), f"{label}-x" if field == 3 else label,
        )  # fmt: skip
        at += timedelta(milliseconds=10)
        yield change(index, at, ChangeType.MODIFIED, deployment(index, *versions[index]))
    for index in range(objects):
        at += timedelta(milliseconds=1)
        yield change(index, at, ChangeType.RESYNC, deployment(index, *versions[index]))


def batches(messages: list[Message], first: int = 0) -> Iterator[list[Envelope]]:
    """``messages`` in batches, at offsets from ``first`` on (one partition per topic)."""
    for start in range(0, len(messages), BATCH):
        yield [
            Envelope(topic, m, 0, first + start + i)
            for i, (topic, m) in enumerate(messages[start : start + BATCH])
        ]


def deep_mib(value: Any) -> float:
    """The memory of ``value`` and everything it holds (dicts, lists, tuples, strings,
    dataclasses, objects' attributes), in MiB: the state's own size, which RSS hides
    behind the allocator's arenas."""
    seen: set[int] = set()
    stack, total = [value], 0
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        total += sys.getsizeof(item)
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set):
            stack.extend(item)
        elif dataclasses.is_dataclass(item):
            stack.extend(getattr(item, f.name) for f in dataclasses.fields(item))
        elif hasattr(item, "__dict__"):  # an Entries: its dict and changed names
            stack.extend(vars(item).values())
    return total / 2**20


def changes(messages: list[Message]) -> int:
    return sum(isinstance(m, ObjectChange) for _, m in messages)


def pipeline_rate(name: str, messages: list[Message]) -> tuple[float, int]:
    """Object changes per second of processor ``name`` alone, and the rows (findings)
    it wrote."""
    pipeline = Pipeline(build([name]), Reference(Pricer()))
    rows = 0
    began = time.perf_counter()
    for batch in batches(messages):
        output, _ = pipeline.run(batch)
        rows += sum(frame.height for _, frame in output.rows) + len(output.findings)
    return changes(messages) / (time.perf_counter() - began), rows


def embedded_rate(folder: Path, messages: list[Message], names: list[str]) -> float:
    """Object changes per second of the embedded engine running ``names``, inserts
    included."""
    with Store(ChdbBackend(folder), 0) as store:
        engine = EmbeddedEngine(store, build(names))
        began = time.perf_counter()
        for start in range(0, len(messages), BATCH):
            engine.process(messages[start : start + BATCH])
        engine.finish()
        return changes(messages) / (time.perf_counter() - began)


def state_memory(objects: int) -> None:
    """The state of each processor for ``objects`` live objects, in memory, then after
    as many edits again and after half the objects are deleted (it follows the live
    objects, not the history); and what a worker saves of it per batch (the entries the
    batch changed: ``Pipeline.saved``)."""
    everything = list(workload(objects, objects, seed=8))
    created, edits = everything[: 2 * objects], everything[2 * objects : 3 * objects]
    deleted = [
        (topic, m.model_copy(update={"change": ChangeType.DELETED}))
        for topic, m in everything[3 * objects :: 2]
        if isinstance(m, ObjectChange)
    ]
    for name in ("changes", "drift"):
        pipeline = Pipeline(build([name]), Reference(Pricer()))
        figures, offset = [], 0
        for part in (created, edits, deleted):
            saved, count = 0, 0
            for batch in batches(part, offset):
                pipeline.run(batch)
                for slot in pipeline.slots.values():  # none while only baselines came
                    saved += sum(len(value or b"") for _, value in pipeline.saved(slot))
                    count += 1
            offset += len(part)
            (slot,) = pipeline.slots.values()
            figures.append(
                f"{deep_mib(slot.state):,.0f} MiB (saved per batch of {BATCH:,}: "
                f"{saved / count / 2**20:,.1f} MiB)"
            )
        print(
            f"{name}: state of {objects:,} live objects {figures[0]}; after {objects:,} "
            f"edits {figures[1]}; after deleting half {figures[2]}"
        )


def worker_rate(folder: Path, messages: list[Message]) -> float:
    broker = fresh_broker(folder / "kafka")
    with Publisher(broker.bootstrap) as publisher:
        publisher.publish_all(messages)
    os.environ["KUBEOPERA_PROCESSORS"] = '["changes"]'
    began = time.time()
    worker = start_worker(broker, folder, "bench-timeline")
    wait_for(lambda: group_stable(broker, "bench-timeline"), "the worker's group")
    ready = time.time()
    wait_for(lambda: lag(broker, "bench-timeline", Topic.OBJECTS) == 0, "the drain")
    peak = stop(worker)
    with Store(ChdbBackend(folder / "store"), 0) as store:
        rows = store.query("SELECT count() AS n FROM object_changes FINAL")["n"].item()
    seconds = time.time() - ready
    print(
        f"Faust worker (changes): {seconds:.1f} s from ready ({time.time() - began:.1f} s "
        f"from start), {changes(messages) / seconds:,.0f} changes/s, {rows:,} rows, peak RSS "
        f"{peak} MiB (drain seen by polling the committed offsets: an upper bound on time)"
    )
    return changes(messages) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, default=20_000)
    parser.add_argument("--edits", type=int, default=20_000)
    parser.add_argument("--state-objects", type=int, default=100_000)
    parser.add_argument("--worker", action="store_true", help="also the Faust worker")
    args = parser.parse_args()
    stop_on_sigterm()
    tune_gc_for_batches()
    print(describe())
    messages = list(workload(args.objects, args.edits))
    print(
        f"input: {changes(messages):,} object changes ({args.objects:,} created as declared, "
        f"{args.edits:,} edited by hand, {args.objects:,} relisted)"
    )
    for name in ("changes", "drift"):
        rate, rows = pipeline_rate(name, messages)
        print(f"embedded pipeline, {name} alone: {rate:,.0f} changes/s ({rows:,} rows/findings)")
    with tempfile.TemporaryDirectory() as folder, CLEANUP:
        for names in (["changes"], ["changes", "drift"]):
            rate = embedded_rate(Path(folder) / "-".join(names), messages, names)
            print(f"embedded engine, {' + '.join(names)}, with the inserts: {rate:,.0f} changes/s")
        if args.worker:
            worker_rate(Path(folder), messages)
    state_memory(args.state_objects)


if __name__ == "__main__":
    main()
