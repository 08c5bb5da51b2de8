"""Event-time hourly cost windows with allowed lateness (the cost processor's state).

Cost rows stay open while their hour can still receive data; an hour closes once its
partition's watermark passes its end plus the allowed lateness, and only then is it
written, once. A scrape for a closed hour is late: it is refused with a reason (a dead
letter), never dropped silently. A scrape seen twice (at-least-once delivery, a
collector publishing again) is counted once: scrapes are remembered for an hour past
their window's close. (A replay after a restart is caught before, by its offset:
``streams.watermark``.)

The state serialises to bytes (``to_bytes``/``from_bytes``) so that an engine can keep
it in a changelog-backed table and resume it after a crash.
"""

import io
from datetime import datetime, timedelta
from typing import Literal

import polars as pl

from kubeopera.models import MetricBatch
from kubeopera.streams.cost import empty_costs, hour_of, sum_by_hour, to_float
from kubeopera.streams.restarts import RestartCounter
from kubeopera.streams.state_bytes import pack, unpack

HOUR = timedelta(hours=1)
BLOCK_ORDER = ["cluster", "window_start", "node", "namespace", "pod", "pod_uid", "container"]
"""A closed hour's row order: its whole key, so that a block's content (its
deduplication token) never depends on the order its rows were added in."""
Admission = Literal["new", "duplicate", "late"]
NOTHING_DUE = empty_costs()  # what most batches close (frames are never changed in place)


class HourlyWindows:
    def __init__(self, allowed_lateness: timedelta) -> None:
        self.allowed_lateness = allowed_lateness
        self.closed_until: datetime | None = None
        self._open = empty_costs(exact=True)
        self._seen: set[tuple[str, str, datetime]] = set()
        self.restarts = RestartCounter()  # the series of restarts (``streams.series``)

    def closed_at(self, watermark: datetime | None) -> datetime | None:
        """The hours before this are closed once the partition's watermark is ``watermark``."""
        due = hour_of(watermark - self.allowed_lateness) if watermark else None
        return max((c for c in (self.closed_until, due) if c is not None), default=None)

    def admit(self, batch: MetricBatch, watermark: datetime | None) -> Admission:
        """Whether the scrape is used, was seen already, or came after its hour closed
        at ``watermark`` (its partition's, as of the message before it)."""
        key = (batch.cluster, batch.node, batch.window_start)
        closed = self.closed_at(watermark)
        remembered = closed is None or batch.window_start >= closed - HOUR
        if remembered and key in self._seen:  # whenever pruning ran: no batching decides
            return "duplicate"
        if closed is not None and batch.window_start < closed:
            return "late"
        self._seen.add(key)
        return "new"

    def late_reason(self, batch: MetricBatch, watermark: datetime | None) -> str:
        closed = self.closed_at(watermark)
        return (
            f"late scrape: window {batch.window_start.isoformat()} of node "
            f"{batch.cluster}/{batch.node} belongs to an hour closed at "
            f"{closed.isoformat() if closed else '-'} "
            f"(allowed lateness {self.allowed_lateness})"
        )

    def add(self, rows: pl.DataFrame) -> None:
        """Add exact rows (``cost.allocate_exact``) to their open hours."""
        self._open = sum_by_hour(pl.concat([self._open, rows]))

    def close_due(self, watermark: datetime) -> pl.DataFrame:
        """Rows of every hour that ``watermark`` has passed by the allowed lateness
        (every open hour at ``END_OF_INPUT``)."""
        until = self.closed_at(watermark)
        assert until is not None
        if self.closed_until is not None and until <= self.closed_until:
            return NOTHING_DUE
        due = pl.col("window_start") < until
        closed = self._open.filter(due)
        self._open = self._open.filter(~due)
        self._seen = {key for key in self._seen if key[2] >= until - HOUR}
        self.closed_until = until
        return to_float(closed.sort(BLOCK_ORDER, maintain_order=True))

    def to_bytes(self) -> bytes:
        """The whole state: open rows as Arrow IPC behind a JSON header."""
        header = {
            "closed_until": _iso(self.closed_until),
            "seen": sorted([c, n, t.isoformat()] for c, n, t in self._seen),
            "restarts": self.restarts.to_json(),
        }
        rows = io.BytesIO()
        self._open.rechunk().write_ipc(rows, compression="zstd")
        return pack(header, rows.getvalue())

    @classmethod
    def from_bytes(cls, data: bytes, allowed_lateness: timedelta) -> "HourlyWindows":
        header, rows = unpack(data)
        windows = cls(allowed_lateness)
        windows.closed_until = _instant(header["closed_until"])
        windows._seen = {(c, n, datetime.fromisoformat(t)) for c, n, t in header["seen"]}
        windows.restarts = RestartCounter.from_json(header["restarts"])
        windows._open = pl.read_ipc(io.BytesIO(rows))
        return windows


def _iso(instant: datetime | None) -> str | None:
    return instant.isoformat() if instant else None


def _instant(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None
