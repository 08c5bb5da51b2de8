"""Findings as PagerDuty Events API v2 events, as pydantic models of the published schema
(developer.pagerduty.com, "Send an Alert Event": ``POST /v2/enqueue``; "Send a Change
Event": ``POST /v2/change/enqueue``).

An open finding triggers and a resolved one resolves, both with ``dedup_key`` = the
finding's fingerprint, so PagerDuty keeps one incident per finding however often either
is sent. Severities map: critical → critical, high → error, medium → warning, low and
info → info. The routing key is a ``SecretStr``: it shows in no ``repr``; ``body()``
gives it only for the request itself.
"""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from kubeopera.models import Finding, FindingStatus, Severity
from kubeopera.sinks.notifiers.text import cut

SEVERITY = {
    Severity.CRITICAL: "critical",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "info",
    Severity.INFO: "info",
}
"""KubeOpera's severities in PagerDuty's four."""

MAX_SUMMARY = 1024
MAX_DEDUP_KEY = 255


class _Schema(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AlertPayload(_Schema):
    """``payload`` of a trigger: ``summary`` (at most 1,024 characters), ``source`` (where
    it happened), ``severity``, when (``timestamp``), and ``component``, ``group``,
    ``class`` and ``custom_details``."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    summary: str = Field(min_length=1, max_length=MAX_SUMMARY)
    source: str = Field(min_length=1)
    severity: Literal["critical", "error", "warning", "info"]
    timestamp: datetime | None = None
    component: str | None = None
    group: str | None = None
    class_: str | None = Field(None, alias="class")
    custom_details: dict[str, Any] | None = None


class AlertEvent(_Schema):
    """An alert event: ``trigger`` with a payload, or ``resolve`` (and ``acknowledge``)
    by ``dedup_key`` alone."""

    routing_key: SecretStr = Field(min_length=32, max_length=32)
    event_action: Literal["trigger", "acknowledge", "resolve"]
    dedup_key: str = Field(min_length=1, max_length=MAX_DEDUP_KEY)
    payload: AlertPayload | None = None
    client: str | None = None

    def body(self) -> dict[str, Any]:
        """The request's JSON body, the routing key in it."""
        data = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        data["routing_key"] = self.routing_key.get_secret_value()
        return data


class ChangePayload(_Schema):
    """``payload`` of a change event (a remediation applied)."""

    summary: str = Field(min_length=1, max_length=MAX_SUMMARY)
    source: str | None = None
    timestamp: datetime | None = None
    custom_details: dict[str, Any] | None = None


class ChangeEvent(_Schema):
    """A change event: what was changed, for the service's change timeline."""

    routing_key: SecretStr = Field(min_length=32, max_length=32)
    payload: ChangePayload

    def body(self) -> dict[str, Any]:
        """The request's JSON body, the routing key in it."""
        data = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        data["routing_key"] = self.routing_key.get_secret_value()
        return data


def alert_event(finding: Finding, routing_key: SecretStr) -> AlertEvent:
    """The event for ``finding``'s state: a trigger while open (summary cut to 1,024
    characters, or made from the subject when empty; source the cluster; component the
    subject ``Kind/name``; group its namespace; class the finding's kind; the evidence as
    custom details), a resolve once resolved. Raises ``pydantic.ValidationError`` for a
    routing key that is not 32 characters or a fingerprint over 255."""
    if finding.status == FindingStatus.RESOLVED:
        return AlertEvent(
            routing_key=routing_key, event_action="resolve", dedup_key=finding.fingerprint
        )
    subject = finding.subject
    summary = finding.summary.strip() or f"{finding.kind.value}: {subject.kind}/{subject.name}"
    return AlertEvent(
        routing_key=routing_key,
        event_action="trigger",
        dedup_key=finding.fingerprint,
        client="KubeOpera",
        payload=AlertPayload(
            summary=cut(summary, MAX_SUMMARY),
            source=subject.cluster or "kubeopera",
            severity=SEVERITY[finding.severity],
            timestamp=finding.last_seen,
            component=f"{subject.kind}/{subject.name}",
            group=subject.namespace or None,
            class_=finding.kind.value,
            custom_details={"fingerprint": finding.fingerprint, **finding.evidence},
        ),
    )
