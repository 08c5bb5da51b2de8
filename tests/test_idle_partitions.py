"""An idle partition (read to its end, quiet) closes its last hour: ``Pipeline.advance``
with the cost processor, worked by hand."""

from datetime import UTC, datetime, timedelta

from builders import node_price, scrape

from kubeopera.models import Topic
from kubeopera.streams.pipeline import Pipeline
from kubeopera.streams.pricing import Pricer
from kubeopera.streams.processor import Envelope
from kubeopera.streams.reference import Reference
from kubeopera.streams.registry import build


def test_an_idle_partition_closes_its_last_hour_but_not_past_the_limit() -> None:
    """``Pipeline.advance``: a quiet partition's watermark moves on by the allowed
    lateness, so its last hour closes; never past ``limit`` (now, for live data)."""
    start = datetime(2026, 3, 2, 10, tzinfo=UTC)
    price = Envelope(Topic.PRICES, node_price("c", "n", "m5.large", start))
    scrapes = [
        Envelope(
            Topic.METRICS, scrape("c", "n", start + timedelta(minutes=m), 5, (2, 8), {}), offset=i
        )
        for i, m in enumerate(range(0, 60, 5))
    ]  # 10:00 to 11:00, the last one ending at 11:00
    lateness = timedelta(minutes=10)

    def hours(pipeline: Pipeline, limit: datetime) -> list[datetime]:
        output, _ = pipeline.advance(Topic.METRICS, 0, lateness, limit)
        closed = [r for t, r in output.rows if t.name == "cost_allocation_hourly"]
        return sorted({h for rows in closed for h in rows["window_start"].to_list()})

    live = Pipeline(build(["cost"]), Reference(Pricer()))
    output, _ = live.run([price, *scrapes])
    assert not [t for t, _ in output.rows if t.name == "cost_allocation_hourly"]  # 11:00 < 11:10
    assert hours(live, limit=start + timedelta(minutes=65)) == []  # now 11:05: not yet
    assert hours(live, limit=start + timedelta(hours=2)) == [start]  # quiet, in the past
    assert hours(live, limit=start + timedelta(hours=3)) == []  # closed once
