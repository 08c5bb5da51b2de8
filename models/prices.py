"""Node price facts: what a node is and, where known, what it costs."""

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from kubeopera.models.base import Contract, NonNegative, UtcDatetime
from kubeopera.models.keys import node_key


class CapacityType(StrEnum):
    ON_DEMAND = "on-demand"
    SPOT = "spot"


class NodePrice(Contract):
    """Price facts of one node (topic ``prices``, key cluster/node).

    ``usd_per_hour`` is the node's total price when the collector knows it (a spot
    market price, a custom sheet); left empty, the pipeline looks the instance type up
    in its catalogue. The per-resource prices are set only when a price sheet gives them;
    otherwise the total is split with OpenCost's CPU/RAM ratio.
    """

    cluster: str = Field(min_length=1)
    node: str = Field(min_length=1)
    instance_type: str = ""
    region: str = ""
    zone: str = ""
    capacity_type: CapacityType = CapacityType.ON_DEMAND
    usd_per_hour: NonNegative | None = None
    cpu_usd_per_core_hour: NonNegative | None = None
    ram_usd_per_gib_hour: NonNegative | None = None
    gpu_usd_per_hour: NonNegative | None = None
    observed_at: UtcDatetime

    def key(self) -> str:
        return node_key(self.cluster, self.node)

    def event_time(self) -> datetime:
        return self.observed_at
