"""The processor contract, checked for every registered processor (as river checks every
estimator): the same tables however the input is cut into batches; state that survives
bytes and a restart; a replayed batch that changes nothing; no I/O inside the processor;
and, on a real broker, the Kafka engine's tables equal to the embedded engine's.

The registry includes ``namespace_samples``, a processor defined in this folder only for
the tests and registered by importing it, as a user's own would be.

The expected tables are the processor's own output on the whole input in one batch: the
contract is that nothing about batching, restarts or replays changes them. What the
processors compute is checked against hand-worked values elsewhere (test_cost_cases,
test_cost_fixture, ...).
"""

import builtins
import json
import os
import socket
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any, cast

import namespace_samples
import polars as pl
import pytest
from builders import scrape
from cli_tools import stored
from kafka_tools import run_until_drained
from polars.testing import assert_frame_equal

from kubeopera.collectors.publisher import Publisher
from kubeopera.collectors.simulator import FleetSpec, simulate
from kubeopera.collectors.topics import ensure_topics
from kubeopera.deploy.kafka import Broker, free_port
from kubeopera.models import (
    Budget,
    BudgetPeriod,
    BudgetScope,
    DeadLetter,
    Message,
    MetricBatch,
    Topic,
    message_key,
)
from kubeopera.sinks.clickhouse import ChdbBackend, Store
from kubeopera.streams import registry
from kubeopera.streams.cost_settings import CostSettings
from kubeopera.streams.decode import RawMessage, decode
from kubeopera.streams.embedded import EmbeddedEngine
from kubeopera.streams.frames import findings_frame
from kubeopera.streams.pipeline import Pipeline
from kubeopera.streams.pricing import Pricer
from kubeopera.streams.processor import (
    Envelope,
    Output,
    ProcessesPartitionsTogether,
    Processor,
    Table,
)
from kubeopera.streams.reference import Reference
from kubeopera.streams.sink import FINDINGS_TABLE
from kubeopera.streams.watermark import END_OF_INPUT

START = datetime(2026, 3, 2, tzinfo=UTC)
HOUR = timedelta(hours=1)
SPEC = FleetSpec(
    clusters=2,
    pods_per_cluster=10,
    start=START,
    duration=timedelta(hours=3),
    resolution=timedelta(minutes=10),
    seed=11,
)
NAMES = registry.names()
assert namespace_samples.NamespaceSamples.name in NAMES


BUDGET = Budget(
    scope=BudgetScope.TEAM, target="payments", period=BudgetPeriod.WEEKLY, amount=0.5,
    recorded_at=START,
)  # fmt: skip
"""A budget the fleet's payments team reaches within the hours simulated."""


@cache
def envelopes() -> tuple[Envelope, ...]:
    """The fleet's messages in the order a collector publishes them, each at its offset in
    its topic (one partition per topic, as in the embedded engine), with a re-published
    scrape (a duplicate at a new offset) and a scrape that arrives after its hour closed;
    a budget first; and the series points the cost and warnings processors send on all
    that (the input of the processors of the ``series`` topic), each after the scrape
    that would have closed its hour."""
    messages = [(Topic.BUDGETS, BUDGET), *(m for step in simulate(SPEC) for m in step)]
    first = next(m for _, m in messages if isinstance(m, MetricBatch))
    middle = len(messages) // 2
    late = scrape(first.cluster, first.node, START - timedelta(hours=1), 5, (2, 8), {})
    messages[middle:middle] = [(Topic.METRICS, first), (Topic.METRICS, late)]
    derived = [m for name in ("cost", "warnings") for m in sent(numbered(messages), name)]
    return numbered(interleaved(messages, derived))


def interleaved(messages: list[Message], points: list[Message]) -> list[Message]:
    """``messages`` with the series ``points`` each where the cost processor would have
    sent it: after the first scrape that closes its hour."""
    lateness = CostSettings().allowed_lateness
    pending = sorted(points, key=lambda m: m[1].event_time())
    result: list[Message] = []
    for topic, message in messages:
        result.append((topic, message))
        if isinstance(message, MetricBatch):
            while pending and pending[0][1].event_time() + HOUR + lateness <= message.window_end:
                result.append(pending.pop(0))
    return result + pending


