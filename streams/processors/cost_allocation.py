"""The cost allocation processor: each node scrape, costed as OpenCost would, summed into
hourly windows that are written once their hour closes (``cost_allocation_hourly``), with
the admitted scrapes themselves (``raw_metrics``, ``raw_node_metrics``). A closed hour
is also sent as the partition's share of the hourly series (``streams.series``) to the
``series`` topic, for the anomaly and budget processors.

The model is ``streams.cost.allocate_exact`` (OpenCost's allocation: max(request, usage)
per container, idle = node cost minus allocations); the state is the partition's open
hours (``streams.windows.HourlyWindows``). Late scrapes become dead letters; a scrape
seen twice counts once.
"""

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import ClassVar

import polars as pl
from pydantic import BaseModel

from kubeopera.models import MetricBatch, Topic
from kubeopera.streams.cost import HOUR_KEY, allocate_exact
from kubeopera.streams.cost_settings import CostSettings
from kubeopera.streams.frames import samples_frame, scrapes_frame
from kubeopera.streams.processor import Batch, Output, Table
from kubeopera.streams.reference import Reference
from kubeopera.streams.registry import register
from kubeopera.streams.series import hourly_points
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
        return self.process_partitions([(batch, state)], reference)

    def process_partitions(
        self, work: Sequence[tuple[Batch, HourlyWindows]], reference: Reference
    ) -> Output:
        """``process`` on each partition's batch, with one allocation for them all (its
        cost is mostly fixed per call, and a Kafka batch spans every partition). Each
        partition's hours get the rows of its own nodes (a node's scrapes are keyed to one
        partition); a node found in two partitions' batches is allocated per partition."""
        output = Output()
        admitted = [self._admit(batch, state, output) for batch, state in work]
        for scrapes, (_, state) in zip(admitted, work, strict=True):
            state.restarts.add(scrapes)
        owners: dict[tuple[str, str], int] = {}  # node -> the partition (index) it is in
        shared = False
        for index, scrapes in enumerate(admitted):
            for node in {(s.cluster, s.node) for s in scrapes}:
                shared |= owners.setdefault(node, index) != index
        calls = [[i] for i in range(len(work))] if shared else [list(range(len(work)))]
        for call in calls:
            scrapes = [s for i in call for s in admitted[i]]
            if not scrapes:
                continue
            samples, nodes = samples_frame(scrapes), scrapes_frame(scrapes)
            output.rows += [(RAW_METRICS, samples), (RAW_NODE_METRICS, nodes)]
            output.counts["samples"] += samples.height
            rows = allocate_exact(
                samples, nodes, reference.pricing(), reference.versions(), reference.pricer.defaults
            )
            if len(call) == 1:
                work[call[0]][1].add(rows)
                continue
            for index, part in _by_owner(rows, owners):
                work[index][1].add(part)
        return output

    def _admit(self, batch: Batch, state: HourlyWindows, output: Output) -> list[MetricBatch]:
        """The batch's new scrapes; late ones go to ``output`` as dead letters, those
        seen before count as duplicates."""
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
        return admitted

    def close(self, state: HourlyWindows, watermark: datetime) -> Output:
        """The hours ``watermark`` has closed, one block per hour, and their series
        points. Counts ``cost_rows``."""
        rows = state.close_due(watermark)
        restarts = state.restarts.due(state.closed_until) if state.closed_until else None
        return Output(
            rows=[
                (COST_ALLOCATION_HOURLY, hour)
                for hour in rows.partition_by("window_start", maintain_order=True)
            ],
            messages=hourly_points(rows, restarts, self.settings.series_labels),
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


def _by_owner(
    rows: pl.DataFrame, owners: dict[tuple[str, str], int]
) -> list[tuple[int, pl.DataFrame]]:
    """``rows`` split by the partition (index) that owns each row's node."""
    index = pl.DataFrame(
        [(c, n, i) for (c, n), i in owners.items()],
        schema={"cluster": pl.String, "node": pl.String, "owner": pl.Int64},
        orient="row",
    )
    parts = rows.join(index, on=["cluster", "node"], maintain_order="left").partition_by(
        "owner", as_dict=True, include_key=False
    )
    return [(int(key[0]), part) for key, part in parts.items()]
