"""The cost allocation processor: each node scrape, costed as OpenCost would, summed into
hourly windows that are written once their hour closes (``cost_allocation_hourly``), with
the admitted scrapes themselves (``raw_metrics``, ``raw_node_metrics``).

The model is ``streams.cost.allocate_exact`` (OpenCost's allocation: max(request, usage)
per container, idle = node cost minus allocations); the state is the partition's open
hours (``streams.windows.HourlyWindows``). Late scrapes become dead letters; a scrape
seen twice counts once.
"""

from collections import Counter
from datetime import datetime, timedelta
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from kubeopera.models import MetricBatch, Topic
from kubeopera.streams.cost import HOUR_KEY, allocate_exact
from kubeopera.streams.frames import samples_frame, scrapes_frame
from kubeopera.streams.processor import Batch, Output, Table
from kubeopera.streams.reference import Reference
from kubeopera.streams.registry import register
from kubeopera.streams.windows import HourlyWindows

RAW_METRICS = Table(
    "raw_metrics",
    ("cluster", "namespace", "pod", "container", "window_start", "pod_uid"),
    "window_start",
)
RAW_NODE_METRICS = Table("raw_node_metrics", ("cluster", "node", "window_start"), "window_start")
COST_ALLOCATION_HOURLY = Table(
    "cost_allocation_hourly", tuple(HOUR_KEY), "window_start", deduplicate=True
)
"""Deduplicated by content: the daily rollups sum what arrives, and a replayed hour is
the same block (an hour's rows do not depend on how its partition was batched)."""


class CostSettings(BaseModel):
    """The ``cost:`` section: the processor's own settings and the reports' defaults."""

    model_config = ConfigDict(extra="forbid")

    team_label: str = "team"
    allowed_lateness_minutes: float = Field(10, ge=0)
    idle: Literal["none", "weighted"] = "none"
    idle_by: Literal["cluster", "node"] = "cluster"
    shared_namespaces: list[str] = Field(default_factory=list)
    shared_split: Literal["even", "weighted"] = "weighted"
    shared_over: Literal["all", "cluster"] = "all"

    @property
    def allowed_lateness(self) -> timedelta:
        return timedelta(minutes=self.allowed_lateness_minutes)


@register
class CostAllocation:
    name: ClassVar[str] = "cost"
    Settings: ClassVar[type[BaseModel]] = CostSettings
    topics: ClassVar[frozenset[Topic]] = frozenset({Topic.METRICS})
    tables: ClassVar[tuple[Table, ...]] = (RAW_METRICS, RAW_NODE_METRICS, COST_ALLOCATION_HOURLY)

    def __init__(self, settings: CostSettings | None = None) -> None:
        self.settings = settings or CostSettings()

    def new_state(self) -> HourlyWindows:
        return HourlyWindows(self.settings.allowed_lateness)

    def process(self, batch: Batch, reference: Reference, state: HourlyWindows) -> Output:
        """Admit each scrape (new, duplicate, or late: a dead letter), cost the new ones
        with the reference data valid at their time, add them to their open hours.
        Counts ``samples`` (container samples admitted)."""
        output = Output()
        admitted = []
        for envelope in batch.envelopes:
            scrape = envelope.message
            assert isinstance(scrape, MetricBatch)
            verdict = state.admit(scrape, envelope.watermark)
            if verdict == "late":
                output.dead_letters.append(
                    envelope.reject(state.late_reason(scrape, envelope.watermark))
                )
            elif verdict == "duplicate":
                output.duplicates += 1
            else:
                admitted.append(scrape)
        if admitted:
            samples, scrapes = samples_frame(admitted), scrapes_frame(admitted)
            output.rows += [(RAW_METRICS, samples), (RAW_NODE_METRICS, scrapes)]
            output.counts["samples"] += samples.height
            state.add(
                allocate_exact(
                    samples,
                    scrapes,
                    reference.pricing(),
                    reference.versions(),
                    reference.pricer.defaults,
                )
            )
        return output

    def close(self, state: HourlyWindows, watermark: datetime) -> Output:
        """The hours ``watermark`` has closed, one block per hour. Counts ``cost_rows``."""
        rows = state.close_due(watermark)
        return Output(
            rows=[
                (COST_ALLOCATION_HOURLY, hour)
                for hour in rows.partition_by("window_start", maintain_order=True)
            ],
            counts=Counter(cost_rows=rows.height),
        )

    def horizon(self, state: HourlyWindows) -> datetime | None:
        """Scrapes before the closed hours are late: the pod versions and prices they
        would need are not."""
        return state.closed_until

    def state_to_bytes(self, state: HourlyWindows) -> bytes:
        return state.to_bytes()

    def state_from_bytes(self, data: bytes) -> HourlyWindows:
        return HourlyWindows.from_bytes(data, self.settings.allowed_lateness)
