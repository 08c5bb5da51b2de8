"""The production engine: the processors as a Faust app on the Kafka topics.

Each agent takes its topic in batches without acking (``noack_take``), decodes (bad
messages go to the dead-letter topic and table), computes, writes ClickHouse, and only
then acks: an offset is committed only after ClickHouse acknowledged what it carried.

State:
- reference data (node prices, pods, namespaces): every worker reads the whole
  ``prices`` and ``objects`` topics itself (``TopicReader``), because a node's metrics
  and its pods travel on different partitions;
- ``windows``: each node's open hourly cost windows, in a changelog-backed Faust table
  co-partitioned with ``metrics``. A replay after a crash finds its scrapes in the
  node's window state (a duplicate), and an hour closed twice is written twice with the
  same content token, which ClickHouse skips; so a restart loses nothing and duplicates
  nothing. Workers in one group split the ``metrics`` partitions; each closes the
  windows of the partitions it owns.

Faust cannot write a table from a ``take`` batch (faust-streaming #497: the table needs
the current event to pick its changelog partition); the seam here sets the current event
explicitly for each write (``_as_event``).
"""

import asyncio
import weakref
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

import faust
import polars as pl
from aiokafka import ConsumerRecord
from faust.streams import Stream, _current_event
from faust.types import EventT, StreamT
from faust.types.auth import CredentialsT
from kafka.partitioner.default import murmur2

from kubeopera.models import (
    DeadLetter,
    KubeEvent,
    MetricBatch,
    NodePrice,
    ObjectChange,
    Topic,
)
from kubeopera.sinks.clickhouse import Store
from kubeopera.streams.cost import allocate_exact, hour_of
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
from kubeopera.streams.topic_reader import TopicReader
from kubeopera.streams.windows import HourlyWindows

Insert = tuple[str, pl.DataFrame, bool]  # table, rows, deduplicate


@dataclass(frozen=True)
class WorkerOptions:
    bootstrap: str
    app_id: str = "kubeopera-worker"
    security: dict[str, Any] = field(default_factory=dict)  # aiokafka's security options
    batch_size: int = 2_000
    batch_seconds: float = 1.0
    allowed_lateness: timedelta = timedelta(minutes=10)
    team_label: str = "team"
    data_dir: Path = Path(".kubeopera/worker")
    metrics_partitions: int = 12
    objects_partitions: int = 12
    price_wait: timedelta = timedelta(seconds=30)
    sweep_seconds: float = 5.0
    # How long superseded reference data (pod versions, deleted pods, node prices) stays
    # known after the worker's slowest partition closed its hours: a partition gained in
    # a rebalance may replay scrapes from that far back.
    reference_retention: timedelta = timedelta(hours=6)


