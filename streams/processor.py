"""The processor contract: what every stream processor implements, and what it is given.

A processor turns batches of decoded messages from the topics it consumes into output:
rows for its tables, findings and dead letters. It is pure: it reads only its arguments
(the batch, the shared reference data, its own state), does no I/O and keeps no clock,
so the two engines (``streams.embedded``, ``streams.faust_engine``) can run it on any cut of
the input and replay it after a crash. The engines keep one state per processor and
source partition, save it as bytes with the partition's clock (``streams.watermark``)
after the batch's output is written, and call ``close`` with the partition's watermark
after each batch (and with ``END_OF_INPUT`` at the end of a finite input). A batch of
the Kafka engine spans many partitions; a processor whose work has a fixed cost per call
(the cost processor's allocation) also implements ``process_partitions``, which the
pipeline then calls once per engine batch instead of ``process`` per partition.

Adding a processor is one module under ``streams/processors/`` that defines a class
satisfying ``Processor`` and registers it (``streams.registry.register``), plus a
migration when it writes a new table. ``tests/test_processor_contract.py`` then checks it
like every other (batch-split invariance, state round trip, replay idempotence, both
engines).
"""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

import polars as pl
from pydantic import BaseModel

from kubeopera.models import Contract, DeadLetter, Finding, Message, Topic, message_key
from kubeopera.streams.decode import RawMessage, dead_letter
from kubeopera.streams.entries import Entries
from kubeopera.streams.reference import Reference
from kubeopera.streams.watermark import END_OF_INPUT


@dataclass(frozen=True)
class Table:
    """An output table: its name, the key that identifies a row (its ORDER BY in the
    schema: writing a row twice keeps one), the event-time column (UTC) its rows are
    placed in time by, and whether each block is deduplicated by its content (for
    tables whose materialized views sum what arrives)."""

    name: str
    key: tuple[str, ...]
    time: str
    deduplicate: bool = False


@dataclass(frozen=True, slots=True)
class Envelope:
    """One decoded message with where it came from and its partition's watermark
    (``None`` for a partition's first message) as of the message before it."""

    topic: Topic
    message: Contract
    partition: int = 0
    offset: int = -1
    watermark: datetime | None = None
    raw: bytes | None = None  # the bytes as read, when the engine read bytes

    def reject(self, reason: str) -> DeadLetter:
        """The message as a dead letter with ``reason``, its bytes as they came."""
        value = self.raw if self.raw is not None else self.message.model_dump_json().encode()
        source = RawMessage(
            str(self.topic), value, message_key(self.message), self.partition, self.offset
        )
        return dead_letter(source, reason)


C = TypeVar("C", bound=Contract)


@dataclass(frozen=True)
class Batch:
    """Messages of one source partition (one per topic in the embedded engine), in
    partition order."""

    envelopes: Sequence[Envelope]

    def of(self, kind: type[C]) -> list[C]:
        """The messages of one contract type, in order."""
        return [m for e in self.envelopes if isinstance(m := e.message, kind)]

    def __len__(self) -> int:
        return len(self.envelopes)


@dataclass
class Output:
    """What a processor produced: blocks of rows for its tables (written in this order),
    findings, messages for other processors (``series`` points: a Faust worker publishes
    them to their topic, the embedded engine runs them next), dead letters, replayed
    messages it recognised as duplicates, and counters the engines add up (the demo and
    benchmarks print them)."""

    rows: list[tuple[Table, pl.DataFrame]] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    duplicates: int = 0
    counts: Counter[str] = field(default_factory=Counter)

    def extend(self, other: "Output") -> None:
        self.rows.extend(other.rows)
        self.findings.extend(other.findings)
        self.messages.extend(other.messages)
        self.dead_letters.extend(other.dead_letters)
        self.duplicates += other.duplicates
        self.counts.update(other.counts)


State = TypeVar("State")


