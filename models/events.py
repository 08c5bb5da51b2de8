"""Kubernetes Events as the collector forwards them."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from kubeopera.models.base import Contract, UtcDatetime
from kubeopera.models.objects import ObjectRef


class EventSource(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    component: str = ""
    host: str = ""


class KubeEvent(Contract):
    """One core/v1 Event (topic ``events``, key cluster: a cluster's Events are in one
    partition, in order, so a workload's Warnings can be counted there, hour by hour)."""

    cluster: str = Field(min_length=1)
    namespace: str = ""
    name: str = ""
    uid: str = ""
    type: str = "Normal"
    reason: str = ""
    message: str = ""
    involved: ObjectRef
    source: EventSource = Field(default_factory=EventSource)
    count: int = Field(default=1, ge=0)
    first_time: UtcDatetime | None = None
    last_time: UtcDatetime

    def key(self) -> str:
        return self.cluster

    def event_time(self) -> datetime:
        return self.last_time
