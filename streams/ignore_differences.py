"""What the change timeline and drift leave out, as Argo CD's ``ignoreDifferences``: rules
by JSON pointer, for some kinds, when the field is managed by some field managers
(Argo CD's ``jsonPointers``, ``kind`` and ``managedFieldsManagers``); and who manages a
field (server-side apply's field ownership, ``managedFields``).

>>> rule = IgnoreDifferences(json_pointers=["/spec/replicas"], managers=["hpa"])
>>> ignored([rule], "Deployment", "hpa", "/spec/replicas")
True
>>> ignored([rule], "Deployment", "kubectl-edit", "/spec/replicas")
False
"""

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from kubeopera.models.objects import FieldManager
from kubeopera.streams.object_diff import pointer_pattern

AUTOSCALERS = ["kube-controller-manager", "horizontal-pod-autoscaler", "keda-operator"]
"""Field managers that set a workload's replicas for an autoscaler."""


class IgnoreDifferences(BaseModel):
    """Differences left out: under these JSON pointers (a ``*`` segment is any one), for
    these kinds (none: every kind), when made by these field managers (none: by anyone)."""

    model_config = ConfigDict(extra="forbid")

    json_pointers: list[str] = Field(min_length=1)
    kinds: list[str] = Field(default_factory=list)
    managers: list[str] = Field(default_factory=list)

    def applies(self, kind: str, manager: str | None) -> bool:
        return (not self.kinds or kind in self.kinds) and (
            not self.managers or manager in self.managers
        )


def autoscaled_replicas() -> list[IgnoreDifferences]:
    """The default rules: the replicas an autoscaler sets on a workload."""
    return [
        IgnoreDifferences(
            json_pointers=["/spec/replicas"],
            kinds=["Deployment", "StatefulSet", "ReplicaSet"],
            managers=AUTOSCALERS,
        )
    ]


def ignored(rules: Sequence[IgnoreDifferences], kind: str, manager: str | None, path: str) -> bool:
    """Whether a difference at ``path`` of a ``kind``, made (or managed) by ``manager``,
    is left out by ``rules``."""
    return any(
        rule.applies(kind, manager) and pointer_pattern(pointer).match(path)
        for rule in rules
        for pointer in rule.json_pointers
    )


def owners(managers: Sequence[FieldManager], path: str) -> list[FieldManager]:
    """The field managers whose fields include ``path``, lie under it or above it."""
    return [
        m
        for m in managers
        if any(f == path or f.startswith(path + "/") or path.startswith(f + "/") for f in m.fields)
    ]


def latest(managers: Sequence[FieldManager]) -> FieldManager | None:
    """The manager whose entry was written last (an entry without a time counts as
    oldest)."""
    return max(managers, key=lambda m: m.time.timestamp() if m.time else 0.0, default=None)