def sent(items: Sequence[Envelope], name: str) -> list[Message]:
    """The messages processor ``name`` sends to other processors on ``items``."""
    return run(pipeline(name), iter([list(items)])).messages


def numbered(messages: list[Message]) -> tuple[Envelope, ...]:
    """Each message at its offset in its topic (one partition per topic)."""
    offsets: dict[Topic, int] = {}
    result = []
    for topic, message in messages:
        offsets[topic] = offsets.get(topic, -1) + 1
        result.append(Envelope(topic, message, 0, offsets[topic]))
    return tuple(result)


def spread(items: tuple[Envelope, ...], partitions: int, by_key: bool = True) -> list[Envelope]:
    """``items`` over ``partitions`` partitions of each topic, by message key as a Kafka
    producer spreads them (a node's scrapes stay in one partition) or, without
    ``by_key``, round robin; offsets counted per partition."""
    offsets: dict[tuple[Topic, int], int] = {}
    result = []
    for index, envelope in enumerate(items):
        key = message_key(envelope.message).encode()
        partition = (zlib.crc32(key) if by_key else index) % partitions
        offset = offsets[(envelope.topic, partition)] = (
            offsets.get((envelope.topic, partition), -1) + 1
        )
        result.append(replace(envelope, partition=partition, offset=offset))
    return result


SECTIONS = {
    "drift": {"across": [{"clusters": ["prod-us-east-1", "staging-eu-west-1"]}]},
    "anomalies": {"detector": "windowed_gaussian", "threshold": 0.9, "warm_up_hours": 0},
}
"""Processor settings the suite runs with: drift compares the fleet's two clusters too;
the anomalies are judged by a detector that needs two hours of history, not days, so
that the three hours of input open and resolve anomaly findings (the engines' findings
are compared)."""


def build(name: str) -> Processor[Any]:
    return registry.build([name], SECTIONS)[0]


def pipeline(name: str, restore: dict[str, bytes] | None = None) -> Pipeline:
    """A pipeline of processor ``name``, its slots restored from the records ``restore``
    holds (as an engine's state table: key -> bytes)."""
    saved = restore or {}
    return Pipeline(
        [build(name)],
        Reference(Pricer()),
        restore=saved.get,
        restore_entries=lambda prefix: [
            (key[len(prefix) :], value) for key, value in saved.items() if key.startswith(prefix)
        ],
    )


def save(processor: Pipeline, table: dict[str, bytes]) -> None:
    """What an engine does after a batch: each slot's records into its state table."""
    for slot in processor.slots.values():
        for key, value in processor.saved(slot):
            if value is None:
                table.pop(key, None)
            else:
                table[key] = value


