"""The action service's audit: one record per call, dry-run, approval, apply and undo
(topic ``actions``; table ``action_audit``, view ``v_actions_audit``)."""

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from kubeopera.models.base import Contract, UtcDatetime


class AuditEvent(StrEnum):
    CALL = "call"  # an HTTP call, accepted or refused
    DRY_RUN = "dry_run"
    APPROVE = "approve"
    REJECT = "reject"
    APPLY = "apply"
    UNDO = "undo"
    RECOVER = "recover"  # after a restart: how an interrupted apply or undo ended


class AuditResult(StrEnum):
    OK = "ok"
    STARTED = "started"  # an apply about to be sent: its outcome follows (or a recover)
    REFUSED = "refused"  # by authentication, role, policy, state or precondition
    FAILED = "failed"  # the API server or the service failed


class ActionAudit(Contract):
    """One audit record. ``who`` is the caller as authenticated ("" when it was not),
    ``roles`` the roles it held; the target is ``cluster``, ``kind``, ``namespace``,
    ``name`` (empty when the call named none); ``before`` and ``after`` the changed
    fields (JSON: field path -> value as JSON, null where absent) of a dry-run, apply or
    undo; ``status`` the HTTP status answered (0 for events that answer nothing)."""

    audit_id: str = Field(min_length=1)
    at: UtcDatetime
    event: AuditEvent
    result: AuditResult
    who: str = ""
    roles: list[str] = Field(default_factory=list)
    method: str = ""
    route: str = ""
    status: int = Field(0, ge=0, le=599)
    request_id: str = ""
    action: str = ""
    cluster: str = ""
    namespace: str = ""
    kind: str = ""
    name: str = ""
    reason: str = ""
    before: str | None = None
    after: str | None = None

    def key(self) -> str:
        return self.request_id or self.audit_id

    def event_time(self) -> datetime:
        return self.at
