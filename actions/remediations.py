"""What each remediation does to an object, worked out from the object as the API server
serves it: pure, no I/O (``actions.kube`` reads and writes; ``actions.service`` runs the
steps).

A remediation is a list of field writes (``writes``: each field's new value, or its
removal), worked out from the object as read; the service sends the object with them
(``written``) as a server-side dry-run and, once approved, as the real update, both as
a ``PUT`` with the ``resourceVersion`` the dry-run read, so that an object changed in
between is refused (HTTP 409). Undo writes each field back as it was (``reverse``).
Only the writes are kept, never the whole object, whose other fields may hold
credentials. ``delete_pod`` deletes instead (precondition: the same resourceVersion), and
``drain`` cordons the node, then evicts its pods through the eviction API (which refuses
an eviction that would break a PodDisruptionBudget).

What each action changes:

- ``scale`` (Deployment, StatefulSet): ``spec.replicas``.
- ``restart`` (Deployment, StatefulSet, DaemonSet): the pod template's
  ``kubectl.kubernetes.io/restartedAt`` annotation, as ``kubectl rollout restart``.
- ``rollback`` (Deployment, StatefulSet, DaemonSet): every field of the pod template
  changed since the chosen time back to its value then, from the change timeline.
- ``revert_drift`` (the same kinds): every drifted field of a drift finding back to the
  baseline's value.
- ``set_resources`` (the same kinds): one container's requests and limits.
- ``cordon`` / ``uncordon`` / ``drain`` (Node): ``spec.unschedulable``.
- ``delete_pod`` (Pod, phase ``Failed`` only).
"""

import copy
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kubeopera.actions.policy import Action, Change, Resources
from kubeopera.models.base import UtcDatetime
from kubeopera.models.field_paths import ABSENT, item, put, remove, value_at
from kubeopera.models.quantity import parse_quantity

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
"""The pod template annotation ``kubectl rollout restart`` sets."""

WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet")

KINDS: dict[Action, tuple[str, ...]] = {
    Action.SCALE: ("Deployment", "StatefulSet"),
    Action.RESTART: WORKLOADS,
    Action.ROLLBACK: WORKLOADS,
    Action.REVERT_DRIFT: WORKLOADS,
    Action.SET_RESOURCES: WORKLOADS,
    Action.CORDON: ("Node",),
    Action.UNCORDON: ("Node",),
    Action.DRAIN: ("Node",),
    Action.DELETE_POD: ("Pod",),
}
"""The kinds each action can change."""


