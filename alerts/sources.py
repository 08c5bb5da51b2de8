"""Where the notifier reads findings: the findings topic, or the store's findings table.

The topic is compacted by fingerprint, so it holds every finding's latest state: the
notifier reads it whole from the beginning at each start, outside any consumer group
(nothing to commit: what was told is in the notification log, ``alerts.records``). A
message that is not a finding becomes a dead letter with the reason.
"""

import time
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaTimeoutError

from kubeopera.alerts.records import stored_findings
from kubeopera.models import DeadLetter, Finding, Topic
from kubeopera.sinks.clickhouse import Store
from kubeopera.streams.decode import RawMessage, decode


class FindingSource(Protocol):
    def poll(self, timeout: float) -> tuple[list[Finding], list[DeadLetter]]:
        """The findings (latest states) read within ``timeout`` seconds, and dead
        letters for what could not be read."""
        ...

    def close(self) -> None: ...


class TopicSource:
    """The findings topic, every partition, from its beginning."""

    def __init__(self, bootstrap: str, wait: float = 30.0, **security: Any) -> None:
        """Raises ``ValueError`` when no broker answers at ``bootstrap``, or the topic
        does not exist within ``wait`` seconds (no worker has created it)."""
        try:
            self.consumer = KafkaConsumer(
                bootstrap_servers=bootstrap,
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                client_id="kubeopera-notifier",
                **security,
            )
            partitions = self.consumer.partitions_for_topic(Topic.FINDINGS.value)
        except KafkaTimeoutError:
            raise ValueError(
                f"no Kafka broker answers at {bootstrap}: start one (kubeopera dev kafka up),"
                " set kafka.bootstrap_servers, or read the store (--source store)"
            ) from None
        deadline = time.monotonic() + wait
        while not partitions:
            if time.monotonic() > deadline:
                self.consumer.close()
                raise ValueError(
                    f"the topic {Topic.FINDINGS.value} does not exist at {bootstrap}: "
                    "start a worker (kubeopera worker) first"
                )
            time.sleep(0.5)
            partitions = self.consumer.partitions_for_topic(Topic.FINDINGS.value)
        assigned = [TopicPartition(Topic.FINDINGS.value, p) for p in sorted(partitions)]
        self.consumer.assign(assigned)
        self.consumer.seek_to_beginning(*assigned)

    def poll(self, timeout: float) -> tuple[list[Finding], list[DeadLetter]]:
        fetched = self.consumer.poll(timeout_ms=int(timeout * 1000), max_records=10_000)
        findings: list[Finding] = []
        letters: list[DeadLetter] = []
        for records in fetched.values():
            for record in records:
                if record.value is None:  # a tombstone: nothing to tell
                    continue
                raw = RawMessage(
                    topic=record.topic,
                    value=record.value,
                    key=(record.key or b"").decode(errors="replace"),
                    partition=record.partition,
                    offset=record.offset,
                )
                decoded = decode(raw)
                if isinstance(decoded, Finding):
                    findings.append(decoded)
                else:
                    assert isinstance(decoded, DeadLetter)
                    letters.append(decoded)
        return findings, letters

    def close(self) -> None:
        self.consumer.close()


class StoreSource:
    """The store's findings (``v_findings``), read again every ``interval``: those open
    and those resolved within ``lookback``."""

    def __init__(
        self,
        store: Store,
        interval: timedelta = timedelta(seconds=5),
        lookback: timedelta = timedelta(days=1),
    ) -> None:
        self.store, self.interval, self.lookback = store, interval, lookback
        self._next = 0.0

    def poll(self, timeout: float) -> tuple[list[Finding], list[DeadLetter]]:
        wait = self._next - time.monotonic()
        if wait > timeout:
            time.sleep(timeout)
            return [], []
        time.sleep(max(0.0, wait))
        self._next = time.monotonic() + self.interval.total_seconds()
        return stored_findings(self.store, datetime.now(UTC) - self.lookback), []

    def close(self) -> None:
        """The store is its opener's to close."""
