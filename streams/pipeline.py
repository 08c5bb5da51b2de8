"""The pipeline, written once: decode -> reference -> processors -> output.

Both engines hand it batches and write what it returns through the sink port
(``streams.sink``); they only move batches, state and offsets. For each processor and
source partition it keeps a slot: the partition's clock (``streams.watermark``) and the
processor's state. A batch's messages are grouped by processor and partition; replays
(offsets at or below the clock's) are counted as duplicates and skipped, those that
could not be decoded too (a redelivered bad message is not dead-lettered twice); each message
is given its partition's watermark as of the message before it; the processor computes
(once for all the batch's partitions when it can: ``processor.process_partitions``);
then each slot closes what its new watermark has made due. When reference data that a
processor compares its state with has changed (``processor.ComparesWithReference``),
every slot of that processor is processed, with an empty batch if it has none.

A slot's state is saved as records (``saved``) after the batch's output is written, and
restored (the ``restore`` and ``restore_entries`` callbacks) the first time its
partition is seen again: one record of its clock and state, and for a processor that
keeps its state as entries (``processor.KeepsEntries``) one more per entry the batch
changed, under ``<slot key>#<entry>`` (None: the entry is gone).
"""

import heapq
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from kubeopera.models import DeadLetter, Topic
from kubeopera.streams.decode import RawMessage, decode
from kubeopera.streams.processor import (
    Batch,
    ComparesWithReference,
    Envelope,
    KeepsEntries,
    Output,
    PreparesReference,
    Processor,
    process_partitions,
)
from kubeopera.streams.reference import Reference
from kubeopera.streams.state_bytes import pack, unpack
from kubeopera.streams.watermark import END_OF_INPUT, PartitionClock


@dataclass
class Slot:
    """One processor's clock and state for one source partition."""

    processor: Processor[Any]
    topic: Topic
    partition: int
    clock: PartitionClock
    state: Any

    @property
    def key(self) -> str:
        """Where the slot is saved: ``processor/topic/partition``."""
        return slot_key(self.processor.name, self.topic, self.partition)


def slot_key(processor: str, topic: Topic, partition: int) -> str:
    return f"{processor}/{topic}/{partition}"


ENTRY = "#"
"""Between a slot's key and an entry's name in the key an entry is saved under."""


def decode_all(raws: Iterable[RawMessage]) -> tuple[list[Envelope], list[DeadLetter]]:
    """Raw messages as envelopes; what cannot be read as dead letters saying why."""
    envelopes, letters = [], []
    for raw in raws:
        decoded = decode(raw)
        if isinstance(decoded, DeadLetter):
            letters.append(decoded)
        else:
            envelopes.append(
                Envelope(Topic(raw.topic), decoded, raw.partition, raw.offset, raw=raw.value)
            )
    return envelopes, letters


