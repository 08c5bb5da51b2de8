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
    """One core/v1 Event (topic ``events``, key cluster/namespace/involved uid)."""

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
        return f"{self.cluster}/{self.namespace}/{self.involved.uid or self.involved.name}"

    def event_time(self) -> datetime:
        return self.last_time
