"""The Kafka engine: the pipeline as a Faust app on the topics.

One task per consumed topic takes batches of events straight from the topic's channel,
runs them through ``streams.pipeline``, publishes dead letters and findings, writes the
output through the sink port (in a thread, so heartbeats go on), saves the slots the
batch changed to a changelog-backed table, and only then acks its events: an offset is
committed only after the sink acknowledged what it carried and the state that reflects
it is in its changelog. So a restart loses nothing, and a replay is recognised by its
offset (the slot's clock) and duplicates nothing.

Why not a Faust ``Stream`` (``noack_take``): a stream skips the events it receives
while a rebalance is under way (fetched in an older generation, or while the flow is
stopped) and acks them unprocessed. Faust then commits past them whenever its commit
comes before its seek back to the committed offset, and it never seeks a partition
that has no committed offset yet (aiokafka seeks only offsets above 0): events were
lost (a second worker joining wrote an hour short of scrapes) or left a hole no ack
ever filled (a worker killed before its first commit, restarted, never drained). Here
such events are dropped without an ack, so the commit stops before them and the next
owner, or this worker after its seek, reads them again. A rebalance waits for the batch
in flight and commits it before the partitions move.

State: each stateful processor's slot of a partition is saved under
``processor/topic/partition`` in the ``kubeopera-state`` table, written as an event of
that partition, so its changelog partition is the source partition's and it moves with
it in a rebalance. Stateful processors therefore consume topics with the table's
partition count. Reference data (node prices, pods, namespaces): every worker reads the
whole ``prices`` and ``objects`` topics itself (``TopicReader``), because a node's metrics
and its pods travel on different partitions.

Faust cannot write a table outside a stream's event (faust-streaming #497: the table
needs the current event to pick its changelog partition); the seam here sets the current
event explicitly for each write (``_as_event``).
"""

import asyncio
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import faust
from aiohttp import web
from aiokafka import ConsumerRecord
from faust.streams import _current_event
from faust.transport.consumer import Consumer
from faust.types import TP, ChannelT, EventT
from faust.types.auth import CredentialsT
from mode.types.signals import BaseSignalT

from kubeopera.models import TOPIC_SETTINGS, Topic, message_key
from kubeopera.streams.decode import RawMessage, decode
from kubeopera.streams.embedded import RunStats
from kubeopera.streams.offset_order import OffsetOrder
from kubeopera.streams.pipeline import Pipeline, Slot, decode_all
from kubeopera.streams.pricing import Pricer
from kubeopera.streams.processor import Envelope, Output, Processor
from kubeopera.streams.reference import Reference
from kubeopera.streams.sink import Sink, write
from kubeopera.streams.topic_reader import TopicReader

STATE_TABLE = "kubeopera-state"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FaustOptions:
    bootstrap: str
    data_dir: Path  # Faust's local files
    app_id: str = "kubeopera-worker"
    security: dict[str, Any] = field(default_factory=dict)  # aiokafka's security options
    batch_size: int = 2_000
    batch_seconds: float = 1.0
    team_label: str = "team"
    state_partitions: int = TOPIC_SETTINGS[Topic.METRICS].partitions
    reference_wait: timedelta = timedelta(seconds=30)
    # How long superseded reference data (pod versions, deleted pods, node prices) stays
    # known past the slowest owned slot's horizon: a partition gained in a rebalance may
    # replay from that far back.
    reference_retention: timedelta = timedelta(hours=6)
    progress_every: float = 60.0  # seconds between progress lines
    # A partition read to its end that has taken no message for ``idle_after`` is idle:
    # its watermark moves ``idle_advance`` ahead (the allowed lateness: nothing later is
    # coming, so the last hour closes), but never past now less ``idle_after`` (live
    # data's current hour stays open until its end has passed).
    idle_after: timedelta = timedelta(seconds=30)
    idle_advance: timedelta = timedelta(minutes=10)
    health_port: int | None = None  # HTTP /healthz and /readyz for a Deployment's probes


