"""Object changes: what the collector saw happen to one Kubernetes object."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from kubeopera.models.base import Contract, NonNegative, UtcDatetime
from kubeopera.models.keys import object_key


class ChangeType(StrEnum):
    ADDED = "ADDED"
    MODIFIED = "MODIFIED"
    DELETED = "DELETED"
    RESYNC = "RESYNC"


class OwnerRef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str
    name: str
    uid: str = ""


class ObjectRef(BaseModel):
    """Points at one object; events and findings use it to name their subject."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str
    namespace: str = ""
    name: str
    uid: str = ""


class ContainerResources(BaseModel):
    """One container's requests and limits, already parsed to cores and bytes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    cpu_request_cores: NonNegative = 0.0
    memory_request_bytes: NonNegative = 0.0
    cpu_limit_cores: NonNegative | None = None
    memory_limit_bytes: NonNegative | None = None
    gpu_request: NonNegative = 0.0


class PodSummary(BaseModel):
    """What cost and rightsizing need of a pod, parsed once in the collector."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    node: str | None = None
    phase: str = "Pending"
    containers: list[ContainerResources] = Field(default_factory=list)


class FieldManager(BaseModel):
    """One entry of the object's ``managedFields``, without values: who manages which
    fields (server-side apply's field ownership), the fields as JSON pointers in which
    list items are named by their key (``/spec/template/spec/containers/[name=app]/image``),
    as ``streams.object_diff`` names them."""

    manager: str
    operation: str = ""  # Apply or Update
    subresource: str = ""  # "scale" for an autoscaler's replicas, "status", ...
    time: UtcDatetime | None = None
    fields: list[str] = Field(default_factory=list)


class ObjectChange(Contract):
    """One change of one object (topic ``objects``, key cluster/kind/namespace/name).

    ``object`` is the redacted object without managedFields; ``last_manager`` keeps who
    wrote it last, ``field_managers`` who manages which fields (so a change can be told
    apart field by field). ``owner_chain`` runs from the direct owner up to the top
    controller.
    """

    cluster: str = Field(min_length=1)
    api_version: str
    kind: str = Field(min_length=1)
    namespace: str = ""
    name: str = Field(min_length=1)
    uid: str = Field(min_length=1)
    resource_version: str = ""
    generation: int | None = None
    observed_at: UtcDatetime
    change: ChangeType
    object: dict[str, Any] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    owner_chain: list[OwnerRef] = Field(default_factory=list)
    last_manager: str | None = None
    field_managers: list[FieldManager] = Field(default_factory=list)
    pod: PodSummary | None = None

    def key(self) -> str:
        return object_key(self.cluster, self.kind, self.namespace, self.name)

    def event_time(self) -> datetime:
        return self.observed_at

    @property
    def controller(self) -> OwnerRef | None:
        """The top of the owner chain (a Deployment rather than its ReplicaSet)."""
        return self.owner_chain[-1] if self.owner_chain else None
