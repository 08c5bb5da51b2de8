"""The embedded engine: source -> processors -> ClickHouse in one process, batch by batch.

The same processors run in the Faust workers; here their state (pod inventory, node
prices, open hourly windows) lives in this object. Every batch is decoded, priced,
allocated and written as a handful of columnar inserts.
"""

import gc
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta

import polars as pl

from kubeopera.models import (
    Contract,
    DeadLetter,
    KubeEvent,
    Message,
    MetricBatch,
    NodePrice,
    ObjectChange,
    Topic,
    message_key,
)
from kubeopera.sinks.clickhouse import Store
from kubeopera.streams.cost import allocate_exact
from kubeopera.streams.decode import RawMessage, dead_letter, decode
from kubeopera.streams.frames import (
    deadletters_frame,
    events_frame,
    objects_frame,
    samples_frame,
    scrapes_frame,
)
from kubeopera.streams.pricing import Pricer, pricing_frame
from kubeopera.streams.reference import Reference
from kubeopera.streams.windows import HourlyWindows


@dataclass
class RunStats:
    """Counters of one run; the demo and the benchmarks print them."""

    messages: int = 0
    samples: int = 0
    cost_rows: int = 0
    dead_letters: int = 0
    duplicates: int = 0
    batches: int = 0


class EmbeddedRunner:
    def __init__(
        self,
        store: Store,
        pricer: Pricer | None = None,
        allowed_lateness: timedelta = timedelta(minutes=10),
        team_label: str = "team",
    ) -> None:
        self.store = store
        self.pricer = pricer or Pricer()
        self.reference = Reference(self.pricer, team_label)
        self.windows = HourlyWindows(allowed_lateness)
        self.stats = RunStats()

    def run(
        self,
        source: Iterable[list[Message]],
        batch_samples: int = 200_000,
        on_batch: Callable[[RunStats], None] | None = None,
    ) -> RunStats:
        """Process a stream of message lists, regrouped into batches of about
        ``batch_samples`` container samples, then close every open window."""
        for batch in rebatch(source, batch_samples):
            self.process(batch)
            if on_batch:
                on_batch(self.stats)
        self.finish()
        return self.stats

    def process_raw(self, raws: list[RawMessage]) -> None:
        """Decode raw bytes first: what cannot be read is dead-lettered, the rest runs."""
        decoded = [(raw, decode(raw)) for raw in raws]
        self.process(
            [(Topic(r.topic), m) for r, m in decoded if not isinstance(m, DeadLetter)],
            [m for _, m in decoded if isinstance(m, DeadLetter)],
        )

    def process(self, messages: list[Message], rejected: Iterable[DeadLetter] = ()) -> None:
        """One batch; ``rejected`` are the batch's messages that could not be read, written
        to the dead-letter table with the batch's own."""
        self.stats.messages += len(messages)
        self.stats.batches += 1
        letters = list(rejected)
        prices = [m for _, m in messages if isinstance(m, NodePrice)]
        changes = [m for _, m in messages if isinstance(m, ObjectChange)]
        events = [m for _, m in messages if isinstance(m, KubeEvent)]
        metrics = [m for _, m in messages if isinstance(m, MetricBatch)]

        self._apply_prices(prices)
        self.reference.apply_changes(changes)
        self.store.insert("raw_objects", objects_frame(changes))
        self.store.insert("raw_events", events_frame(events))

        usable = self._admit(metrics, letters)
        if usable:
            samples = samples_frame(usable)
            scrapes = scrapes_frame(usable)
            self.stats.samples += samples.height
            self.store.insert("raw_metrics", samples)
            self.store.insert("raw_node_metrics", scrapes)
            self.windows.add(
                allocate_exact(
                    samples,
                    scrapes,
                    self.reference.pricing(),
                    self.reference.versions(),
                    self.pricer.defaults,
                )
            )
        self._write_costs(self.windows.close_due())
        if self.windows.closed_until is not None:
            self.reference.forget_before(self.windows.closed_until)
        self._write_dead_letters(letters)

    def finish(self) -> None:
        """End of input: every open hour is final."""
        self._write_costs(self.windows.close_all())

    def _apply_prices(self, prices: list[NodePrice]) -> None:
        self.store.insert("node_prices", pricing_frame(self.reference.apply_prices(prices)))

    def _admit(self, metrics: list[MetricBatch], letters: list[DeadLetter]) -> list[MetricBatch]:
        usable = []
        for batch in metrics:
            use, reason = self.windows.screen(batch)
            if reason:
                letters.append(_rejected(Topic.METRICS, batch, reason))
            if use:
                usable.append(batch)
        self.stats.duplicates = self.windows.duplicates
        return usable

    def _write_costs(self, rows: pl.DataFrame) -> None:
        """One block per closed hour, deduplicated by content: a replay of the same input
        (a restart, a re-run into the same store) never counts an hour twice."""
        self.stats.cost_rows += rows.height
        for hour in rows.partition_by("window_start", maintain_order=True):
            self.store.insert("cost_allocation_hourly", hour, deduplicate=True)

    def _write_dead_letters(self, letters: list[DeadLetter]) -> None:
        self.stats.dead_letters += len(letters)
        self.store.insert("deadletter", deadletters_frame(letters))


def _rejected(topic: Topic, message: Contract, reason: str) -> DeadLetter:
    raw = RawMessage(
        topic=topic, value=message.model_dump_json().encode(), key=message_key(message)
    )
    return dead_letter(raw, reason)


def tune_gc_for_batches() -> None:
    """Raise the young-generation GC threshold for this process.

    A batch allocates hundreds of thousands of small objects that all die together;
    the default threshold (700) runs the cyclic collector thousands of times over them,
    about a quarter of the embedded pipeline's time. Entry points call this; the library
    never changes it by itself.
    """
    gc.set_threshold(100_000, 50, 50)


def rebatch(source: Iterable[list[Message]], batch_samples: int) -> Iterator[list[Message]]:
    """Regroup message lists so that each batch carries about ``batch_samples`` samples."""
    pending: list[Message] = []
    samples = 0
    for messages in source:
        pending.extend(messages)
        samples += sum(len(m.containers) for _, m in messages if isinstance(m, MetricBatch))
        if samples >= batch_samples:
            yield pending
            pending, samples = [], 0
    if pending:
        yield pending