def chunks(items: tuple[Envelope, ...], size: int) -> Iterator[list[Envelope]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def run(processor: Pipeline, batches: Iterator[list[Envelope]], finish: bool = True) -> Output:
    """Every batch, then (with ``finish``) the end of input; all output together."""
    everything = Output()
    for batch in batches:
        output, _ = processor.run(batch)
        everything.extend(output)
    if finish:
        everything.extend(processor.finish())
    return everything


FINDINGS = Table(
    FINDINGS_TABLE,
    ("cluster", "namespace", "finding_kind", "fingerprint", "last_seen"),
    "last_seen",
)


def tables(output: Output) -> dict[str, pl.DataFrame]:
    """The output as the tables keep it, its findings in theirs: one row per key (the
    last written)."""
    frames: dict[str, list[pl.DataFrame]] = {}
    keys = {}
    findings = [(FINDINGS, findings_frame(output.findings))] if output.findings else []
    sent = [(SENT, sent_frame(output.messages))] if output.messages else []
    for table, rows in [*output.rows, *findings, *sent]:
        frames.setdefault(table.name, []).append(rows)
        keys[table.name] = list(table.key)
    return {
        name: pl.concat(parts, how="vertical_relaxed")
        .unique(keys[name], keep="last", maintain_order=True)
        .sort(keys[name])
        for name, parts in frames.items()
    }


SENT = Table("sent", ("topic", "key", "message"), "key")
"""The messages a processor sent to others, as a table: each once (a replay may send one
again, and its consumer counts it once)."""


def sent_frame(messages: list[Message]) -> pl.DataFrame:
    return pl.DataFrame(
        [(str(t), message_key(m), m.model_dump_json()) for t, m in messages],
        schema=["topic", "key", "message"],
        orient="row",
    )


def letters(output: Output) -> list[tuple[str, str, bytes, str]]:
    """The dead letters by what they carry (offsets depend on how topics are partitioned)."""
    return sorted((d.source_topic, d.key, d.raw, d.error) for d in output.dead_letters)


def assert_same(got: Output, expected: Output) -> None:
    got_tables, expected_tables = tables(got), tables(expected)
    assert got_tables.keys() == expected_tables.keys()
    for name, frame in expected_tables.items():
        assert_frame_equal(got_tables[name], frame, check_exact=True)
    assert letters(got) == letters(expected)


@cache
def whole(name: str) -> Output:
    """The processor's output on the whole input as one batch."""
    return run(pipeline(name), iter([list(envelopes())]))


@pytest.mark.parametrize("name", NAMES)
def test_the_input_yields_output(name: str) -> None:
    """The input exercises the processor (a contract test on empty output proves nothing):
    every table it declares, or findings."""
    written = {name for name, rows in tables(whole(name)).items() if rows.height}
    assert written - {FINDINGS_TABLE, SENT.name} == {t.name for t in build(name).tables}
    assert written


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("size", [1, 7, 250])
@pytest.mark.parametrize("partitions", [1, 12])
def test_the_same_tables_however_the_input_is_cut_into_batches(
    name: str, size: int, partitions: int
) -> None:
    """In one partition per topic (the embedded engine) or spread by key over the Kafka
    engine's 12, where every batch spans many partitions."""
    items = tuple(spread(envelopes(), partitions))
    assert_same(run(pipeline(name), chunks(items, size)), whole(name))


class OnePartitionAtATime:
    """A processor without its ``process_partitions``: the pipeline calls ``process`` on
    each partition."""

    def __init__(self, processor: Processor[Any]) -> None:
        self.processor = processor

    def __getattr__(self, attribute: str) -> Any:
        if attribute == "process_partitions":
            raise AttributeError(attribute)
        return getattr(self.processor, attribute)


def closed_now(processor: Pipeline) -> dict[str, dict[str, pl.DataFrame]]:
    """What each slot's state, read back from its bytes, would close at the end of input."""
    closed = {}
    for key, slot in processor.slots.items():
        state = slot.processor.state_from_bytes(slot.processor.state_to_bytes(slot.state))
        closed[key] = tables(slot.processor.close(state, END_OF_INPUT))
    return closed


TOGETHER = [n for n in NAMES if isinstance(build(n), ProcessesPartitionsTogether)]


@pytest.mark.parametrize("name", TOGETHER)
@pytest.mark.parametrize("by_key", [True, False], ids=["by key", "round robin"])
def test_partitions_processed_together_give_what_each_gives_alone(name: str, by_key: bool) -> None:
    """A processor's own ``process_partitions`` gives exactly what ``process`` gives on
    each partition, output and state, whether each node keeps to one partition or not."""
    items = spread(envelopes(), 12, by_key)
    alone = Pipeline([cast(Processor[Any], OnePartitionAtATime(build(name)))], Reference(Pricer()))
    together = pipeline(name)
    for batch in chunks(tuple(items), 100):
        expected, _ = alone.run(batch)
        got, _ = together.run(batch)
        assert_same(got, expected)
        assert got.duplicates == expected.duplicates
        states, expected_states = closed_now(together), closed_now(alone)  # by what they hold
        assert states.keys() == expected_states.keys()
        for key, frames in expected_states.items():
            assert states[key].keys() == frames.keys()
            for table, frame in frames.items():
                assert_frame_equal(states[key][table], frame, check_exact=True)
    assert_same(together.finish(), alone.finish())


@pytest.mark.parametrize("order", ["as published", "inventory first"])
def test_the_processors_together_give_what_each_gives_alone(order: str) -> None:
    """One pipeline runs them all over one reference: no processor may disturb another's
    (a stateless one pruning the reference data a stateful one still needs, say). The
    Kafka engine's agents may take every object change before the first scrape."""
    items = envelopes()
    if order == "inventory first":
        items = tuple(sorted(items, key=lambda e: e.topic == Topic.METRICS))
    together = Pipeline(registry.build(NAMES, SECTIONS), Reference(Pricer()))
    alone = Output()
    for name in NAMES:
        alone.extend(whole(name))
    assert_same(run(together, chunks(items, 7)), alone)


@pytest.mark.parametrize("name", NAMES)
def test_state_survives_bytes_and_a_restart(name: str) -> None:
    """Half the input, the state saved as bytes after each batch (a processor that keeps
    entries saves those the batch changed), a new pipeline restored from them (its
    reference read again from the topics, as a restarted worker does), the rest."""
    items = envelopes()
    half = len(items) // 2
    before, table, first = pipeline(name), {}, Output()
    for batch in chunks(items[:half], 40):
        output, _ = before.run(batch)
        first.extend(output)
        save(before, table)
    after = pipeline(name, restore=table)
    after.reference.apply(e.message for e in items[:half])
    second = run(after, chunks(items[half:], 40))
    first.extend(second)
    assert_same(first, whole(name))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("offsets", ["replayed offsets", "re-published"])
def test_a_replayed_batch_changes_nothing(name: str, offsets: str) -> None:
    """A batch processed again (a restart resuming from an older committed offset, or a
    collector publishing again at new offsets) adds no row and changes none; replayed
    offsets dead-letter nothing, and messages published again are refused only where
    they were the first time (the input's scrape that comes after its hour closed)."""
    items = envelopes()
    processor = pipeline(name)
    batches = list(chunks(items, 60))
    output = Output()
    for index, batch in enumerate(batches):
        step, _ = processor.run(batch)
        output.extend(step)
        if index == len(batches) // 2:
            again = [e if offsets == "replayed offsets" else replace(e, offset=-1) for e in batch]
            replayed, _ = processor.run(again)
            refused = [letter[:3] for letter in letters(step)]  # which messages, not when
            assert [letter[:3] for letter in letters(replayed)] == (
                refused if offsets == "re-published" else []
            )
            replayed.dead_letters.clear()  # published twice, refused twice: compare the rest
            output.extend(replayed)
    output.extend(processor.finish())
    assert_same(output, whole(name))


@pytest.mark.parametrize("name", NAMES)
def test_a_bad_message_redelivered_is_dead_lettered_once(name: str) -> None:
    """A message that cannot be decoded, amid a partition's messages, is redelivered
    with its batch (Kafka delivers at least once): one dead letter, and the messages
    before and after it are each processed once."""
    topic = min(build(name).topics)
    items = envelopes()
    ours = [e for e in items if e.topic == topic]
    middle = ours[len(ours) // 2]
    shifted = [  # a gap at the middle message's offset, where the bad message sits
        replace(e, offset=e.offset + 1) if e.topic == topic and e.offset >= middle.offset else e
        for e in items
    ]
    bad = decode(RawMessage(topic=topic.value, value=b"{", partition=0, offset=middle.offset))
    middle = shifted[items.index(middle)]  # the message after the bad one
    assert isinstance(bad, DeadLetter)
    processor = pipeline(name)
    output = Output()
    for batch in chunks(tuple(shifted), 60):
        rejected = [bad] if middle in batch else []
        for _ in range(1 + len(rejected)):  # the batch with the bad message comes twice
            step, _ = processor.run(batch, rejected)
            output.extend(step)
    output.extend(processor.finish())
    expected = whole(name)
    assert tables(output).keys() == tables(expected).keys()
    for table, frame in tables(expected).items():
        assert_frame_equal(tables(output)[table], frame, check_exact=True)
    assert letters(output) == sorted([*letters(expected), letters(Output(dead_letters=[bad]))[0]])


@pytest.mark.parametrize("name", NAMES)
def test_a_processor_does_no_io(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """No file, socket or process is opened while the pipeline runs the processor."""
    processor = pipeline(name)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"I/O inside a processor: {args!r}")

    monkeypatch.setattr(builtins, "open", refuse)
    monkeypatch.setattr(os, "open", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(os, "system", refuse)
    output = run(processor, chunks(envelopes(), 250))
    monkeypatch.undo()
    assert_same(output, whole(name))


# -- both engines, on a real broker --------------------------------------------------


def sources() -> list[Message]:
    """The input as collectors publish it: the engines send the series points themselves."""
    return [(e.topic, e.message) for e in envelopes() if e.topic != Topic.SERIES]


CLOSED = START + SPEC.duration - timedelta(hours=1)
"""Hours before this are closed in every partition (the Kafka engine, which never sees an
end of input, leaves a partition's last hour open)."""


@pytest.mark.integration
def test_every_processor_gives_the_same_tables_on_both_engines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broker = Broker(state=tmp_path / "kafka", port=free_port())
    broker.up()
    try:
        ensure_topics(broker.bootstrap)
        with Publisher(broker.bootstrap) as publisher:
            publisher.publish_all(sources())
        config = tmp_path / "kubeopera.yaml"
        config.write_text(
            f"processors: [{', '.join(NAMES)}]\nprocessor_modules: [namespace_samples]\n"
            f"processor_settings: {json.dumps(SECTIONS)}\n"
        )
        tests = str(Path(__file__).parent)
        path = os.pathsep.join([tests, os.environ.get("PYTHONPATH", "")])
        monkeypatch.setenv("PYTHONPATH", path)
        monkeypatch.setenv("KUBEOPERA_CONFIG", str(config))
        for store in (tmp_path / "worker-store", tmp_path / "embedded-store"):
            stored(store, namespace_samples.DDL)
        run_until_drained(broker, tmp_path / "worker-store", "contract", tmp_path / "worker")
    finally:
        broker.down()
    with Store(ChdbBackend(tmp_path / "embedded-store"), raw_retention_days=0) as store:
        engine = EmbeddedEngine(store, registry.build(NAMES, SECTIONS))
        engine.process(sources())
        engine.finish()
    for processor in registry.build(NAMES, SECTIONS):
        for table in processor.tables:
            sql = (
                f"SELECT * FROM {table.name} FINAL WHERE {table.time} < "
                f"toDateTime64('{CLOSED:%Y-%m-%d %H:%M:%S}', 3, 'UTC') "
                f"ORDER BY {', '.join(table.key)}"
            )
            worker = stored(tmp_path / "worker-store", sql).drop("ingested_at", strict=False)
            embedded = stored(tmp_path / "embedded-store", sql).drop("ingested_at", strict=False)
            assert embedded.height, f"{table.name}: nothing to compare"
            assert_frame_equal(worker, embedded, check_exact=True)
    # The findings (drift, anomalies, budgets), every state written before the last hour.
    findings = (
        f"SELECT * FROM findings FINAL WHERE last_seen < "
        f"toDateTime64('{CLOSED:%Y-%m-%d %H:%M:%S}', 3, 'UTC') ORDER BY fingerprint, last_seen"
    )
    embedded_findings = stored(tmp_path / "embedded-store", findings)
    assert embedded_findings.height, "findings: nothing to compare"
    assert_frame_equal(stored(tmp_path / "worker-store", findings), embedded_findings)
    # The planted late scrape, dead-lettered by each processor of metrics (the table
    # keeps one row per message); the garbage-free input has no other.
    rejected = "SELECT source_topic, uniqExact(raw) AS messages FROM deadletter GROUP BY ALL"
    worker_letters = stored(tmp_path / "worker-store", rejected)
    assert_frame_equal(worker_letters, stored(tmp_path / "embedded-store", rejected))
    assert worker_letters.rows() == [(Topic.METRICS.value, 1)]