class Processor(Protocol[State]):
    """A stream processor. ``name`` is its registry name and its section in the settings
    file; ``Settings`` is that section's pydantic model (the processor is built from an
    instance of it); ``topics`` are the topics it consumes; ``tables`` the tables its
    output writes.

    ``process`` may update ``state`` in place; it must give the same tables however the
    input is cut into batches, and nothing new for a batch it has already processed.
    Each source partition has its own state and emits its own rows, so a table's key
    includes the partition key's fields (for ``metrics``: cluster and node).
    A stateless processor's state is ``None``, its bytes empty; the engines then keep no
    state for it, and its tables' keys make a replay harmless.
    """

    name: ClassVar[str]
    Settings: ClassVar[type[BaseModel]]
    topics: ClassVar[frozenset[Topic]]
    tables: ClassVar[tuple[Table, ...]]

    def new_state(self) -> State: ...

    def process(self, batch: Batch, reference: Reference, state: State) -> Output:
        """Compute on one batch of one source partition."""
        ...

    def close(self, state: State, watermark: datetime) -> Output:
        """Emit what is due now that the partition's watermark is ``watermark``."""
        ...

    def horizon(self, state: State) -> datetime | None:
        """The earliest event time ``state`` can still use: reference data superseded
        before it is no longer needed (``END_OF_INPUT``: the processor needs none;
        ``None``: not known yet, keep it all)."""
        ...

    def state_to_bytes(self, state: State) -> bytes: ...

    def state_from_bytes(self, data: bytes) -> State: ...


@runtime_checkable
class ProcessesPartitionsTogether(Protocol):
    """A processor that computes several source partitions' batches in one call, giving
    exactly what ``process`` gives on each (the contract suite checks it: Kafka-style
    partitioned input, cut into batches of every size, gives the same tables)."""

    def process_partitions(self, work: Sequence[tuple[Batch, Any]], reference: Reference) -> Output:
        """Each ``(batch, state)`` is one source partition's batch and its state."""
        ...


@runtime_checkable
class KeepsEntries(Protocol):
    """A processor whose state holds one entry per live object (``streams.entries``):
    ``state_to_bytes`` leaves them out, and the engines save and restore them entry by
    entry (``Pipeline.saved``), so that a batch costs what it changed, not the state."""

    def entries(self, state: Any) -> Entries: ...


class KeptAsEntries:
    """The state of a processor that keeps nothing but entries (``KeepsEntries``) and
    waits for nothing (the anomaly and budget processors): an ``Entries`` saved entry by
    entry, nothing due at ``close``, no reference timeline to keep."""

    def new_state(self) -> Entries:
        return Entries()

    def entries(self, state: Entries) -> Entries:
        return state

    def close(self, state: Entries, watermark: datetime) -> Output:
        """Nothing waits: each message is taken as it arrives."""
        return Output()

    def horizon(self, state: Entries) -> datetime | None:
        return END_OF_INPUT  # it needs no reference timeline

    def state_to_bytes(self, state: Entries) -> bytes:
        return b""  # all of it is entries

    def state_from_bytes(self, data: bytes) -> Entries:
        return Entries()


@runtime_checkable
class PreparesReference(Protocol):
    """A processor that asks the reference data to keep more than its defaults (the drift
    processor: the peer groups' objects), or reads it when it closes (the budget
    processor: the budgets). The pipeline calls ``prepare`` once, before the first
    batch."""

    def prepare(self, reference: Reference) -> None: ...


@runtime_checkable
class ComparesWithReference(Protocol):
    """A processor whose output depends on reference data that may change after its
    input arrived (the drift processor on baselines): when the reference data of these
    topics changes, the pipeline calls ``process`` with an empty batch on each of its
    partitions' states, so that it compares what it holds with the new data."""

    reference_topics: ClassVar[frozenset[Topic]]


def process_partitions(
    processor: Processor[Any], work: Sequence[tuple[Batch, Any]], reference: Reference
) -> Output:
    """The output of every partition's batch: one call of the processor's own
    ``process_partitions`` when it has one, else ``process`` on each partition."""
    if isinstance(processor, ProcessesPartitionsTogether):
        return processor.process_partitions(work, reference)
    output = Output()
    for batch, state in work:
        output.extend(processor.process(batch, reference, state))
    return output
