"""The change timeline processor: for every object, the fields that changed from one
version to the next (``streams.object_diff``), who changed them and under which top
controller, into ``object_changes``: what an SRE opens first during an incident.

State: the last version of each live object of the partition (the ``objects`` topic is
keyed by object, so all its versions are in one partition), without its status and
bookkeeping, forgotten when the object is deleted (its uid and time of deletion are kept
for ``TOMBSTONE``): it grows with live objects, not with history. A RESYNC or relist of
an unchanged object gives no row; nor does a version older than the object's last (a
collector publishing again) or of an object deleted since.

Each changed field is put down to the field manager that made it: of the managers whose
fields (``managedFields``) include it, the one whose entry changed with this version.
What a person does not want to see is left out (``ignore_differences``, as Argo CD's):
by JSON pointer, for some kinds, or when made by some field managers; by default the
replicas an autoscaler sets.
"""

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar

import polars as pl
from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import from_json, to_json

from kubeopera.models import ChangeType, ObjectChange, OwnerRef, Topic
from kubeopera.models.objects import FieldManager
from kubeopera.streams.entries import Entries
from kubeopera.streams.frames import TIME
from kubeopera.streams.ignore_differences import (
    IgnoreDifferences,
    autoscaled_replicas,
    ignored,
    latest,
    owners,
)
from kubeopera.streams.object_diff import FieldChange, comparable, differences
from kubeopera.streams.processor import Batch, Output, Table
from kubeopera.streams.reference import Reference
from kubeopera.streams.registry import register
from kubeopera.streams.watermark import END_OF_INPUT

OBJECT_CHANGES = Table(
    "object_changes",
    ("cluster", "namespace", "kind", "name", "observed_at", "uid", "resource_version", "path"),
    "observed_at",
)


class ChangesSettings(BaseModel):
    """The ``changes:`` section."""

    model_config = ConfigDict(extra="forbid")

    ignore_differences: list[IgnoreDifferences] = Field(default_factory=autoscaled_replicas)


TOMBSTONE = timedelta(hours=6)
"""How long (event time) a deleted object's uid is remembered: a version of it published
again within that is known as old."""


@dataclass
class Versions:
    """``live``: uid -> the object's last version, its time and its field managers, as
    JSON, saved entry by entry (``processor.KeepsEntries``); ``deleted``: uid -> when it
    was deleted (ISO, UTC)."""

    live: Entries = field(default_factory=Entries)
    deleted: dict[str, str] = field(default_factory=dict)


@register
class ChangeTimeline:
    name: ClassVar[str] = "changes"
    Settings: ClassVar[type[BaseModel]] = ChangesSettings
    topics: ClassVar[frozenset[Topic]] = frozenset({Topic.OBJECTS})
    tables: ClassVar[tuple[Table, ...]] = (OBJECT_CHANGES,)

    def __init__(self, settings: ChangesSettings | None = None) -> None:
        self.settings = settings or ChangesSettings()

    def new_state(self) -> Versions:
        return Versions()

    def entries(self, state: Versions) -> Entries:
        return state.live

    def process(self, batch: Batch, reference: Reference, state: Versions) -> Output:
        """Rows of ``object_changes`` for each object change against the object's last
        version. Counts ``changed_fields``."""
        rows = [row for change in batch.of(ObjectChange) for row in self._rows(change, state)]
        output = Output(rows=[(OBJECT_CHANGES, _frame(rows))])
        output.counts["changed_fields"] = len(rows)
        return output

    def _rows(self, change: ObjectChange, state: Versions) -> Iterator[dict[str, Any]]:
        at = change.observed_at.isoformat()
        if change.uid in state.deleted and at <= state.deleted[change.uid]:
            return  # a version of an object deleted since, published again
        before = from_json(state.live[change.uid]) if change.uid in state.live else {}
        if at < before.get("at", ""):
            return  # older than the last version: published again
        new = None if change.change == ChangeType.DELETED else comparable(change.object)
        managers = {_entry(m): _signature(m) for m in change.field_managers}
        if new is None:
            state.live.pop(change.uid, None)
            state.deleted[change.uid] = at
        else:
            entry = {"object": new, "managers": managers, "at": at}
            state.live[change.uid] = to_json(entry).decode()
        top = change.controller
        for changed in differences(before.get("object"), new):
            manager, operation = _who(change, changed.path, managers, before.get("managers") or {})
            if not ignored(self.settings.ignore_differences, change.kind, manager, changed.path):
                yield _row(change, changed, manager, operation, top)

    def close(self, state: Versions, watermark: datetime) -> Output:
        """Deleted uids older than ``TOMBSTONE`` before ``watermark`` are forgotten."""
        if watermark < END_OF_INPUT:
            horizon = (watermark - TOMBSTONE).isoformat()
            state.deleted = {uid: at for uid, at in state.deleted.items() if at >= horizon}
        return Output()

    def horizon(self, state: Versions) -> datetime | None:
        return END_OF_INPUT  # it needs no reference timeline

    def state_to_bytes(self, state: Versions) -> bytes:
        return to_json(state.deleted)  # the live objects are entries

    def state_from_bytes(self, data: bytes) -> Versions:
        return Versions(deleted=from_json(data) if data else {})


def _who(
    change: ObjectChange, path: str, now: dict[str, str], before: dict[str, str]
) -> tuple[str, str]:
    """The field manager (and its operation) that made the change at ``path``: of the
    managers whose fields include it, the one whose entry changed with this version (an
    autoscaler's ``scale`` entry, which carries no time); else the last writer. ``now``
    and ``before`` are the managers' entries (``_signature``) in this version and the
    last."""
    managing = owners(change.field_managers, path)
    changed = [m for m in managing if before.get(_entry(m)) != now[_entry(m)]]
    who = latest(changed) or latest(managing)
    if who is not None:
        return who.manager, who.operation
    return change.last_manager or "", ""


def _entry(manager: FieldManager) -> str:
    return f"{manager.manager}|{manager.operation}|{manager.subresource}"


def _signature(manager: FieldManager) -> str:
    fields = hashlib.sha256("\n".join(manager.fields).encode()).hexdigest()[:16]
    return f"{manager.time.isoformat() if manager.time else ''}|{fields}"


def _row(
    change: ObjectChange, field: FieldChange, manager: str, operation: str, top: OwnerRef | None
) -> dict[str, Any]:
    return {
        "cluster": change.cluster,
        "namespace": change.namespace,
        "kind": change.kind,
        "name": change.name,
        "uid": change.uid,
        "observed_at": change.observed_at,
        "resource_version": change.resource_version,
        "change": str(change.change),
        "path": field.path,
        "field_change": field.change,
        "old": field.old,
        "new": field.new,
        "category": field.category,
        "manager": manager,
        "operation": operation,
        "top_kind": top.kind if top else change.kind,
        "top_name": top.name if top else change.name,
    }


_SCHEMA: dict[str, pl.DataType] = {
    **{
        column: pl.String()
        for column in ("cluster", "namespace", "kind", "name", "uid", "resource_version",
                       "change", "path", "field_change", "old", "new", "category", "manager",
                       "operation", "top_kind", "top_name")
    },
    "observed_at": TIME,
}  # fmt: skip


def _frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=_SCHEMA)