class RemediationError(ValueError):
    """The remediation cannot be planned for this object (the message says why)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Target(_Strict):
    """The object a request changes (``namespace`` empty for a Node)."""

    cluster: str = Field(min_length=1, max_length=253)
    kind: str = Field(min_length=1, max_length=63)
    namespace: str = Field("", pattern=r"^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)?$")
    name: str = Field(min_length=1, max_length=253, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name} in {self.cluster}"


QUANTITY = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([KMGTPE]i|[numkMGTPE]|[eE][+-]?[0-9]+)?$"
"""A Kubernetes quantity (``resource.Quantity``'s serialised form)."""

Quantity = Annotated[str, Field(pattern=QUANTITY, max_length=64)]


class ContainerResources(_Strict):
    """One container's new requests and limits (Kubernetes quantities: ``500m``,
    ``256Mi``); a resource not named is left as it is."""

    container: str = Field(min_length=1)
    requests: dict[Literal["cpu", "memory"], Quantity] = Field(default_factory=dict)
    limits: dict[Literal["cpu", "memory"], Quantity] = Field(default_factory=dict)

    @field_validator("requests", "limits")
    @classmethod
    def _quantities(cls, values: dict[str, str]) -> dict[str, str]:
        for name, value in values.items():
            try:
                parse_quantity(value)
            except ValueError:
                raise ValueError(f"{name}: {value!r} is not a Kubernetes quantity") from None
        return values


class Params(_Strict):
    """What a request asks beyond its target: ``replicas`` (scale); ``resources``
    (set_resources); ``to`` (rollback: the pod template as it was at that time, UTC;
    none: before its newest change); ``finding`` (revert_drift: the drift finding's
    fingerprint)."""

    replicas: int | None = Field(None, ge=0, le=100_000)
    resources: ContainerResources | None = None
    to: UtcDatetime | None = None
    finding: str | None = Field(None, min_length=1, max_length=255)


REQUIRED: dict[Action, str] = {
    Action.SCALE: "replicas",
    Action.SET_RESOURCES: "resources",
    Action.REVERT_DRIFT: "finding",
}


def check_params(action: Action, target: Target, params: Params) -> None:
    """Raises ``RemediationError`` when ``action`` cannot change ``target``'s kind or
    lacks a parameter it needs."""
    if target.kind not in KINDS[action]:
        kinds = ", ".join(KINDS[action])
        raise RemediationError(f"{action.value} changes a {kinds}, not a {target.kind}")
    if (target.kind == "Node") != (target.namespace == ""):
        raise RemediationError(
            "a Node has no namespace"
            if target.kind == "Node"
            else f"a {target.kind} needs its namespace (-n)"
        )
    needed = REQUIRED.get(action)
    if needed is not None and getattr(params, needed) is None:
        flag = {"replicas": "--replicas", "resources": "--container and --requests or --limits",
                "finding": "--finding"}[needed]  # fmt: skip
        raise RemediationError(f"{action.value} needs params.{needed} ({flag})")


class FieldValue(_Strict):
    """A field write: the field's ``path`` (``object_diff``'s form) and its new
    ``value`` as JSON text, None to remove the field."""

    path: str
    value: str | None


def writes(
    action: Action,
    live: Mapping[str, Any],
    params: Params,
    now: datetime,
    fields: Sequence[FieldValue] = (),
) -> list[FieldValue]:
    """What ``action`` writes into the object ``live`` (as served). ``fields``: the
    values rollback and revert_drift write (``rollback_fields``, ``drift_fields``).
    Raises ``RemediationError`` when the object cannot take it (no such container, a
    pod not ``Failed``, a value the timeline does not hold whole)."""
    if action == Action.SCALE:
        return [FieldValue(path="/spec/replicas", value=json.dumps(params.replicas))]
    if action == Action.RESTART:
        annotation = "/spec/template/metadata/annotations/" + RESTARTED_AT.replace("/", "~1")
        stamp = json.dumps(now.strftime("%Y-%m-%dT%H:%M:%SZ"))
        return [FieldValue(path=annotation, value=stamp)]
    if action == Action.SET_RESOURCES:
        return _resource_writes(live, params)
    if action in (Action.CORDON, Action.DRAIN, Action.UNCORDON):
        cordoned = None if action == Action.UNCORDON else "true"  # uncordon: the field goes
        return [FieldValue(path="/spec/unschedulable", value=cordoned)]
    if action in (Action.ROLLBACK, Action.REVERT_DRIFT):
        if not fields:
            raise RemediationError("nothing to change: the object is as asked already")
        for field in fields:
            if field.value is not None:
                _restorable(field)
        return list(fields)
    phase = (live.get("status") or {}).get("phase", "")  # delete_pod: no field written
    if phase != "Failed":
        raise RemediationError(f"the pod is {phase or 'without a phase'}, not Failed")
    return []


def written(live: Mapping[str, Any], fields: Sequence[FieldValue]) -> dict[str, Any]:
    """A copy of ``live`` with ``fields`` written, without its status and managedFields,
    keeping the ``resourceVersion`` it was read at (the update's precondition). Raises
    ``RemediationError`` for a path the object cannot hold."""
    new = copy.deepcopy(dict(live))
    new.pop("status", None)
    new.get("metadata", {}).pop("managedFields", None)
    try:
        for field in fields:
            if field.value is None:
                remove(new, field.path)
            else:
                put(new, field.path, json.loads(field.value))
    except ValueError as problem:
        raise RemediationError(str(problem)) from None
    return new


def reverse(live: Mapping[str, Any], fields: Sequence[FieldValue]) -> list[FieldValue]:
    """The writes that put ``fields`` back as they are in ``live`` (undo's)."""
    undone = []
    for field in fields:
        value = value_at(dict(live), field.path)
        shown = None if value is ABSENT else json.dumps(value, sort_keys=True)
        undone.append(FieldValue(path=field.path, value=shown))
    return undone


def holds(obj: Mapping[str, Any], fields: Sequence[FieldValue]) -> bool:
    """Whether every field of ``fields`` has its value in ``obj`` (absent for None)."""
    for field in fields:
        value = value_at(dict(obj), field.path)
        if field.value is None:
            if value is not ABSENT:
                return False
        elif value is ABSENT or value != json.loads(field.value):
            return False
    return True


REDACTED = "<redacted "
"""How the collector's redaction marker starts (``collectors.kubernetes.redact``)."""


def _restorable(field: FieldValue) -> None:
    """``RemediationError`` for a value the timeline does not hold whole: cut for length
    (``object_diff.LONGEST``) or a credential the collector redacted."""
    assert field.value is not None
    try:
        json.loads(field.value)
    except json.JSONDecodeError:
        raise RemediationError(f"{field.path}: only the start of its value is kept") from None
    if REDACTED in field.value:
        raise RemediationError(f"{field.path}: its value was redacted, it cannot be written")


def _resource_writes(live: Mapping[str, Any], params: Params) -> list[FieldValue]:
    wanted = params.resources
    assert wanted is not None  # check_params
    template = (live.get("spec") or {}).get("template") or {}
    containers = (template.get("spec") or {}).get("containers") or []
    if not any(c.get("name") == wanted.container for c in containers):
        names = ", ".join(c.get("name", "") for c in containers)
        raise RemediationError(f"no container {wanted.container} (it has {names})")
    if not wanted.requests and not wanted.limits:
        raise RemediationError("give requests or limits to set")
    base = f"/spec/template/spec/containers/{item('name', wanted.container)}/resources"
    return [
        FieldValue(path=f"{base}/{part}/{resource}", value=json.dumps(quantity))
        for part, values in (("requests", wanted.requests), ("limits", wanted.limits))
        for resource, quantity in sorted(values.items())
    ]


def change(action: Action, before: Mapping[str, Any], after: Mapping[str, Any]) -> Change:
    """What the policy's limits judge: the replica count and each container's requests
    and limits (cores, bytes) before and after."""
    if action == Action.SCALE:
        return Change(replicas=(_replicas(before), _replicas(after)))
    if action in (Action.SET_RESOURCES, Action.ROLLBACK, Action.REVERT_DRIFT):
        return Change(
            replicas=(_replicas(before), _replicas(after)),
            resources=(resources_of(before), resources_of(after)),
        )
    return Change()


def _replicas(obj: Mapping[str, Any]) -> int:
    return int((obj.get("spec") or {}).get("replicas", 1))  # the API's default


def resources_of(obj: Mapping[str, Any]) -> Resources:
    """Each container's requests and limits: ``{"app": {"requests.cpu": 0.5}}``."""
    template = (obj.get("spec") or {}).get("template") or {}
    found: dict[str, dict[str, float]] = {}
    for container in (template.get("spec") or {}).get("containers") or []:
        values = found.setdefault(container.get("name", ""), {})
        for part, quantities in (container.get("resources") or {}).items():
            for resource, quantity in (quantities or {}).items():
                values[f"{part}.{resource}"] = parse_quantity(str(quantity))
    return found


def drift_fields(evidence: Mapping[str, Any]) -> list[FieldValue]:
    """The values a drift finding's ``evidence`` (``entries`` of ``streams.drift``'s
    ``Drift``) says the baseline wants: each drifted field back to ``expected`` (None:
    the baseline has no such field, so it goes)."""
    return [
        FieldValue(path=entry["path"], value=entry["expected"])
        for entry in evidence.get("entries", [])
    ]


def rollback_fields(rows: Sequence[Mapping[str, Any]]) -> list[FieldValue]:
    """The pod template as it was before ``rows``: the change timeline's rows (``path``,
    ``old``, ``observed_at``) of the object's ``/spec/template`` since the time rolled
    back to; each field takes the value it had before its first change since.

    >>> rows = [
    ...     {"path": "/spec/template/spec/containers/[name=app]/image", "old": '"a:1"',
    ...      "observed_at": 1},
    ...     {"path": "/spec/template/spec/containers/[name=app]/image", "old": '"a:2"',
    ...      "observed_at": 2}]
    >>> rollback_fields(rows)
    [FieldValue(path='/spec/template/spec/containers/[name=app]/image', value='"a:1"')]
    """
    first: dict[str, FieldValue] = {}
    for row in sorted(rows, key=lambda r: r["observed_at"]):
        first.setdefault(row["path"], FieldValue(path=row["path"], value=row["old"]))
    return [first[path] for path in sorted(first)]
