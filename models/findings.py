"""Findings: the one shape every analysis (drift, anomaly, risk, ...) reports in."""

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from kubeopera.models.base import Contract, UtcDatetime


class FindingKind(StrEnum):
    DRIFT = "drift"
    ANOMALY = "anomaly"
    RISK = "risk"
    BUDGET = "budget"
    RIGHTSIZING = "rightsizing"
    INCIDENT = "incident"


class Severity(StrEnum):
    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class FindingStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


class Subject(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    cluster: str
    namespace: str = ""
    kind: str
    name: str


class Finding(Contract):
    """One finding (topic ``findings``, key fingerprint, stable across restarts)."""

    kind: FindingKind
    severity: Severity
    subject: Subject
    fingerprint: str = Field(min_length=1)
    first_seen: UtcDatetime
    last_seen: UtcDatetime
    status: FindingStatus = FindingStatus.OPEN
    summary: str
    evidence: dict[str, Any] = Field(default_factory=dict)
    remediation: str | None = None

    def key(self) -> str:
        return self.fingerprint
