"""The hours of the ``series`` topic's partition, adding up each series' shares (the
anomaly and budget processors' common state).

Each source partition of the cost processor sends its share of a series when its own
hour closes; the sources of one hour arrive about together, those of the next an hour
of event time later. So an hour of a series is complete once the partition's watermark
(the latest ``window_start`` seen) has passed the hour's end by ``allowed_lateness``:
with none, when the first share of the next hour arrives. A share of a closed hour is
late (a dead letter saying so); a share seen before (the same series, hour and source,
sent again after a restart) counts once.

>>> from datetime import UTC, datetime, timedelta
>>> from kubeopera.models import SeriesKind, SeriesScope
>>> def share(hour: int, source: str, value: float) -> SeriesPoint:
...     return SeriesPoint(kind=SeriesKind.COST, scope=SeriesScope.CLUSTER, cluster="prod",
...         window_start=datetime(2026, 3, 2, hour, tzinfo=UTC), value=value, source=source)
>>> hours = SeriesHours(timedelta(0))
>>> [hours.admit(p, None) for p in (share(9, "m/0", 1.0), share(9, "m/1", 2.0),
...                                    share(9, "m/1", 2.0))]
['new', 'new', 'duplicate']
>>> hours.close_due(datetime(2026, 3, 2, 9, tzinfo=UTC))
[]
>>> [(c.point.series_id(), c.point.window_start.hour, c.value) for c in hours.close_due(
...     datetime(2026, 3, 2, 10, tzinfo=UTC))]
[('cost/cluster/prod////', 9, 3.0)]
>>> hours.admit(share(9, "m/2", 4.0), datetime(2026, 3, 2, 10, tzinfo=UTC))
'late'
"""

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from kubeopera.models import SeriesPoint
from kubeopera.streams.watermark import END_OF_INPUT

HOUR = timedelta(hours=1)
Admission = Literal["new", "duplicate", "late"]


@dataclass(frozen=True)
class ClosedHour:
    """One series' complete hour: ``point`` (a share of it, for its attributes) and
    ``value``, its sources' shares added up."""

    point: SeriesPoint
    value: float


class SeriesHours:
    def __init__(self, allowed_lateness: timedelta) -> None:
        self.allowed_lateness = allowed_lateness
        self.closed_until: datetime | None = None
        self._open: dict[tuple[datetime, str], dict[str, float]] = {}  # (hour, series) -> shares
        self._points: dict[tuple[datetime, str], SeriesPoint] = {}
        self._seen: set[tuple[datetime, str, str]] = set()  # closed (hour, series, source)

    def closed_at(self, watermark: datetime | None) -> datetime | None:
        """Hours that start before this are complete at ``watermark`` (None: none are)."""
        if watermark is None or watermark >= END_OF_INPUT - HOUR:
            due = None if watermark is None else END_OF_INPUT
        else:
            due = watermark - self.allowed_lateness - HOUR + timedelta(milliseconds=1)
        return max((c for c in (due, self.closed_until) if c is not None), default=None)

    def admit(self, point: SeriesPoint, watermark: datetime | None) -> Admission:
        """Whether the share is new, seen before, or of an hour closed at ``watermark``
        (the partition's, as of the message before it: so the verdict does not depend
        on how the partition was cut into batches)."""
        key, source = (point.window_start, point.series_id()), point.source
        if (*key, source) in self._seen or source in self._open.get(key, {}):
            return "duplicate"
        closed = self.closed_at(watermark)
        if closed is not None and point.window_start < closed:
            return "late"
        self._open.setdefault(key, {})[source] = point.value
        self._points.setdefault(key, point)
        return "new"

    def late_reason(self, point: SeriesPoint, watermark: datetime | None) -> str:
        closed = self.closed_at(watermark)
        return (
            f"late series point: hour {point.window_start.isoformat()} of "
            f"{point.series_id()} from {point.source} came after the hours before "
            f"{closed.isoformat() if closed else '-'} closed "
            f"(allowed lateness {self.allowed_lateness})"
        )

    def close_due(self, watermark: datetime) -> list[ClosedHour]:
        """Every series hour ``watermark`` has completed, in (hour, series) order."""
        until = self.closed_at(watermark)
        if until is None or (self.closed_until is not None and until <= self.closed_until):
            return []
        self._seen = {s for s in self._seen if s[0] >= until - HOUR}
        closed = []
        for key in sorted(k for k in self._open if k[0] < until):
            shares = self._open.pop(key)
            self._seen.update((*key, source) for source in shares)
            closed.append(ClosedHour(self._points.pop(key), sum(shares[s] for s in sorted(shares))))
        self.closed_until = until
        return closed

    def to_json(self) -> str:
        return json.dumps(
            {
                "closed_until": self.closed_until.isoformat() if self.closed_until else None,
                "open": [
                    [h.isoformat(), s, shares, self._points[(h, s)].model_dump(mode="json")]
                    for (h, s), shares in sorted(self._open.items())
                ],
                "seen": sorted([h.isoformat(), s, src] for h, s, src in self._seen),
            }
        )

    @classmethod
    def from_json(cls, text: str, allowed_lateness: timedelta) -> "SeriesHours":
        data = json.loads(text)
        hours = cls(allowed_lateness)
        hours.closed_until = _instant(data["closed_until"])
        for hour, series, shares, point in data["open"]:
            key = (_instant(hour) or _never(), series)
            hours._open[key] = shares
            hours._points[key] = SeriesPoint.model_validate(point)
        hours._seen = {(_instant(h) or _never(), s, src) for h, s, src in data["seen"]}
        return hours


def _instant(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text).astimezone(UTC) if text else None


def _never() -> datetime:
    raise ValueError("a series hour without a time")
