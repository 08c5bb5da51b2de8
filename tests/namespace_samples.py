"""A processor written only for the tests: container samples per namespace, node and hour.

Each source partition keeps its own counts, so the table's key includes the partition
key (the node): a per-namespace total is a sum at query time.

It lives outside the package and is registered by importing this module (the settings'
``processor_modules``), to show that a processor is one module: the contract suite and
both engines run it with no edit to either engine. Its table is not in the migrations;
the tests create it (``DDL``) in the stores they use.
"""

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import ClassVar

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from kubeopera.models import MetricBatch, Topic
from kubeopera.streams.processor import Batch, Output, Table
from kubeopera.streams.reference import Reference
from kubeopera.streams.registry import register
from kubeopera.streams.watermark import END_OF_INPUT

TABLE = Table("test_namespace_samples", ("cluster", "namespace", "node", "hour"), "hour")
DDL = (
    "CREATE TABLE IF NOT EXISTS test_namespace_samples (cluster String, namespace String, "
    "node String, hour DateTime64(3, 'UTC'), samples UInt64) "
    "ENGINE = ReplacingMergeTree ORDER BY (cluster, namespace, node, hour)"
)
SCHEMA = {
    "cluster": pl.String,
    "namespace": pl.String,
    "node": pl.String,
    "hour": pl.Datetime("ms", "UTC"),
    "samples": pl.UInt64,
}


class SampleCountSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    allowed_lateness_minutes: float = Field(10, ge=0)


def _hour(instant: datetime) -> datetime:
    return instant.replace(minute=0, second=0, microsecond=0)


@dataclass
class Counts:
    open: Counter[tuple[str, str, str, datetime]] = field(default_factory=Counter)
    seen: set[tuple[str, str, datetime]] = field(default_factory=set)
    closed_until: datetime | None = None


@register
class NamespaceSamples:
    name: ClassVar[str] = "namespace_samples"
    Settings: ClassVar[type[BaseModel]] = SampleCountSettings
    topics: ClassVar[frozenset[Topic]] = frozenset({Topic.METRICS})
    tables: ClassVar[tuple[Table, ...]] = (TABLE,)

    def __init__(self, settings: SampleCountSettings | None = None) -> None:
        self.lateness = timedelta(
            minutes=(settings or SampleCountSettings()).allowed_lateness_minutes
        )

    def new_state(self) -> Counts:
        return Counts()

    def _closed_at(self, state: Counts, watermark: datetime | None) -> datetime | None:
        due = _hour(watermark - self.lateness) if watermark else None
        return max((c for c in (state.closed_until, due) if c is not None), default=None)

    def process(self, batch: Batch, reference: Reference, state: Counts) -> Output:
        output = Output()
        for envelope in batch.envelopes:
            scrape = envelope.message
            assert isinstance(scrape, MetricBatch)
            key = (scrape.cluster, scrape.node, scrape.window_start)
            closed = self._closed_at(state, envelope.watermark)
            if key in state.seen:
                output.duplicates += 1
            elif closed is not None and scrape.window_start < closed:
                output.dead_letters.append(envelope.reject("late for the sample count"))
            else:
                state.seen.add(key)
                for namespace in scrape.containers.namespace:
                    state.open[
                        (scrape.cluster, namespace, scrape.node, _hour(scrape.window_start))
                    ] += 1
        return output

    def close(self, state: Counts, watermark: datetime) -> Output:
        until = self._closed_at(state, watermark)
        assert until is not None
        due = sorted(k for k in state.open if k[3] < until)
        rows = pl.DataFrame([(*k, state.open.pop(k)) for k in due], schema=SCHEMA, orient="row")
        state.seen = {k for k in state.seen if k[2] >= until - timedelta(hours=1)}
        state.closed_until = until
        return Output(rows=[(TABLE, rows)] if rows.height else [])

    def horizon(self, state: Counts) -> datetime | None:
        return END_OF_INPUT  # it needs no reference data

    def state_to_bytes(self, state: Counts) -> bytes:
        return json.dumps(
            {
                "open": sorted(
                    [c, ns, n, h.isoformat(), v] for (c, ns, n, h), v in state.open.items()
                ),
                "seen": sorted([c, n, t.isoformat()] for c, n, t in state.seen),
                "closed_until": state.closed_until.isoformat() if state.closed_until else None,
            }
        ).encode()

    def state_from_bytes(self, data: bytes) -> Counts:
        saved = json.loads(data)
        return Counts(
            Counter({(c, ns, n, datetime.fromisoformat(h)): v for c, ns, n, h, v in saved["open"]}),
            {(c, n, datetime.fromisoformat(t)) for c, n, t in saved["seen"]},
            datetime.fromisoformat(saved["closed_until"]) if saved["closed_until"] else None,
        )