class FaustEngine:
    """The Faust app, its state table and agents, writing through one sink."""

    def __init__(
        self,
        options: FaustOptions,
        sink: Sink,
        processors: Sequence[Processor[Any]],
        pricer: Pricer | None = None,
        report: Callable[[str], None] = log.warning,
    ) -> None:
        self.options = options
        self.sink = sink
        self.report = report  # what a person running the worker reads: ready, progress
        self.stats = RunStats()
        self.rows_written = 0
        self.reference = Reference(pricer or Pricer(), options.team_label)
        self.reader = TopicReader(
            options.bootstrap,
            [Topic.PRICES.value, Topic.OBJECTS.value, Topic.BASELINES.value, Topic.BUDGETS.value],
            self._apply_reference,
            **options.security,
        )
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="sink")
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
        self._topics: dict[Topic, faust.TopicT] = {}
        self.state = app.Table(STATE_TABLE, partitions=options.state_partitions, value_type=bytes)
        self.pipeline = Pipeline(
            processors,
            self.reference,
            feeds_reference=False,
            reference_retention=options.reference_retention,
            restore=self.state.get,
            restore_entries=self._saved_entries,
        )
        _check_copartitioned(processors, options.state_partitions)
        self.deadletter_topic = self._topic(Topic.DEADLETTER)
        self.findings_topic = self._topic(Topic.FINDINGS)
        self._busy = 0  # batches in flight
        self._idle = asyncio.Event()
        self._idle.set()
        self._assigned = asyncio.Event()  # clear from a revocation to the next assignment
        self._order: OffsetOrder[EventT[bytes], TP] = OffsetOrder(
            lambda event: (event.message.tp, event.message.offset),
            lambda tp: TOPIC_SETTINGS[Topic(tp.topic)].compacted,
            lambda tp: self.pipeline.resume_offset(Topic(tp.topic), tp.partition),
        )
        for topic in sorted(self.pipeline.topics()):
            # Iterating a topic subscribes the worker to it (before Faust subscribes).
            app.task(self._consumer(aiter(self._topic(topic))))
        app.on_partitions_revoked.connect(self._on_partitions_revoked)
        app.on_partitions_assigned.connect(self._on_partitions_assigned)
        app.task(self.reader.run)
        app.timer(options.progress_every)(self._progress)
        app.timer(min(5.0, options.idle_after.total_seconds()))(self._advance_idle)
        self._quiet_since: dict[TP, tuple[float, EventT[bytes]]] = {}  # last message taken
        if options.health_port is not None:
            app.task(self._serve_health)

    def _saved_entries(self, prefix: str) -> list[tuple[str, bytes]]:
        """The state table's entries under ``prefix`` (a slot's), without it."""
        return [(k[len(prefix) :], v) for k, v in self.state.items() if k.startswith(prefix)]

    def changelog_topics(self) -> dict[str, int]:
        """Changelog topic -> partitions. Created before the worker starts: Faust declares
        them itself, but an agent can write its table before the new topic's metadata
        arrives, and Faust then refuses the write (PartitionsMismatch)."""
        return {self.state.changelog_topic.get_topic_name(): self.state.partitions or 1}

    def _topic(self, topic: Topic) -> faust.TopicT:
        if topic not in self._topics:
            self._topics[topic] = self.app.topic(
                topic.value, key_serializer="raw", value_serializer="raw"
            )
        return self._topics[topic]

    def _consumer(self, channel: ChannelT[bytes]) -> Callable[[], Awaitable[None]]:
        """The task that consumes one topic's channel batch by batch. No batch starts
        while partitions are being revoked and reassigned; a batch is in flight from its
        first event until its ack."""

        async def consume() -> None:
            queue = channel.queue
            while True:
                first = await queue.get()
                await self._assigned.wait()
                with self._in_flight():
                    events, holes = self._order.take(self._current(await self._batch(first, queue)))
                    if holes:
                        await self._rewind(holes)
                    if events:
                        await self._process(events)

        return consume

    async def _batch(
        self, first: EventT[bytes], queue: asyncio.Queue[EventT[bytes]]
    ) -> list[EventT[bytes]]:
        """``first`` and what follows it: up to ``batch_size`` events, or those that
        arrived within ``batch_seconds`` of it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.options.batch_seconds
        batch = [first]
        while len(batch) < self.options.batch_size:
            if not queue.empty():
                batch.append(queue.get_nowait())
                continue
            try:  # a queue's get is cancelled without losing an item
                batch.append(await asyncio.wait_for(queue.get(), deadline - loop.time()))
            except TimeoutError:
                break
        return batch

    @contextmanager
    def _in_flight(self) -> Iterator[None]:
        """Count a batch in flight; ``_idle`` is set whenever none is."""
        self._busy += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._busy -= 1
            if not self._busy:
                self._idle.set()

    def _current(self, events: list[EventT[bytes]]) -> list[EventT[bytes]]:
        """The events fetched in the group's current generation. The others are dropped
        unacked: each partition was sought back to its committed offset (or beginning)
        on assignment (``_on_partitions_assigned``), so they are read again, here or by
        the partition's new owner."""
        generation = self.app.consumer_generation_id
        return [e for e in events if e.message.generation_id == generation]

    async def _rewind(self, partitions: set[TP]) -> None:
        """Read ``partitions`` again from where the pipeline stands, past a hole
        (``streams.offset_order``); Faust forgets what it read (``perform_seek``: every
        partition to its committed offset, from which replays are recognised); the seeks
        run in the consumer's thread."""
        for tp in partitions:
            log.warning(
                "%s[%d]: offsets from %d never arrived; reading them again",
                tp.topic,
                tp.partition,
                self._order.next[tp],
            )
        consumer = cast(Consumer, self.app.consumer)
        for tp in partitions:
            # Faust took the hole for offsets that do not exist (a "gap", counted as acked);
            # they do, and acked again they would stall its commits (duplicate acks break
            # its runs of consecutive offsets): forget it, as Faust does on revocation.
            consumer._gap.pop(tp, None)
        await consumer.perform_seek()
        await consumer.seek_wait({tp: self._order.next[tp] for tp in partitions})
        self._order.sought(partitions)

    async def _process(self, events: list[EventT[bytes]]) -> None:
        began = time.perf_counter()
        envelopes, letters = decode_all(_raw(event) for event in events)
        await self.reader.caught_up()  # the pods and prices published before
        await self._await_reference(envelopes)
        ready = time.perf_counter()
        output, touched = self.pipeline.run(envelopes, letters)
        ran = time.perf_counter()
        await self._commit(events, output, self._snapshot(touched, events))
        self.stats.batches += 1
        self.stats.messages += len(events)
        self.stats.dead_letters += len(output.dead_letters)
        self.stats.duplicates += output.duplicates
        self.rows_written += sum(rows.height for _, rows in output.rows)
        now = asyncio.get_running_loop().time()
        self._quiet_since.update({e.message.tp: (now, e) for e in events})
        log.info(
            "acked %s: %d events, decoded and referenced in %.3f s, run %.3f s, "
            "written, saved and acked %.3f s",
            _offsets(events),
            len(events),
            ready - began,
            ran - ready,
            time.perf_counter() - ran,
        )

    async def _commit(
        self,
        events: list[EventT[bytes]],
        output: Output,
        snapshot: list[tuple[str, EventT[bytes], bytes | None]],
    ) -> None:
        """Write the batch's output, then save its slots, then ack its events."""
        await self._write(output)
        for key, event, saved in snapshot:  # after the sink has the rows
            with _as_event(event):
                if saved is None:
                    self.state.pop(key, None)
                else:
                    self.state[key] = saved
        await self._ack(events)

    async def _await_reference(self, envelopes: list[Envelope]) -> None:
        """Hold a batch until the reference data its messages need has arrived (a node's
        first scrapes may overtake its price facts). After ``reference_wait`` the batch
        goes on: a node no fact prices costs OpenCost's default unit prices."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.options.reference_wait.total_seconds()
        while not all(self.reference.ready(e.message) for e in envelopes):
            if loop.time() > deadline:
                return
            await asyncio.sleep(0.2)

    async def _on_partitions_revoked(
        self, app: Any, /, *args: Any, signal: BaseSignalT[Any], **kwargs: Any
    ) -> None:
        """Before partitions move (Faust's signal: the app, then the set of partitions):
        take no new batch, finish the one in flight, and commit what it acked (Faust
        committed before this signal). Then drop the slots, so that each resumes from
        where its last owner saved it."""
        self._assigned.clear()
        await self._idle.wait()
        await self.app.consumer.commit()
        self._forget(args[0])

    async def _on_partitions_assigned(
        self, app: Any, /, *args: Any, signal: BaseSignalT[Any], **kwargs: Any
    ) -> None:
        """Partitions assigned: every input partition is sought to its committed offset,
        or to its beginning when it has none (aiokafka seeks only offsets above 0, and
        the events of an older generation dropped meanwhile must be read again); their
        slots are read again from the state table."""
        consumer = cast(Consumer, self.app.consumer)
        committed = await consumer.seek_to_committed()
        inputs = self._inputs(args[0])
        uncommitted = [tp for tp in inputs if not committed.get(tp)]
        earliest = await consumer.earliest_offsets(*uncommitted) if uncommitted else {}
        if uncommitted:  # in the consumer's thread (``seek`` races its fetcher: KeyError)
            await consumer.seek_wait({tp: earliest[tp] for tp in uncommitted})
            await consumer.perform_seek()  # and Faust forgets what it read there
        self._forget(args[0])
        self._order.start()
        self._assigned.set()
        self.report(
            f"ready: broker {self.options.bootstrap}, group {self.options.app_id}, "
            f"partitions {_partitions(inputs)}, store {self.sink.describe()}"
        )

    async def _advance_idle(self) -> None:
        """Slots of processors that compare their state with reference data that changed
        are brought up to date (``Pipeline.stale``). Partitions read to their end that
        have taken no message for ``idle_after``:
        their watermark moves ``idle_advance`` ahead, never past now less ``idle_after``
        (``Pipeline.advance``), and what that closes is written and saved as a batch's
        output is. Not while a batch is in flight or the partitions move."""
        if not self._assigned.is_set() or self._busy:
            return
        if self.pipeline.stale():  # reference data changed with no batch to notice it
            with self._in_flight():
                output, touched = self.pipeline.run([])
                await self._commit([], output, self._snapshot(touched, []))
        consumer = cast(Consumer, self.app.consumer)
        quiet = self.options.idle_after.total_seconds()
        now = asyncio.get_running_loop().time()
        idle = [
            (tp, last)
            for tp, (since, last) in self._quiet_since.items()
            if now - since >= quiet and consumer.highwater(tp) == self._order.next.get(tp)
        ]
        if not idle:
            return
        limit = datetime.now(UTC) - self.options.idle_after
        with self._in_flight():
            for tp, last in idle:
                output, touched = self.pipeline.advance(
                    Topic(tp.topic), tp.partition, self.options.idle_advance, limit
                )
                if touched:  # a watermark moved: write what it closed, save the slots
                    await self._commit([], output, self._snapshot(touched, [last]))
                self._quiet_since[tp] = (now, last)  # again after another quiet spell
                if output.rows:
                    log.info("%s[%d] idle: closed what was due", tp.topic, tp.partition)

    async def _progress(self) -> None:
        """One line every ``progress_every`` seconds: what is left to read and what was
        done since the start."""
        consumer = cast(Consumer, self.app.consumer)
        lag = sum(max(0, (consumer.highwater(tp) or 0) - n) for tp, n in self._order.next.items())
        self.report(
            f"progress: lag {lag:,} messages; {self.stats.messages:,} messages in "
            f"{self.stats.batches:,} batches, {self.rows_written:,} rows written, "
            f"{self.stats.dead_letters:,} dead letters, {self.stats.duplicates:,} duplicates"
        )

    async def _serve_health(self) -> None:
        """``GET /healthz``: 200 while the worker runs (liveness); ``GET /readyz``: 200
        once it holds its partitions, 503 before and during a rebalance (readiness)."""

        async def healthz(request: web.Request) -> web.Response:
            return web.Response(text="ok\n")

        async def readyz(request: web.Request) -> web.Response:
            ready = self._assigned.is_set()
            return web.Response(
                text="ready\n" if ready else "rebalancing\n", status=200 if ready else 503
            )

        server = web.Application()
        server.add_routes([web.get("/healthz", healthz), web.get("/readyz", readyz)])
        runner = web.AppRunner(server, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "0.0.0.0", self.options.health_port).start()

    def _forget(self, partitions: set[TP]) -> None:
        for tp in self._inputs(partitions):
            self._quiet_since.pop(tp, None)
            self.pipeline.forget(Topic(tp.topic), {tp.partition})

    def _inputs(self, partitions: set[TP]) -> list[TP]:
        """Those of ``partitions`` that belong to a topic the processors consume."""
        consumed = {t.value for t in self.pipeline.topics()}
        return [tp for tp in partitions if tp.topic in consumed]

    async def _write(self, output: Output) -> None:
        """Dead letters, findings and messages for other processors to their topics;
        everything to the sink, in a thread (retrying while the sink is away) so
        heartbeats go on."""
        for letter in output.dead_letters:
            await self.deadletter_topic.send(
                key=letter.source_topic.encode(), value=letter.model_dump_json().encode()
            )
        for finding in output.findings:
            await self.findings_topic.send(
                key=finding.key().encode(), value=finding.model_dump_json().encode()
            )
        for topic, message in output.messages:
            await self._topic(topic).send(
                key=message_key(message).encode(), value=message.model_dump_json().encode()
            )
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._writer, write, self.sink, output)

    def _snapshot(
        self, touched: list[Slot], events: list[EventT[bytes]]
    ) -> list[tuple[str, EventT[bytes], bytes | None]]:
        """What the batch changed of the stateful slots, as records (``Pipeline.saved``),
        each with the latest event of its slot's partition (the table write goes to that
        event's partition): of the batch, or the last one taken (a slot brought up to
        date with changed reference data). A slot of a partition that has taken no event
        here is not saved: what changed it is reference data, compared again after a
        restart."""
        latest = {(tp.topic, tp.partition): last for tp, (_, last) in self._quiet_since.items()}
        latest.update({(e.message.topic, e.message.partition): e for e in events})
        return [
            (key, latest[where], saved)
            for slot in touched
            if slot.state is not None and (where := (slot.topic.value, slot.partition)) in latest
            for key, saved in self.pipeline.saved(slot)
        ]

    async def _ack(self, events: list[EventT[bytes]]) -> None:
        """Ack only once the batch's table changes are in their changelogs: Faust may
        commit an acked offset before its producer has sent the changelog records, and a
        crash then would lose state that no replay restores."""
        await self.app.producer.flush()
        for event in events:
            event.ack()

    def _apply_reference(self, records: list[ConsumerRecord]) -> None:
        """Prices, baselines, pods, namespaces and the peer groups' leading objects into
        the reference; what cannot be read is skipped here (the agents dead-letter it),
        as are objects the reference does not keep (``Reference.keeps``)."""
        self.reference.apply(
            decode(RawMessage(topic=r.topic, value=r.value or b""))
            for r in records
            if r.topic != Topic.OBJECTS.value or self.reference.keeps(*_cluster_and_kind(r.key))
        )


def _check_copartitioned(processors: Sequence[Processor[Any]], partitions: int) -> None:
    """A stateful processor's slots live in the state table's partition of their source
    partition: its topics must have as many partitions as the table."""
    for processor in processors:
        if processor.new_state() is None:
            continue
        for topic in processor.topics:
            if TOPIC_SETTINGS[topic].partitions != partitions:
                raise ValueError(
                    f"processor {processor.name!r} keeps state but consumes {topic} "
                    f"({TOPIC_SETTINGS[topic].partitions} partitions, the state table "
                    f"{partitions})"
                )


def _partitions(partitions: Sequence[TP]) -> str:
    """``metrics 0-11, prices 0,2``: each topic's partitions, runs shortened."""
    by_topic: dict[str, list[int]] = {}
    for tp in partitions:
        by_topic.setdefault(tp.topic, []).append(tp.partition)
    parts = []
    for topic, numbers in sorted(by_topic.items()):
        numbers.sort()
        runs: list[list[int]] = []
        for n in numbers:
            if runs and n == runs[-1][-1] + 1:
                runs[-1].append(n)
            else:
                runs.append([n])
        text = ",".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs)
        parts.append(f"{topic} {text}")
    return "; ".join(parts) or "none"