class Worker:
    """The Faust app, its tables and agents, writing through one ClickHouse store."""

    def __init__(
        self,
        options: WorkerOptions,
        store: Store,
        pricer: Pricer | None = None,
    ) -> None:
        self.options = options
        self.store = store
        self.pricer = pricer or Pricer()
        self.reference = Reference(self.pricer, options.team_label)
        self.reader = TopicReader(
            options.bootstrap,
            [Topic.PRICES.value, Topic.OBJECTS.value],
            self._apply_reference,
            **options.security,
        )
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="clickhouse")
        self._watermarks: dict[int, datetime] = {}  # metrics partition -> latest window end
        self._open_since: dict[str, datetime] = {}
        self._indexed_for: frozenset[int] = frozenset()  # metrics partitions indexed
        self._partition_events: dict[int, EventT[bytes]] = {}
        options.data_dir.mkdir(parents=True, exist_ok=True)
        app = faust.App(
            options.app_id,
            broker=f"kafka://{options.bootstrap}",
            broker_credentials=_credentials(options.security),
            store="memory://",
            datadir=str(options.data_dir),
            key_serializer="raw",
            value_serializer="raw",
            web_enabled=False,
            topic_disable_leader=True,
            consumer_auto_offset_reset="earliest",
            processing_guarantee="at_least_once",
            # A worker that dies (kill -9, a lost node) leaves its partitions to the
            # others within seconds, not Faust's minute: Kafka's classic 10 s session.
            # The heartbeats run in the consumer's own thread, so a long batch never
            # makes a live worker look dead.
            broker_session_timeout=10.0,
            broker_heartbeat_interval=3.0,
            topic_replication_factor=1,
        )
        self.app = app
        self.windows = app.Table(
            "kubeopera-windows", partitions=options.metrics_partitions, value_type=bytes
        )
        topic = {
            t: app.topic(t.value, key_serializer="raw", value_serializer="raw")
            for t in (Topic.PRICES, Topic.OBJECTS, Topic.EVENTS, Topic.METRICS)
        }
        self.deadletter_topic = app.topic(
            Topic.DEADLETTER.value, key_serializer="raw", value_serializer="raw"
        )
        app.agent(topic[Topic.PRICES], name="prices")(self._prices_agent)
        app.agent(topic[Topic.OBJECTS], name="objects")(self._objects_agent)
        app.agent(topic[Topic.EVENTS], name="events")(self._events_agent)
        app.agent(topic[Topic.METRICS], name="metrics")(self._metrics_agent)
        app.timer(interval=options.sweep_seconds)(self._sweep)
        app.task(self._read_reference)

    def changelog_topics(self) -> dict[str, int]:
        """Changelog topic -> partitions. Created before the worker starts: Faust declares
        them itself, but an agent can write its table before the new topic's metadata
        arrives, and Faust then refuses the write (PartitionsMismatch)."""
        topic = self.windows.changelog_topic.get_topic_name()
        return {topic: self.windows.partitions or 1}

    # -- agents ---------------------------------------------------------------------

    async def _prices_agent(self, stream: StreamT[bytes]) -> None:
        """Resolved prices into ``node_prices``; the reference reader keeps them as state."""
        async for events in self._batches(stream):
            messages, letters = _decode_events(events)
            resolved = [self.pricer.resolve(m) for _, m in messages if isinstance(m, NodePrice)]
            await self._finish(
                stream, events, [("node_prices", pricing_frame(resolved), False)], letters
            )

    async def _objects_agent(self, stream: StreamT[bytes]) -> None:
        async for events in self._batches(stream):
            messages, letters = _decode_events(events)
            changes = [change for _, change in messages if isinstance(change, ObjectChange)]
            await self._finish(
                stream, events, [("raw_objects", objects_frame(changes), False)], letters
            )

    async def _events_agent(self, stream: StreamT[bytes]) -> None:
        async for events in self._batches(stream):
            messages, letters = _decode_events(events)
            kube_events = [m for _, m in messages if isinstance(m, KubeEvent)]
            await self._finish(
                stream, events, [("raw_events", events_frame(kube_events), False)], letters
            )

    async def _metrics_agent(self, stream: StreamT[bytes]) -> None:
        async for events in self._batches(stream):
            messages, letters = _decode_events(events)
            for event in events:
                self._partition_events[event.message.partition] = event
            await self.reader.caught_up()  # the pods and prices published before
            await self._await_prices({(m.cluster, m.node) for _, m in messages})
            self._index_open_windows()
            touched, usable = self._screen(messages, letters)
            samples, scrapes = samples_frame(usable), scrapes_frame(usable)
            if usable:
                allocated = allocate_exact(
                    samples,
                    scrapes,
                    self.reference.pricing(),
                    self.reference.versions(),
                    self.pricer.defaults,
                )
                for (cluster, node), rows in allocated.partition_by(
                    ["cluster", "node"], as_dict=True
                ).items():
                    touched[f"{cluster}/{node}"][1].add(rows)
            touched.update(self._stale_windows(set(touched)))
            closed = [(key, *self._close(key, windows)) for key, (_, windows) in touched.items()]
            inserts: list[Insert] = [
                ("raw_metrics", samples, False),
                ("raw_node_metrics", scrapes, False),
                *self._cost_inserts({key: rows for key, rows, _ in closed}),
            ]
            await self._write(inserts, letters)
            for key, _, state in closed:  # after ClickHouse has the rows
                with _as_event(touched[key][0]):
                    self.windows[key] = state
            await self._ack(stream, events)
            self._forget_reference()

    def _screen(
        self, messages: list[tuple[EventT[bytes], Any]], letters: list[DeadLetter]
    ) -> tuple[dict[str, tuple[EventT[bytes], HourlyWindows]], list[MetricBatch]]:
        """Each node's windows (with the node's latest event, under which its state is
        written) and the scrapes to allocate; late ones become dead letters.

        A scrape is late once its partition's watermark, as of the message before it in
        partition order, has closed its hour, whatever node it is from and however the
        partition was cut into batches; so an hour closes for all of a partition's nodes
        together, as one block that a replay reproduces. A scrape at or below the offset
        the node's windows last admitted is a replay after a restart: a duplicate, even
        when the partition has moved hours past it while catching up."""
        touched: dict[str, tuple[EventT[bytes], HourlyWindows]] = {}
        usable: list[MetricBatch] = []
        for event, batch in messages:
            assert isinstance(batch, MetricBatch)
            key, partition = batch.key(), self._partition_of(batch.key())
            windows = touched[key][1] if key in touched else self._windows_of(key)
            touched[key] = (event, windows)
            use, reason = windows.screen(batch, self._closed_until(partition), event.message.offset)
            if reason:
                letters.append(_rejected(event, reason))
            if use:
                usable.append(batch)
            self._advance(partition, windows.watermark)
        return touched, usable

    def _closed_until(self, partition: int) -> datetime | None:
        """The hours before this are closed for every node of the partition."""
        watermark = self._watermarks.get(partition)
        return hour_of(watermark - self.options.allowed_lateness) if watermark else None

    def _close(self, key: str, windows: HourlyWindows) -> tuple[pl.DataFrame, bytes]:
        """The node's hours its partition's watermark has passed, and its state after."""
        rows = windows.close_due(self._watermarks.get(self._partition_of(key)))
        self._note_open(key, windows)
        return rows, windows.to_bytes()

    # -- shared steps ---------------------------------------------------------------

    async def _batches(self, stream: StreamT[bytes]) -> AsyncIterator[list[EventT[bytes]]]:
        """Batches of events, not acked until we ack them (``noack_take`` yields the events
        themselves, though it is typed as yielding values)."""
        batches = cast(Stream[bytes], stream).noack_take(
            self.options.batch_size, self.options.batch_seconds
        )
        async for batch in batches:
            yield cast(list[EventT[bytes]], list(batch))

    async def _finish(
        self,
        stream: StreamT[bytes],
        events: list[EventT[bytes]],
        inserts: list[Insert],
        letters: list[DeadLetter],
    ) -> None:
        await self._write(inserts, letters)
        await self._ack(stream, events)

    async def _write(self, inserts: list[Insert], letters: list[DeadLetter]) -> None:
        """Write in a thread (retrying while ClickHouse is away) so heartbeats go on."""
        for letter in letters:
            await self.deadletter_topic.send(
                key=letter.source_topic.encode(), value=letter.model_dump_json().encode()
            )
        inserts = [*inserts, ("deadletter", deadletters_frame(letters), False)]
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._writer, self._insert_all, inserts)

    def _windows_of(self, key: str) -> HourlyWindows:
        saved = self.windows.get(key)
        if saved:
            return HourlyWindows.from_bytes(saved, self.options.allowed_lateness)
        return HourlyWindows(self.options.allowed_lateness)

    def _note_open(self, key: str, windows: HourlyWindows) -> None:
        earliest = windows.earliest_open()
        if earliest is None:
            self._open_since.pop(key, None)
        else:
            self._open_since[key] = earliest

    def _stale_windows(
        self, active: set[str]
    ) -> Iterator[tuple[str, tuple[EventT[bytes], HourlyWindows]]]:
        """Windows of nodes absent from this batch whose hours their partition's watermark
        has passed: a node that stopped reporting must not keep its last hour open forever.
        (A partition's scrapes arrive in time order; partitions do not keep pace with
        each other, so one partition's clock never closes another's windows.)

        A table write goes to the changelog partition of the current event, so each is
        written under the latest event of the node's own partition."""
        for key, earliest in sorted(self._open_since.items()):
            partition = self._partition_of(key)
            watermark = self._watermarks.get(partition)
            event = self._partition_events.get(partition)
            if key in active or watermark is None or event is None:
                continue
            if earliest < hour_of(watermark - self.options.allowed_lateness):
                yield key, (event, self._windows_of(key))

    def _index_open_windows(self) -> None:
        """Learn which nodes of the owned partitions have open windows: after a start, and
        again after each rebalance for the partitions gained. Partitions lost are
        forgotten; the table's standby copies of them are another worker's to close."""
        owned = frozenset(
            tp.partition
            for tp in self.app.assignor.assigned_actives()
            if tp.topic == Topic.METRICS.value
        )
        if owned == self._indexed_for:
            return
        gained = owned - self._indexed_for
        self._open_since = {
            k: t for k, t in self._open_since.items() if self._partition_of(k) in owned
        }
        self._watermarks = {p: w for p, w in self._watermarks.items() if p in owned}
        self._partition_events = {p: e for p, e in self._partition_events.items() if p in owned}
        for key, saved in self.windows.items():
            partition = self._partition_of(key)
            if partition in gained:
                windows = HourlyWindows.from_bytes(saved, self.options.allowed_lateness)
                self._note_open(key, windows)
                self._advance(partition, windows.watermark)
        self._indexed_for = owned

    def _advance(self, partition: int, watermark: datetime | None) -> None:
        """A partition's watermark is the latest window end of any of its nodes."""
        if watermark is not None and watermark > self._watermarks.get(partition, watermark):
            self._watermarks[partition] = watermark
        elif watermark is not None:
            self._watermarks.setdefault(partition, watermark)

    async def _sweep(self) -> None:
        """Close windows that are due although no event of their partition arrives any
        more (the stream ended, or the worker restarted after its last batch). The rows
        go to ClickHouse with their content tokens; the table keeps the window open, so
        a later restart closes it again, identically, and ClickHouse skips it."""
        if not self.app.tables.recovery.completed.is_set():  # type: ignore[attr-defined]
            return  # the windows table is not restored yet
        self._index_open_windows()
        closed = {}
        for key, earliest in sorted(self._open_since.items()):
            watermark = self._watermarks.get(self._partition_of(key))
            if watermark and earliest < hour_of(watermark - self.options.allowed_lateness):
                closed[key] = self._windows_of(key).close_due(watermark)
                del self._open_since[key]
        if closed:
            await self._write(list(self._cost_inserts(closed)), [])

    def _cost_inserts(self, closed: dict[str, pl.DataFrame]) -> Iterator[Insert]:
        """One deduplicated block per partition-hour (``closed`` maps node keys to their
        closed rows): an hour closes for all of a partition's nodes in one batch, so a
        replay re-emits the same block, with the same content token, which ClickHouse
        skips. A few blocks per hour, not one per node: ClickHouse wants few, large
        inserts."""
        by_partition: dict[int, list[pl.DataFrame]] = {}
        for key in sorted(closed):
            if closed[key].height:
                by_partition.setdefault(self._partition_of(key), []).append(closed[key])
        for partition in sorted(by_partition):
            rows = pl.concat(by_partition[partition])
            for block in rows.partition_by("window_start", maintain_order=True):
                yield "cost_allocation_hourly", block, True

    def _partition_of(self, key: str) -> int:
        """The metrics partition of a node key (Kafka's default murmur2 partitioner)."""
        hashed: int = murmur2(key.encode())
        return (hashed & 0x7FFFFFFF) % self.options.metrics_partitions

    async def _await_prices(self, nodes: set[tuple[str, str]]) -> None:
        """Hold a batch until its nodes are priced: prices and metrics arrive on separate
        topics, and a node's first scrapes may overtake its price facts. After
        ``price_wait`` the batch goes on: a node no fact prices costs OpenCost's default
        unit prices."""
        deadline = asyncio.get_running_loop().time() + self.options.price_wait.total_seconds()
        while not all(self.reference.priced(*node) for node in nodes):
            if asyncio.get_running_loop().time() > deadline:
                return
            await asyncio.sleep(0.2)

    async def _ack(self, stream: StreamT[bytes], events: list[EventT[bytes]]) -> None:
        """Ack only once the batch's table changes are in their changelogs: Faust may
        commit an acked offset before its producer has sent the changelog records, and a
        crash then would lose state that no replay restores."""
        await self.app.producer.flush()
        for event in events:
            await stream.ack(event)

    def _insert_all(self, inserts: list[Insert]) -> None:
        for table, rows, deduplicate in inserts:
            self.store.insert(table, rows, deduplicate=deduplicate)

    # -- reference data ---------------------------------------------------------------

    async def _read_reference(self) -> None:
        await self.reader.run()

    def _apply_reference(self, records: list[ConsumerRecord]) -> None:
        """Prices, pods and namespaces into the reference; what cannot be read is skipped
        here (the group's agents dead-letter it), as are objects the costs do not need."""
        decoded = [
            decode(RawMessage(topic=r.topic, value=r.value or b""))
            for r in records
            if r.topic != Topic.OBJECTS.value or _object_kind(r.key) in ("Pod", "Namespace")
        ]
        self.reference.apply_prices(m for m in decoded if isinstance(m, NodePrice))
        self.reference.apply_changes(m for m in decoded if isinstance(m, ObjectChange))

    def _forget_reference(self) -> None:
        """Reference data older than the slowest owned partition's closed hours, less the
        retention a rebalance may replay from, is pruned."""
        if self._watermarks:
            slowest = min(self._watermarks.values())
            closed = hour_of(slowest - self.options.allowed_lateness)
            self.reference.forget_before(closed - self.options.reference_retention)


