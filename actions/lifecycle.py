"""A remediation request and the states it goes through.

::

    pending --approve--> approved --apply--> applying --> applied --undo--> undoing --> undone
       |                    |                    \\--> failed               \\--> applied
       \\--reject--> rejected <--reject--/

A request is made ``pending`` after its dry-run, or ``approved`` at once when the policy
rule that allowed it auto-approves. ``applying`` and ``undoing`` are written before the
change is sent, so a service killed in between knows on restart to find out, from the
object, whether the change reached the API server (``actions.service.Service.recover``).
"""

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from kubeopera.actions.policy import Action, Role
from kubeopera.actions.remediations import FieldValue, Params, Target
from kubeopera.models.base import UtcDatetime


class State(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    APPLYING = "applying"
    APPLIED = "applied"
    FAILED = "failed"
    UNDOING = "undoing"
    UNDONE = "undone"


class FieldDiff(BaseModel):
    """One changed field, in the change timeline's diff format (``object_diff``):
    ``change`` ADDED, MODIFIED or DELETED, ``old`` and ``new`` as JSON (None: absent)."""

    model_config = ConfigDict(frozen=True)

    path: str
    change: str
    old: str | None
    new: str | None
    category: str


class Approval(BaseModel):
    model_config = ConfigDict(frozen=True)

    by: str
    at: UtcDatetime
    comment: str = ""


class ActionRequest(BaseModel):
    """One request, as the API returns it.

    ``writes``: the fields apply writes into the object (as the API server writes them),
    which must still be as the dry-run read it (``uid``; ``generation``, or where there is
    none ``resource_version``); ``undo``: the fields as
    they were, which undo writes back (None, and ``undo_note`` why, when it cannot be
    undone); ``diff``: the dry-run's answer against the object as read, both redacted as
    the collector redacts (the request holds no credential); ``evictions``: the pods a
    drain evicts, each with the eviction API's answer ("allowed" or why not; after the
    apply, "evicted" or why not); ``applied_version``: the resourceVersion the apply
    made (undo's precondition); ``roles``: the requester's when asking (the policy is
    checked again for them at apply, for its change windows)."""

    model_config = ConfigDict(frozen=True)

    id: str
    action: Action
    target: Target
    params: Params = Field(default_factory=Params)
    comment: str = ""
    finding: str | None = None
    requester: str
    roles: list[Role] = Field(default_factory=list)
    created_at: UtcDatetime
    updated_at: UtcDatetime
    state: State
    rule: str
    auto_approve: bool = False
    reason: str = ""
    resource_version: str = ""
    uid: str = ""
    generation: int | None = None
    writes: list[FieldValue] = Field(default_factory=list)
    undo: list[FieldValue] | None = None
    undo_note: str = ""
    diff: list[FieldDiff] = Field(default_factory=list)
    evictions: dict[str, str] = Field(default_factory=dict)
    evicted_uids: dict[str, str] = Field(default_factory=dict)
    approvals: list[Approval] = Field(default_factory=list)
    rejected_by: str | None = None
    applied_at: datetime | None = None
    applied_by: str | None = None
    applied_version: str | None = None
    undone_at: datetime | None = None
    undone_by: str | None = None
    version: int = 1

    def moved(self, state: State, now: datetime, **changes: Any) -> "ActionRequest":
        """This request in ``state`` at ``now``, with ``changes``, one version on."""
        return self.model_copy(
            update={"state": state, "updated_at": now, "version": self.version + 1, **changes}
        )