def _offsets(events: list[EventT[bytes]]) -> str:
    """``topic[partition] first..last`` for each partition of a batch."""
    spans: dict[tuple[str, int], tuple[int, int]] = {}
    for event in events:
        key, offset = (event.message.topic, event.message.partition), event.message.offset
        spans[key] = (spans.get(key, (offset, offset))[0], offset)
    return ", ".join(f"{t}[{p}] {a}..{b}" for (t, p), (a, b) in sorted(spans.items()))


def _raw(event: EventT[bytes]) -> RawMessage:
    message = event.message
    return RawMessage(
        topic=message.topic,
        value=bytes(message.value or b""),
        key=(message.key or b"").decode("utf-8", errors="replace"),
        partition=message.partition,
        offset=message.offset,
    )


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


def _cluster_and_kind(key: bytes | None) -> tuple[str, str]:
    """The cluster and kind in an ``objects`` key (cluster/kind/namespace/name), without
    decoding the message."""
    parts = (key or b"").split(b"/", 2)
    if len(parts) < 3:
        return "", ""
    return parts[0].decode("utf-8", errors="replace"), parts[1].decode("utf-8", errors="replace")


@contextmanager
def _as_event(event: EventT[bytes]) -> Iterator[None]:
    """Make ``event`` the current one, so a table write goes to its partition (#497)."""
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)
