"""A group of findings as a Slack message: the evidence each kind needs, and Slack's
documented Block Kit limits kept by counting, not only by the SDK (a 300-finding group
is summed up, nothing cut mid-block)."""

from datetime import UTC, datetime
from typing import Any

import pytest

from kubeopera.models import Finding, Subject
from kubeopera.sinks.notifiers.slack import slack_message

AT = datetime(2026, 3, 2, 9, tzinfo=UTC)


def finding(n: int = 0, kind: str = "anomaly", evidence: dict[str, Any] | None = None,
            summary: str = "cost of ml is high", status: str = "open",
            severity: str = "high", namespace: str = "ml") -> Finding:  # fmt: skip
    return Finding(kind=kind, severity=severity, fingerprint=f"fp{n:04d}", first_seen=AT,
                   last_seen=AT, status=status, summary=summary, evidence=evidence or {},
                   subject=Subject(cluster="prod", namespace=namespace, kind="Namespace",
                                   name=f"ml-{n}"))  # fmt: skip


def texts(message: dict[str, Any]) -> list[str]:
    found = []
    for block in message["blocks"]:
        found += [block["text"]["text"]] if "text" in block else []
        found += [f["text"] for f in block.get("fields", [])]
        found += [e["text"] for e in block.get("elements", [])]
    return found


def within_slacks_limits(message: dict[str, Any]) -> None:
    blocks = message["blocks"]
    assert len(blocks) <= 50
    for block in blocks:
        if block["type"] == "header":
            assert block["text"]["type"] == "plain_text" and len(block["text"]["text"]) <= 150
        if block["type"] == "section":
            assert "text" in block or "fields" in block
            assert len(block.get("text", {}).get("text", "")) <= 3000
            assert len(block.get("fields", [])) <= 10
            assert all(len(f["text"]) <= 2000 for f in block.get("fields", []))
        if block["type"] == "context":
            assert 1 <= len(block["elements"]) <= 10


def test_an_anomaly_shows_what_was_observed_against_the_band() -> None:
    evidence = {"observed": 7.0994, "band": [3.2, 4.85], "score": 0.99999, "unit": "USD"}
    message = slack_message("prod/ml", [finding(evidence=evidence)])
    within_slacks_limits(message)
    assert message["blocks"][0]["text"]["text"] == "HIGH · 1 finding · prod/ml"
    shown = texts(message)
    assert "*Observed*\n7.10 USD" in shown
    assert "*Expected*\n3.20 to 4.85 USD" in shown
    assert "*Where*\nprod/ml" in shown and "*Subject*\nNamespace/ml-0" in shown
    more = next(t for t in shown if t.startswith("more:"))
    assert more == "more: `kubeopera timeline --cluster prod --namespace ml --name ml-0 --since 7d`"


def test_a_budget_shows_spend_forecast_and_amount() -> None:
    evidence = {"spend": 812.5, "forecast": 1210.0, "forecast_interval": [1100.0, 1320.25],
                "amount": 1000, "period": "monthly"}  # fmt: skip
    shown = texts(slack_message("team/web", [finding(kind="budget", evidence=evidence)]))
    assert "*Spend*\n$812.50" in shown
    assert "*Forecast*\n$1,210.00 ($1,100.00 to $1,320.25)" in shown
    assert "*Budget*\n$1,000.00 monthly" in shown


def test_drift_shows_the_changed_fields() -> None:
    entries = [{"path": "/spec/replicas", "expected": "2", "live": "3"},
               {"path": "/metadata/labels/x", "expected": None, "live": '"y"'}]  # fmt: skip
    shown = texts(slack_message("prod", [finding(kind="drift", evidence={"entries": entries})]))
    assert (
        '*Changed fields*\n`/spec/replicas`: `2` → `3`\n`/metadata/labels/x`: absent → `"y"`'
        in shown
    )


def test_a_resolved_group_says_so() -> None:
    message = slack_message("prod/ml", [finding(status="resolved"), finding(1, status="resolved")])
    assert message["blocks"][0]["text"]["text"] == "resolved · 2 findings · prod/ml"
    assert message["blocks"][1]["text"]["text"].startswith(":white_check_mark: ~cost of ml")


def test_a_group_of_300_keeps_slacks_limits_and_sums_up_the_rest() -> None:
    group = [finding(n, summary="x" * 5000, namespace=f"ns{n % 7}") for n in range(300)]
    message = slack_message("g" * 400, group)
    within_slacks_limits(message)
    blocks = message["blocks"]
    shown = sum(1 for b in blocks if b["type"] == "context")  # one per finding in full
    assert shown == 12 and len(blocks) == 1 + 4 * 12 + 1
    rest = blocks[-1]["text"]["text"]
    assert rest.startswith(f"*…and {300 - shown} more findings:*")
    counted = sum(int(line.split(" x ")[0].removeprefix("• ")) for line in rest.splitlines()[1:])
    assert counted == 300 - shown  # every finding left out is counted once
    assert blocks[1]["text"]["text"].endswith("…") and len(blocks[1]["text"]["text"]) == 3000


def test_a_small_group_is_shown_whole_without_a_trailing_divider() -> None:
    message = slack_message("g", [finding(n) for n in range(12)])
    assert len(message["blocks"]) == 1 + 4 * 12 - 1 and message["blocks"][-1]["type"] == "context"


def test_an_empty_group_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one finding"):
        slack_message("g", [])
