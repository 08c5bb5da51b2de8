"""Whole topics, read from their start by every worker, outside any consumer group.

Reference data (node prices, pods) must be complete in every worker, whatever
partitions of ``metrics`` it owns. Faust's global tables promise that, but with two
workers in a group they stop applying changes of partitions a worker is not active for
(faust-streaming #212, reproduced here: the second worker dead-lettered metrics as
unpriced). A plain consumer assigned every partition, Kafka Streams' GlobalKTable
model, has no such gap; the compacted topics are their own changelog.
"""

import asyncio
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

Apply = Callable[[list[ConsumerRecord]], None]


class TopicReader:
    """Reads ``topics`` from the beginning and hands each fetched batch to ``apply``."""

    def __init__(self, bootstrap: str, topics: list[str], apply: Apply, **security: Any) -> None:
        self.bootstrap = bootstrap
        self.topics = topics
        self.apply = apply
        self.security = security  # aiokafka's security_protocol, sasl_*, ssl_context
        self._consumer: AIOKafkaConsumer | None = None
        self._ready = asyncio.Event()

    async def run(self) -> None:
        """Read until cancelled (the worker runs this as a task)."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            client_id="kubeopera-reference",
            # A broker answers a connection's requests in order: an idle long-poll fetch
            # would hold ``caught_up``'s offsets request for up to its wait.
            fetch_max_wait_ms=50,
            **self.security,
        )
        await consumer.start()
        try:
            consumer.subscribe(self.topics)  # without a group: every partition is ours
            self._consumer = consumer
            while True:
                fetched = await consumer.getmany(timeout_ms=200, max_records=10_000)
                for records in fetched.values():  # applied before the next await:
                    self.apply(records)  # a position reached is a position applied
                if self._assigned_everything(consumer):
                    self._ready.set()
        finally:
            await consumer.stop()

    def _assigned_everything(self, consumer: AIOKafkaConsumer) -> bool:
        """Whether every partition of every topic is assigned: the metadata of one topic
        can arrive before another's, and ``caught_up`` must not answer for a part
        (a worker then costed scrapes with the first of a node's prices only, and its
        restart, reading them all, wrote the same hour again with other costs)."""
        assigned = consumer.assignment()
        for topic in self.topics:
            partitions = consumer.partitions_for_topic(topic)
            if not partitions or any(TopicPartition(topic, p) not in assigned for p in partitions):
                return False
        return True

    async def caught_up(self) -> None:
        """Return once everything the topics held when called has been applied (every
        partition of every topic)."""
        await self._ready.wait()
        assert self._consumer is not None
        ends = await self._consumer.end_offsets(list(self._consumer.assignment()))
        for partition, end in ends.items():
            while await self._consumer.position(partition) < end:
                await asyncio.sleep(0.05)