def _decode_events(
    events: list[EventT[bytes]],
) -> tuple[list[tuple[EventT[bytes], Any]], list[DeadLetter]]:
    messages, letters = [], []
    for event in events:
        decoded = decode(_raw(event))
        if isinstance(decoded, DeadLetter):
            letters.append(decoded)
        else:
            messages.append((event, decoded))
    return messages, letters


def _raw(event: EventT[bytes]) -> RawMessage:
    message = event.message
    return RawMessage(
        topic=message.topic,
        value=bytes(message.value or b""),
        key=(message.key or b"").decode("utf-8", errors="replace"),
        partition=message.partition,
        offset=message.offset,
    )


def _rejected(event: EventT[bytes], reason: str) -> DeadLetter:
    return dead_letter(_raw(event), reason)


def _credentials(security: dict[str, Any]) -> CredentialsT | None:
    """aiokafka's security options as Faust's credentials (which it maps back)."""
    protocol = security.get("security_protocol", "PLAINTEXT")
    if protocol.startswith("SASL"):
        return faust.SASLCredentials(
            username=security.get("sasl_plain_username"),
            password=security.get("sasl_plain_password"),
            mechanism=security.get("sasl_mechanism"),
            ssl_context=security.get("ssl_context"),
        )
    if protocol == "SSL":
        return faust.SSLCredentials(security["ssl_context"])
    return None


def _object_kind(key: bytes | None) -> str:
    """The kind in an ``objects`` key (cluster/kind/namespace/name), without decoding."""
    parts = (key or b"").split(b"/", 2)
    return parts[1].decode("utf-8", errors="replace") if len(parts) > 2 else ""


@contextmanager
def _as_event(event: EventT[bytes]) -> Iterator[None]:
    """Make ``event`` the current one, so a table write goes to its partition (#497)."""
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)
