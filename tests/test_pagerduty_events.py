"""Findings as PagerDuty Events API v2 events: one dedup_key per finding for trigger and
resolve, severities mapped, the summary within 1,024 characters, the routing key in no
repr and only in the body sent."""

from datetime import UTC, datetime

import pytest
from pydantic import SecretStr, ValidationError

from kubeopera.models import Finding, Subject
from kubeopera.sinks.notifiers.pagerduty import ChangeEvent, ChangePayload, alert_event

AT = datetime(2026, 3, 2, 9, tzinfo=UTC)
KEY = SecretStr("R0ut1ngKey0123456789abcdef012345")  # 32 characters, as PagerDuty's


def finding(status: str = "open", severity: str = "high", summary: str = "cost spike") -> Finding:
    return Finding(kind="anomaly", severity=severity, fingerprint="f1a2", first_seen=AT,
                   last_seen=AT, status=status, summary=summary,
                   evidence={"observed": 7.1, "band": [3.2, 4.85]},
                   subject=Subject(cluster="prod", namespace="ml", kind="Namespace",
                                   name="ml"))  # fmt: skip


def test_an_open_finding_triggers_and_a_resolved_one_resolves_the_same_key() -> None:
    trigger = alert_event(finding(), KEY).body()
    assert trigger == {
        "routing_key": KEY.get_secret_value(),
        "event_action": "trigger",
        "dedup_key": "f1a2",
        "client": "KubeOpera",
        "payload": {
            "summary": "cost spike", "source": "prod", "severity": "error",
            "timestamp": "2026-03-02T09:00:00Z", "component": "Namespace/ml", "group": "ml",
            "class": "anomaly",
            "custom_details": {"fingerprint": "f1a2", "observed": 7.1, "band": [3.2, 4.85]},
        },
    }  # fmt: skip
    resolve = alert_event(finding(status="resolved"), KEY).body()
    assert resolve == {
        "routing_key": KEY.get_secret_value(), "event_action": "resolve", "dedup_key": "f1a2"
    }  # fmt: skip


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [("critical", "critical"), ("high", "error"), ("medium", "warning"), ("low", "info"),
     ("info", "info")],
)  # fmt: skip
def test_severities_map_onto_pagerdutys_four(ours: str, theirs: str) -> None:
    payload = alert_event(finding(severity=ours), KEY).body()["payload"]
    assert payload["severity"] == theirs


def test_a_long_summary_is_cut_to_1024_characters() -> None:
    summary = alert_event(finding(summary="x" * 5000), KEY).body()["payload"]["summary"]
    assert len(summary) == 1024 and summary.endswith("…")


def test_the_routing_key_shows_in_no_repr_and_must_be_32_characters() -> None:
    event = alert_event(finding(), KEY)
    assert KEY.get_secret_value() not in repr(event) and KEY.get_secret_value() not in str(event)
    with pytest.raises(ValidationError):
        alert_event(finding(), SecretStr("short"))


def test_a_change_event_carries_what_was_changed() -> None:
    event = ChangeEvent(routing_key=KEY, payload=ChangePayload(
        summary="scaled Deployment/api 2 -> 4", source="prod", timestamp=AT,
        custom_details={"request": "r1"}))  # fmt: skip
    assert event.body() == {
        "routing_key": KEY.get_secret_value(),
        "payload": {"summary": "scaled Deployment/api 2 -> 4", "source": "prod",
                    "timestamp": "2026-03-02T09:00:00Z", "custom_details": {"request": "r1"}},
    }  # fmt: skip
