"""Event-time hourly windows with allowed lateness.

Cost rows stay open while their hour can still receive data; an hour closes once the
watermark (the latest window end seen) passes its end plus the allowed lateness, and
only then is it written, once. A scrape for a closed hour is late: it is refused with a
reason (the runner dead-letters it), never dropped silently. A scrape seen twice
(at-least-once delivery, a replay after a restart) is counted once: scrapes are
remembered for an hour past their window's close, so a replay is a duplicate, not late.

The state serialises to bytes (``to_bytes``/``from_bytes``) so that a worker can keep it
in a changelog-backed table and resume it after a crash.
"""

import io
import json
from datetime import datetime, timedelta
from typing import Literal

import polars as pl

from kubeopera.models import MetricBatch
from kubeopera.streams.cost import empty_costs, hour_of, sum_by_hour, to_float

HOUR = timedelta(hours=1)
Admission = Literal["new", "duplicate", "late"]


class HourlyWindows:
    def __init__(self, allowed_lateness: timedelta) -> None:
        self.allowed_lateness = allowed_lateness
        self.watermark: datetime | None = None
        self.closed_until: datetime | None = None
        self.duplicates = 0
        self.last_offset = -1  # the highest source offset admitted (one partition per node)
        self._open = empty_costs(exact=True)
        self._seen: set[tuple[str, str, datetime]] = set()

    def admit(
        self, batch: MetricBatch, closed_until: datetime | None = None, offset: int = -1
    ) -> Admission:
        """Whether the scrape is used, was seen already, or came after its hour closed
        (here, or by the wider clock's ``closed_until``).

        ``offset`` is the scrape's offset in its source partition, when it has one: at or
        below the highest admitted, it is a replay (a restart resumes from the last
        committed offset), a duplicate however long ago its hour closed."""
        key = (batch.cluster, batch.node, batch.window_start)
        if key in self._seen or 0 <= offset <= self.last_offset:
            self.duplicates += 1
            return "duplicate"
        self.last_offset = max(self.last_offset, offset)
        closed = self._closed(closed_until)
        if closed is not None and batch.window_start < closed:
            return "late"
        self._seen.add(key)
        if self.watermark is None or batch.window_end > self.watermark:
            self.watermark = batch.window_end
        return "new"

    def screen(
        self, batch: MetricBatch, closed_until: datetime | None = None, offset: int = -1
    ) -> tuple[bool, str | None]:
        """Whether to allocate the scrape, and the reason to dead-letter it if it must be
        (a duplicate is neither used nor rejected). Both engines decide through here;
        ``closed_until`` is the hour a wider clock (the worker's partition) has closed."""
        verdict = self.admit(batch, closed_until, offset)
        if verdict == "late":
            return False, self.late_reason(batch, closed_until)
        return verdict == "new", None

    def late_reason(self, batch: MetricBatch, closed_until: datetime | None = None) -> str:
        closed = self._closed(closed_until)
        return (
            f"late scrape: window {batch.window_start.isoformat()} of node "
            f"{batch.cluster}/{batch.node} belongs to an hour closed at "
            f"{closed.isoformat() if closed else '-'} "
            f"(allowed lateness {self.allowed_lateness})"
        )

    def _closed(self, closed_until: datetime | None) -> datetime | None:
        return max((c for c in (self.closed_until, closed_until) if c is not None), default=None)

    def add(self, rows: pl.DataFrame) -> None:
        """Add exact rows (``cost.allocate_exact``) to their open hours."""
        self._open = sum_by_hour(pl.concat([self._open, rows]))

    def close_due(self, watermark: datetime | None = None) -> pl.DataFrame:
        """Rows of every hour that the watermark has passed by the allowed lateness.

        ``watermark`` lets a wider clock close these windows too: a node that stopped
        reporting never moves its own watermark past its last hour.
        """
        latest = max((w for w in (self.watermark, watermark) if w is not None), default=None)
        if latest is None:
            return empty_costs()
        return self._close(hour_of(latest - self.allowed_lateness))

    def earliest_open(self) -> datetime | None:
        """The start of the oldest hour still open, if any."""
        first = self._open["window_start"].min()
        return first if isinstance(first, datetime) else None

    def close_all(self) -> pl.DataFrame:
        """At the end of input every open hour is final."""
        if self.watermark is None:
            return empty_costs()
        return self._close(hour_of(self.watermark) + HOUR)

    def _close(self, until: datetime) -> pl.DataFrame:
        if self.closed_until is not None and until <= self.closed_until:
            return empty_costs()
        due = pl.col("window_start") < until
        closed = self._open.filter(due)
        self._open = self._open.filter(~due)
        self._seen = {key for key in self._seen if key[2] >= until - HOUR}
        self.closed_until = until
        return to_float(
            closed.sort(["cluster", "window_start", "node", "namespace", "pod", "container"])
        )

    def to_bytes(self) -> bytes:
        """The whole state: open rows as Arrow IPC behind a JSON header."""
        header = json.dumps(
            {
                "watermark": _iso(self.watermark),
                "closed_until": _iso(self.closed_until),
                "duplicates": self.duplicates,
                "last_offset": self.last_offset,
                "seen": sorted([c, n, t.isoformat()] for c, n, t in self._seen),
            }
        ).encode()
        rows = io.BytesIO()
        self._open.write_ipc(rows, compression="zstd")
        return len(header).to_bytes(4, "big") + header + rows.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, allowed_lateness: timedelta) -> "HourlyWindows":
        size = int.from_bytes(data[:4], "big")
        header = json.loads(data[4 : 4 + size])
        windows = cls(allowed_lateness)
        windows.watermark = _instant(header["watermark"])
        windows.closed_until = _instant(header["closed_until"])
        windows.duplicates = header["duplicates"]
        windows.last_offset = header["last_offset"]
        windows._seen = {(c, n, datetime.fromisoformat(t)) for c, n, t in header["seen"]}
        windows._open = pl.read_ipc(io.BytesIO(data[4 + size :]))
        return windows


def _iso(instant: datetime | None) -> str | None:
    return instant.isoformat() if instant else None


def _instant(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None
