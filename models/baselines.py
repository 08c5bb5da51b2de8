"""Drift baselines: what an object should be, as reference data for the drift processor
(topic ``baselines``, compacted: the latest baseline of each object is kept)."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field

from kubeopera.models.base import Contract, UtcDatetime
from kubeopera.models.keys import object_key


class BaselineKind(StrEnum):
    DECLARED = "declared"  # a manifest (directory or Git ref), normalised by the API server
    APPROVED = "approved"  # the object as it was when someone approved it
    PEER = "peer"  # the same object live in another cluster (drift across clusters)


class Baseline(Contract):
    """The baseline of one object in one cluster (topic ``baselines``, key
    ``baseline/cluster/kind/namespace/name``).

    ``object``: the fields to compare (a declared baseline: only those the manifest
    sets; an approved one: the object without status and bookkeeping), redacted as live
    objects are; ``None`` withdraws the baseline (the manifest is gone from the set).
    ``origin`` says where it came from: the manifests' directory, ``URL@ref`` and
    commit, who approved it, or the cluster a peer baseline is live in.
    """

    baseline: BaselineKind
    origin: str
    cluster: str = Field(min_length=1)
    api_version: str
    kind: str = Field(min_length=1)
    namespace: str = ""
    name: str = Field(min_length=1)
    object: dict[str, Any] | None
    recorded_at: UtcDatetime

    def key(self) -> str:
        return f"{self.baseline}/{self.object_key()}"

    def object_key(self) -> str:
        """The key of the object it is the baseline of (its ``objects`` message key)."""
        return object_key(self.cluster, self.kind, self.namespace, self.name)

    def event_time(self) -> datetime:
        return self.recorded_at
