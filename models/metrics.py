"""Metric batches: one scrape of one node.

Per-container samples travel as columns (one list per field) rather than a list of
objects: a scrape of a busy node holds hundreds of containers, and columns validate
and load into a DataFrame an order of magnitude faster than nested objects.
"""

from datetime import datetime
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from kubeopera.models.base import Contract, NonNegative, UtcDatetime


class NodeUsage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    cpu_cores: NonNegative
    memory_bytes: NonNegative


class NodeCapacity(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    cpu_cores: float = Field(gt=0, allow_inf_nan=False)
    memory_bytes: float = Field(gt=0, allow_inf_nan=False)
    gpus: NonNegative = 0.0


def _check_equal_lengths(model: BaseModel, optional: frozenset[str] = frozenset()) -> None:
    """Every column as long as the first; an ``optional`` one may be empty instead (its
    source does not report it)."""
    names = type(model).model_fields
    size = len(getattr(model, next(iter(names))))
    if any(
        len(getattr(model, name)) != size and not (name in optional and not getattr(model, name))
        for name in names
    ):
        lengths = {name: len(getattr(model, name)) for name in names}
        raise ValueError(f"sample columns differ in length: {lengths}")


class ContainerSamples(BaseModel):
    """Columns of per-container usage; row i of every list describes one container."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    namespace: list[str] = Field(default_factory=list)
    pod: list[str] = Field(default_factory=list)
    pod_uid: list[str] = Field(default_factory=list)
    container: list[str] = Field(default_factory=list)
    cpu_cores: list[NonNegative] = Field(default_factory=list)
    memory_working_set_bytes: list[NonNegative] = Field(default_factory=list)
    memory_rss_bytes: list[NonNegative | None] = Field(default_factory=list)  # None: unknown
    restarts: list[int] = Field(default_factory=list)
    cpu_throttled_ratio: list[NonNegative | None] = Field(default_factory=list)
    # Why each container last terminated (the Pod status' lastState.terminated.reason:
    # OOMKilled, Error, ...; None: never). Optional: empty when the source does not say.
    last_terminated_reason: list[str | None] = Field(default_factory=list)

    @model_validator(mode="after")
    def _same_lengths(self) -> Self:
        _check_equal_lengths(self, frozenset({"last_terminated_reason"}))
        return self

    def __len__(self) -> int:
        return len(self.pod)


class PvcSamples(BaseModel):
    """Columns of PersistentVolumeClaim usage seen on the node."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    namespace: list[str] = Field(default_factory=list)
    name: list[str] = Field(default_factory=list)
    used_bytes: list[NonNegative] = Field(default_factory=list)
    capacity_bytes: list[NonNegative] = Field(default_factory=list)

    @model_validator(mode="after")
    def _same_lengths(self) -> Self:
        _check_equal_lengths(self)
        return self


class MetricBatch(Contract):
    """One scrape of one node over [window_start, window_end) (topic ``metrics``)."""

    cluster: str = Field(min_length=1)
    node: str = Field(min_length=1)
    window_start: UtcDatetime
    window_end: UtcDatetime
    node_usage: NodeUsage
    node_capacity: NodeCapacity
    containers: ContainerSamples = Field(default_factory=ContainerSamples)
    pvcs: PvcSamples = Field(default_factory=PvcSamples)

    @model_validator(mode="after")
    def _window_forward(self) -> Self:
        if self.window_end <= self.window_start:
            raise ValueError("window_end must be after window_start")
        return self

    def key(self) -> str:
        """The cluster: a cluster's scrapes all go to one partition, so each hour of its
        series (cost per namespace, a workload's use) is complete in one place."""
        return self.cluster

    def event_time(self) -> datetime:
        return self.window_end