class Pipeline:
    """The processors over one reference.

    ``feeds_reference``: the batches themselves carry the reference data (the embedded
    engine); a Faust worker reads it from the whole topics instead, and feeds
    ``reference`` itself. ``reference_retention``: how long superseded reference data
    stays known past the slowest slot's horizon (a partition gained in a rebalance may
    replay from that far back). ``restore``: a slot's saved bytes, if any;
    ``restore_entries``: the saved entries whose keys start with a prefix, as (entry,
    bytes) (``<slot key>#``: the slot's).
    """

    def __init__(
        self,
        processors: Sequence[Processor[Any]],
        reference: Reference,
        feeds_reference: bool = True,
        reference_retention: timedelta = timedelta(0),
        restore: Callable[[str], bytes | None] = lambda key: None,
        restore_entries: Callable[[str], Iterable[tuple[str, bytes]]] = lambda prefix: (),
    ) -> None:
        self.processors = list(processors)
        self.reference = reference
        self.feeds_reference = feeds_reference
        self.reference_retention = reference_retention
        self.restore = restore
        self.restore_entries = restore_entries
        for processor in self.processors:
            if isinstance(processor, PreparesReference):
                processor.prepare(reference)
        self.slots: dict[str, Slot] = {}
        self._compared: dict[str, int] = {}  # processor -> reference generations compared

    def topics(self) -> set[Topic]:
        """Every topic some processor consumes."""
        return {topic for p in self.processors for topic in p.topics}

    def run(
        self, envelopes: Sequence[Envelope], rejected: Iterable[DeadLetter] = ()
    ) -> tuple[Output, list[Slot]]:
        """One batch (any topics and partitions); ``rejected`` are its messages that
        could not be decoded. Returns everything to write, and the slots the batch
        changed, to save once the output is written."""
        if self.feeds_reference:
            self.reference.apply(e.message for e in envelopes)
        letters = list(rejected)
        consumed = {t.value: t for t in self.topics()}
        new_letters: dict[int, bool] = {}  # index in letters -> some slot had not seen it
        output = Output()
        touched: dict[str, Slot] = {}
        for processor in self.processors:
            groups = self._groups(processor, envelopes)
            unread: dict[tuple[Topic, int], list[int]] = {}
            for index, letter in enumerate(letters):
                topic = consumed.get(letter.source_topic)
                if topic in processor.topics and letter.offset >= 0:
                    unread.setdefault((topic, letter.partition), []).append(index)
            slots, work = [], []
            for key in [*groups, *(k for k in unread if k not in groups)]:
                slot = self.slot(processor, *key)
                indexes = unread.get(key, [])
                timed, replays, new = _admit(
                    slot, groups.get(key, []), [letters[i].offset for i in indexes]
                )
                for index, is_new in zip(indexes, new, strict=True):
                    new_letters[index] = new_letters.get(index, False) or is_new
                output.duplicates += replays
                slots.append(slot)
                work.append((Batch(timed), slot.state))
                touched[slot.key] = slot
            output.extend(process_partitions(processor, work, self.reference))
            for slot in slots:  # then what each partition's new watermark made due
                if slot.clock.watermark is not None:
                    output.extend(processor.close(slot.state, slot.clock.watermark))
        kept = [letter for i, letter in enumerate(letters) if new_letters.get(i, True)]
        output.dead_letters[:0] = kept
        output.duplicates += len(letters) - len(kept)
        self._forget_reference()
        return output, list(touched.values())

    def _groups(
        self, processor: Processor[Any], envelopes: Sequence[Envelope]
    ) -> dict[tuple[Topic, int], list[Envelope]]:
        """The processor's messages by topic and partition; with every slot of it (and no
        messages) when the reference data it compares its state with has changed."""
        groups: dict[tuple[Topic, int], list[Envelope]] = {}
        for envelope in envelopes:
            if envelope.topic in processor.topics:
                groups.setdefault((envelope.topic, envelope.partition), []).append(envelope)
        if self._reference_changed(processor):
            for slot in list(self.slots.values()):
                if slot.processor is processor:
                    groups.setdefault((slot.topic, slot.partition), [])
        return groups

    def stale(self) -> bool:
        """Whether reference data some processor compares its state with has changed
        since it last did (``run`` with no messages then brings every slot up to date)."""
        return any(self._generation(p) != self._compared.get(p.name, 0) for p in self.processors)

    def _reference_changed(self, processor: Processor[Any]) -> bool:
        generation = self._generation(processor)
        changed = generation != self._compared.get(processor.name, 0)
        self._compared[processor.name] = generation
        return changed

    def _generation(self, processor: Processor[Any]) -> int:
        if not isinstance(processor, ComparesWithReference):
            return 0
        return sum(self.reference.generation(t) for t in processor.reference_topics)

    def advance(
        self, topic: Topic, partition: int, by: timedelta, limit: datetime
    ) -> tuple[Output, list[Slot]]:
        """An idle partition of ``topic``: its slots' watermarks move ``by`` ahead, but not
        past ``limit`` (UTC), and each processor closes what that made due. Returns the
        output and the slots that changed (to save once it is written), as ``run`` does."""
        output, touched = Output(), []
        for slot in self.slots.values():
            if slot.topic != topic or slot.partition != partition or not slot.clock.watermark:
                continue
            instant = min(slot.clock.watermark + by, limit)
            if slot.clock.advance(instant):
                output.extend(slot.processor.close(slot.state, instant))
                touched.append(slot)
        return output, touched

    def finish(self, topics: Iterable[Topic] | None = None) -> Output:
        """End of a finite input: every slot (of ``topics``, if given) closes everything."""
        wanted = None if topics is None else set(topics)
        output = Output()
        for slot in list(self.slots.values()):
            if wanted is None or slot.topic in wanted:
                output.extend(slot.processor.close(slot.state, END_OF_INPUT))
        return output

    def slot(self, processor: Processor[Any], topic: Topic, partition: int) -> Slot:
        key = slot_key(processor.name, topic, partition)
        if key not in self.slots:
            saved = self.restore(key)
            clock, state = PartitionClock(), processor.new_state()
            if saved:
                clock, state = _unpack(processor, saved)
                if isinstance(processor, KeepsEntries):
                    entries = processor.entries(state)
                    entries.update((e, v.decode()) for e, v in self.restore_entries(key + ENTRY))
                    entries.changes()  # as saved
            self.slots[key] = Slot(processor, topic, partition, clock, state)
        return self.slots[key]

    def resume_offset(self, topic: Topic, partition: int) -> int | None:
        """The offset the partition's stateful slots take next (their saved clocks'
        highest offset + 1, restored if need be); None when no processor keeps state for
        it, or none has processed an offset of it."""
        offsets = [
            self.slot(processor, topic, partition).clock.offset
            for processor in self.processors
            if topic in processor.topics and processor.new_state() is not None
        ]
        known = [o for o in offsets if o >= 0]
        return max(known) + 1 if known else None

    def saved(self, slot: Slot) -> list[tuple[str, bytes | None]]:
        """What to save of the slot, as (key, bytes) records: its clock and state under
        its key (what ``restore`` must give back), and each entry changed since it was
        last saved under ``<slot key>#<entry>``, None for one removed (what
        ``restore_entries`` must give back of those not removed)."""
        records: list[tuple[str, bytes | None]] = [
            (slot.key, pack(slot.clock.to_dict(), slot.processor.state_to_bytes(slot.state)))
        ]
        if isinstance(slot.processor, KeepsEntries):
            records += [
                (slot.key + ENTRY + name, None if value is None else value.encode())
                for name, value in slot.processor.entries(slot.state).changes()
            ]
        return records

    def forget(self, topic: Topic, partitions: set[int]) -> None:
        """Drop the slots of these partitions of ``topic`` (lost in a rebalance, or
        gained, so that their state is restored from where its last owner saved it)."""
        self.slots = {
            k: s for k, s in self.slots.items() if s.topic != topic or s.partition not in partitions
        }

    def _forget_reference(self) -> None:
        """Reference data superseded before every slot's horizon (less the retention) is
        pruned. Only slots that have seen data and need reference data count, and a slot
        that cannot name its horizon yet keeps it all. (A partition that has seen nothing
        yet does not count: its first data may need what is pruned, if it lags the
        others by more than the retention.)"""
        horizons = [s.processor.horizon(s.state) for s in self.slots.values() if s.clock.watermark]
        if None in horizons:
            return
        needed = [h for h in horizons if h is not None and h < END_OF_INPUT]
        if needed:
            self.reference.forget_before(min(needed) - self.reference_retention)


def _admit(
    slot: Slot, group: list[Envelope], unread: list[int]
) -> tuple[list[Envelope], int, list[bool]]:
    """The slot's messages in offset order: ``group`` (decoded) and the offsets of those
    that could not be decoded (``unread``). Returns the new messages, each with its
    partition's watermark as of the message before it; how many were replays; and
    whether each unread offset was new to the slot."""
    timed, replays, new = [], 0, []
    ordered = heapq.merge(
        ((e.offset, e) for e in group), ((o, None) for o in unread), key=lambda m: m[0]
    )
    for offset, envelope in ordered:
        if envelope is None:
            new.append(not slot.clock.replayed(offset))
            slot.clock.skip(offset)
        elif slot.clock.replayed(offset):
            replays += 1
        else:
            watermark = slot.clock.observe(envelope.message.event_time(), offset)
            timed.append(replace(envelope, watermark=watermark))
    return timed, replays, new


def _unpack(processor: Processor[Any], saved: bytes) -> tuple[PartitionClock, Any]:
    header, body = unpack(saved)
    return PartitionClock.from_dict(header), processor.state_from_bytes(body)
