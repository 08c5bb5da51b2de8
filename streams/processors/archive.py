"""The archive processor: object changes, Kubernetes events, resolved node prices and drift
baselines as they arrive, into their raw tables (the object history, the event log, the
price history the analyst views read, and the baselines embedded runs read back).

Stateless: a replayed message writes a row whose key the table already holds, and the
table keeps one.
"""

from datetime import datetime
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from kubeopera.models import Baseline, KubeEvent, NodePrice, ObjectChange, Topic
from kubeopera.streams.frames import baselines_frame, events_frame, objects_frame
from kubeopera.streams.pricing import pricing_frame
from kubeopera.streams.processor import Batch, Output, Table
from kubeopera.streams.reference import Reference
from kubeopera.streams.registry import register
from kubeopera.streams.watermark import END_OF_INPUT

RAW_OBJECTS = Table(
    "raw_objects",
    ("cluster", "namespace", "kind", "name", "observed_at", "uid", "change"),
    "observed_at",
)
RAW_EVENTS = Table(
    "raw_events",
    ("cluster", "namespace", "involved_kind", "involved_name", "last_time", "uid", "count"),
    "last_time",
)
NODE_PRICES = Table("node_prices", ("cluster", "node", "observed_at"), "observed_at")
BASELINES = Table(
    "baselines", ("cluster", "namespace", "kind", "name", "baseline", "recorded_at"), "recorded_at"
)


class ArchiveSettings(BaseModel):
    """The archive has no settings."""

    model_config = ConfigDict(extra="forbid")


@register
class Archive:
    name: ClassVar[str] = "archive"
    Settings: ClassVar[type[BaseModel]] = ArchiveSettings
    topics: ClassVar[frozenset[Topic]] = frozenset(
        {Topic.OBJECTS, Topic.EVENTS, Topic.PRICES, Topic.BASELINES}
    )
    tables: ClassVar[tuple[Table, ...]] = (RAW_OBJECTS, RAW_EVENTS, NODE_PRICES, BASELINES)

    def __init__(self, settings: ArchiveSettings | None = None) -> None:
        self.settings = settings or ArchiveSettings()

    def new_state(self) -> None:
        return None

    def process(self, batch: Batch, reference: Reference, state: None) -> Output:
        """Rows of ``raw_objects``, ``raw_events``, ``node_prices`` (each price resolved
        as the pricer would cost it: ``pricing.Pricer.resolve``) and ``baselines``."""
        changes = batch.of(ObjectChange)
        events = batch.of(KubeEvent)
        prices = [reference.pricer.resolve(m) for m in batch.of(NodePrice)]
        rows = [(RAW_OBJECTS, objects_frame(changes)), (RAW_EVENTS, events_frame(events))]
        return Output(
            rows=[
                *rows,
                (NODE_PRICES, pricing_frame(prices)),
                (BASELINES, baselines_frame(batch.of(Baseline))),
            ]
        )

    def close(self, state: None, watermark: datetime) -> Output:
        return Output()

    def horizon(self, state: None) -> datetime | None:
        return END_OF_INPUT  # it needs no reference timeline

    def state_to_bytes(self, state: None) -> bytes:
        return b""

    def state_from_bytes(self, data: bytes) -> None:
        return None
