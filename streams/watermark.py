"""The partition clock: one source partition's event-time watermark and offset high-water.

Kafka orders messages within a partition, not across partitions, so event time is kept
per partition: a partition's watermark is the latest event time (``event_time()``, UTC)
any of its messages has carried, and a message is judged against the watermark as of
the message before it, so the verdict never depends on how the partition was cut into
batches. The clock also remembers the highest offset processed: a restart resumes from
the last committed offset, so a message at or below it is a replay, a duplicate however
far the watermark has moved since.

Both engines keep one clock per processor and source partition (the embedded engine has
one partition per topic, offsets from the file it replays, or none) and save it with the
processor's state, so that the two are restored together.

>>> from datetime import UTC, datetime
>>> clock = PartitionClock()
>>> clock.observe(datetime(2026, 1, 1, 0, 10, tzinfo=UTC), offset=7) is None
True
>>> clock.observe(datetime(2026, 1, 1, 0, 5, tzinfo=UTC), offset=8).isoformat()
'2026-01-01T00:10:00+00:00'
>>> clock.watermark.isoformat()  # an older event never moves it back
'2026-01-01T00:10:00+00:00'
>>> clock.replayed(8), clock.replayed(9), clock.replayed(-1)
(True, False, False)
>>> clock.skip(9)  # a message that could not be read: no event time, but processed
>>> clock.replayed(9), clock.watermark.isoformat()
(True, '2026-01-01T00:10:00+00:00')
>>> clock.advance(datetime(2026, 1, 1, 1, 0, tzinfo=UTC))  # idle: event time goes on
True
>>> clock.advance(datetime(2026, 1, 1, 0, 30, tzinfo=UTC)), clock.watermark.isoformat()
(False, '2026-01-01T01:00:00+00:00')
>>> PartitionClock.from_dict(clock.to_dict()) == clock
True

A partition that has gone quiet (read to its end, no message for a while) would keep
its last hour open for ever: no later message moves its watermark. The Kafka engine then
moves it without a message (``advance``): by the allowed lateness (nothing later is
coming, so the last hour closes), but never past the wall clock less the quiet time, as
Apache Beam's Kafka source bounds an idle partition's watermark (live data's current
hour stays open until its end has passed). A later message older than the new watermark
is judged as any other: late if its hour closed.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

END_OF_INPUT = datetime.max.replace(tzinfo=UTC)
"""The watermark at the end of a finite input: every window is due."""


@dataclass
class PartitionClock:
    watermark: datetime | None = None
    offset: int = -1  # the highest offset processed; -1: none, or a source without offsets

    def replayed(self, offset: int) -> bool:
        """Whether a message at ``offset`` was processed before (offsets ≥ 0 only: a
        source without offsets, such as the simulator, never replays)."""
        return 0 <= offset <= self.offset

    def observe(self, event_time: datetime, offset: int = -1) -> datetime | None:
        """Advance past one message; returns the watermark as of the message before it
        (``None`` for the partition's first message)."""
        before = self.watermark
        if before is None or event_time > before:
            self.watermark = event_time
        self.offset = max(self.offset, offset)
        return before

    def advance(self, instant: datetime) -> bool:
        """Move the watermark to ``instant`` (UTC) without a message, if that is later
        (an idle partition); returns whether it moved. Never before a first message."""
        if self.watermark is None or instant <= self.watermark:
            return False
        self.watermark = instant
        return True

    def skip(self, offset: int) -> None:
        """Advance past a message that carries no event time (one that could not be
        read), so that its redelivery is a replay too."""
        self.offset = max(self.offset, offset)

    def to_dict(self) -> dict[str, Any]:
        return {
            "watermark": self.watermark.isoformat() if self.watermark else None,
            "offset": self.offset,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "PartitionClock":
        watermark = data["watermark"]
        return cls(datetime.fromisoformat(watermark) if watermark else None, data["offset"])
