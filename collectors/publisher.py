"""Publishing contract messages to Kafka: keyed, idempotent, compressed, bounded.

The producer is idempotent with ``acks=all``, so a retry after a broker failover never
writes a message twice, and it retries for ``delivery_timeout`` before giving up. The
publisher bounds the messages in flight: when the broker is slow or gone, ``publish``
blocks instead of buffering without limit, and resumes when deliveries complete.
"""

import contextlib
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError

from kubeopera.models import Contract, Message, Topic, message_key


@dataclass
class PublishStats:
    sent: int = 0
    failed: int = 0
    last_error: str = ""


class Publisher:
    def __init__(
        self,
        bootstrap: str,
        *,
        client_id: str = "kubeopera-collector",
        max_in_flight: int = 20_000,
        linger_ms: int = 20,
        batch_bytes: int = 512 * 1024,
        delivery_timeout_s: float = 300,
        **security: Any,
    ) -> None:
        self.stats = PublishStats()
        self._max_in_flight = max_in_flight
        self._pending: deque[Any] = deque()
        self._lock = threading.Lock()
        self._producer = KafkaProducer(
            bootstrap_servers=bootstrap,
            client_id=client_id,
            acks="all",
            enable_idempotence=True,
            compression_type="zstd",
            linger_ms=linger_ms,
            batch_size=batch_bytes,
            delivery_timeout_ms=int(delivery_timeout_s * 1000),
            request_timeout_ms=min(30_000, int(delivery_timeout_s * 1000) - linger_ms),
            max_block_ms=int(delivery_timeout_s * 1000),
            retry_backoff_ms=200,
            reconnect_backoff_max_ms=2000,
            **security,
        )

    def publish(self, topic: Topic, message: Contract) -> None:
        """Queue one message; blocks while ``max_in_flight`` messages await delivery."""
        while len(self._pending) >= self._max_in_flight:
            self._settle(self._pending.popleft())
        future = self._producer.send(
            topic.value,
            key=message_key(message).encode(),
            value=message.model_dump_json().encode(),
        )
        future.add_callback(self._delivered)
        future.add_errback(self._failed)
        self._pending.append(future)

    def publish_all(self, messages: Iterable[Message]) -> None:
        for topic, message in messages:
            self.publish(topic, message)

    def flush(self, timeout_s: float | None = None) -> None:
        """Wait until every queued message is delivered or has failed."""
        self._producer.flush(timeout=timeout_s)
        while self._pending:
            self._settle(self._pending.popleft())

    def close(self) -> None:
        """Flush, then close: a clean shutdown loses nothing that was published."""
        self.flush()
        self._producer.close()

    def __enter__(self) -> "Publisher":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _settle(self, future: Any) -> None:
        with contextlib.suppress(KafkaError):  # a failure is counted by the errback
            future.get()

    def _delivered(self, _: Any) -> None:
        with self._lock:
            self.stats.sent += 1

    def _failed(self, error: BaseException) -> None:
        with self._lock:
            self.stats.failed += 1
            self.stats.last_error = str(error)
