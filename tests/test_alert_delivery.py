"""Delivery to receivers on loopback that speak Slack's and PagerDuty's protocols and check
every request: retries on 5xx and 429 (honouring Retry-After), none on another 4xx, every
attempt recorded in the store (v_alert_deliveries), Slack's limits kept for a group of
300, and the receivers' secrets in no record and no log line."""

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from pydantic import SecretStr
from receivers import PagerDuty, Scripted, Slack, block_problem

from kubeopera.alerts.delivery import Poster
from kubeopera.alerts.notifier import Notifier
from kubeopera.models import Finding, Subject
from kubeopera.settings.subscriptions import Delivery, Subscription, Subscriptions
from kubeopera.sinks.clickhouse import Store

ROUTING_KEY = "R0UT1NGK3Y0123456789abcdefABCDEF"
NOW = datetime.now(UTC).replace(microsecond=0)
FAST = Delivery.model_validate(
    {"max_attempts": 6, "initial_backoff": "0.01s", "max_backoff": "0.05s", "timeout": "5s"}
)


def finding(name: str, namespace: str = "shop", status: str = "open") -> Finding:
    return Finding(
        kind="anomaly",
        severity="critical",
        fingerprint=f"fp-{namespace}-{name}",
        subject=Subject(cluster="prod", namespace=namespace, kind="Deployment", name=name),
        first_seen=NOW,
        last_seen=NOW,
        status=status,
        summary=f"cost of {namespace}/{name} rose to $412.50/h",
        evidence={"observed": 412.5, "band": [80.0, 140.0], "score": 0.99999, "unit": "USD/h"},
    )


def notifier(
    store: Store,
    receiver: dict[str, object],
    secret: str,
    delivery: Delivery = FAST,
    **more: object,
) -> Notifier:
    kind = next(iter(receiver))
    field = {"slack": "webhook_url", "pagerduty": "routing_key"}[kind]
    subscription = Subscription.model_validate(
        {"name": "oncall", "receiver": receiver, "group_wait": "0s", "group_interval": "1m", **more}
    )
    return Notifier(
        Subscriptions(subscriptions=[subscription], delivery=delivery),
        {("oncall", f"{kind}.{field}"): SecretStr(secret)},
        store,
        Poster(delivery, requests.Session()),
    )


def pagerduty_at(server: PagerDuty) -> dict[str, object]:
    return {"pagerduty": {"routing_key": {"env": "PD_KEY"}, "url": server.url}}


SLACK = {"slack": {"webhook_url": {"env": "SLACK_URL"}}}


def attempts(store: Store) -> list[dict[str, object]]:
    return store.query(
        "SELECT attempt, status_code, outcome, reason, told, request FROM v_alert_deliveries "
        "ORDER BY at, attempt"
    ).to_dicts()


@pytest.fixture
def pagerduty() -> Iterator[PagerDuty]:
    with PagerDuty() as server:
        yield server


@pytest.fixture
def slack() -> Iterator[Slack]:
    with Slack() as server:
        yield server


def test_500_three_times_then_202_is_delivered_once_with_four_attempts_recorded(
    store: Store, pagerduty: PagerDuty
) -> None:
    pagerduty.script.extend(Scripted(500, '{"status": "error"}') for _ in range(3))
    alerts = notifier(store, pagerduty_at(pagerduty), ROUTING_KEY)
    alerts.feed([finding("web")], NOW)
    report = alerts.step(NOW)
    assert (report.due, report.told, report.failed) == (1, 1, 0)
    assert len(pagerduty.received) == 4 and pagerduty.incidents == ["fp-shop-web"]
    rows = attempts(store)
    assert [(r["attempt"], r["status_code"], r["outcome"], r["told"]) for r in rows] == [
        (1, 500, "retrying", False),
        (2, 500, "retrying", False),
        (3, 500, "retrying", False),
        (4, 202, "delivered", True),
    ]
    assert {r["request"] for r in rows} == {"trigger fp-shop-web"}
    assert alerts.step(NOW + timedelta(minutes=1)).due == 0  # told: nothing again


def test_a_400_is_not_retried_and_is_recorded_with_the_receivers_reason(
    store: Store, pagerduty: PagerDuty
) -> None:
    refusal = '{"status": "invalid event", "errors": ["\'payload.summary\' is missing"]}'
    pagerduty.script.append(Scripted(400, refusal))
    alerts = notifier(store, pagerduty_at(pagerduty), ROUTING_KEY)
    alerts.feed([finding("web")], NOW)
    report = alerts.step(NOW)
    assert len(pagerduty.received) == 1 and pagerduty.incidents == []
    (row,) = attempts(store)
    assert (row["status_code"], row["outcome"], row["told"]) == (400, "refused", True)
    assert "invalid event" in str(row["reason"]) and "payload.summary" in str(row["reason"])
    assert report.told == 1  # settled: the same request would be refused again
    assert alerts.step(NOW + timedelta(minutes=1)).due == 0


def test_retries_used_up_leave_it_untold_and_the_next_flush_delivers_it(
    store: Store, pagerduty: PagerDuty
) -> None:
    pagerduty.script.extend(Scripted(503) for _ in range(FAST.max_attempts))
    alerts = notifier(store, pagerduty_at(pagerduty), ROUTING_KEY)
    alerts.feed([finding("web")], NOW)
    assert alerts.step(NOW).failed == 1
    assert [r["outcome"] for r in attempts(store)] == ["retrying"] * 5 + ["failed"]
    assert alerts.step(NOW + timedelta(seconds=30)).due == 0  # group_interval: 1 m
    assert alerts.step(NOW + timedelta(minutes=1)).told == 1
    assert pagerduty.incidents == ["fp-shop-web"]


def test_slack_429_with_retry_after_2_waits_at_least_2_seconds(store: Store, slack: Slack) -> None:
    slack.script.append(Scripted(429, "rate_limited", {"Retry-After": "2"}))
    patient = FAST.model_copy(update={"max_backoff": timedelta(seconds=5)})  # waits 2 s
    alerts = notifier(store, SLACK, slack.url, patient)
    alerts.feed([finding("web")], NOW)
    assert alerts.step(NOW).told == 1
    first, second = slack.received
    assert second.at - first.at >= 2.0
    assert [r["status_code"] for r in attempts(store)] == [429, 200]
    assert len(slack.messages()) == 1


def test_a_group_of_300_findings_is_one_message_within_slacks_limits(
    store: Store, slack: Slack
) -> None:
    alerts = notifier(store, SLACK, slack.url, group_by=["cluster"])
    names = [f"api-{i:03d}" for i in range(300)]
    alerts.feed([finding(n, namespace=f"team-{i % 7}") for i, n in enumerate(names)], NOW)
    assert alerts.step(NOW).told == 1
    (message,) = slack.messages()  # the server took it: every documented limit held
    blocks = message["blocks"]
    assert block_problem(blocks) is None and len(blocks) <= 50
    assert blocks[0]["text"]["text"].startswith("CRITICAL · 300 findings · cluster=prod")
    sections = [b["text"]["text"] for b in blocks if b["type"] == "section" and "text" in b]
    shown = [text for text in sections if "*cost of" in text]
    # the header, then 4 blocks per finding shown and one block for the rest: (50 - 2) // 4
    assert len(shown) == 12
    rest = blocks[-1]["text"]["text"]
    assert rest.startswith("*…and 288 more findings:*")
    in_rest = sum(int(line.split(" x ")[0].lstrip("• ")) for line in rest.splitlines()[1:])
    assert in_rest == 288


def test_secrets_are_in_no_record_and_no_log_line(
    store: Store, slack: Slack, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    echo = f"invalid_token for {slack.url}"  # a receiver that repeats the URL it was sent to
    slack.script.append(Scripted(403, echo))
    caplog.set_level(logging.DEBUG)
    alerts = notifier(store, SLACK, slack.url)
    alerts.feed([finding("web")], NOW)
    alerts.step(NOW)
    nowhere = notifier(store, SLACK, "http://127.0.0.1:9/services/T0/B0/an0th3rS3cr3t")
    nowhere.feed([finding("db")], NOW)
    nowhere.step(NOW)
    rows = attempts(store)
    assert rows[0]["reason"] == "invalid_token for ***"
    assert rows[-1]["reason"] == "could not connect"
    said = caplog.text + str(rows)
    assert Slack.PATH not in said and "an0th3rS3cr3t" not in said


def test_a_resolved_finding_is_forgotten_after_a_day_and_read_again_tells_nothing(
    store: Store, pagerduty: PagerDuty
) -> None:
    alerts = notifier(store, pagerduty_at(pagerduty), ROUTING_KEY)
    alerts.feed([finding("web")], NOW)
    alerts.step(NOW)
    resolved = finding("web", status="resolved")
    alerts.feed([resolved], NOW + timedelta(minutes=1))
    alerts.step(NOW + timedelta(minutes=1))
    assert [e["event_action"] for e in pagerduty.events()] == ["trigger", "resolve"]
    later = NOW + timedelta(days=1, hours=2)
    alerts.step(later)
    assert alerts.feed([resolved], later) == 1  # forgotten: read as new...
    assert alerts.step(later + timedelta(minutes=1)).due == 0  # ...and nothing to tell
    assert alerts.router.groups == {} and alerts.router.log == {}
    assert len(pagerduty.received) == 2


def test_a_notification_held_by_the_rate_limit_tells_the_groups_state_when_let_go(
    store: Store, pagerduty: PagerDuty
) -> None:
    alerts = notifier(
        store, pagerduty_at(pagerduty), ROUTING_KEY, rate_limit={"messages": 1, "per": "1h"}
    )
    alerts.feed([finding("a"), finding("b")], NOW)
    report = alerts.step(NOW)
    assert (report.told, report.held) == (1, 1)
    (first,) = pagerduty.events()
    held = "fp-shop-b" if first["dedup_key"] == "fp-shop-a" else "fp-shop-a"
    name = held.removeprefix("fp-shop-")
    later = NOW + timedelta(minutes=1)
    alerts.feed([finding(name, status="resolved").model_copy(update={"last_seen": later})], later)
    alerts.step(later)
    alerts.step(NOW + timedelta(hours=2))  # the limit lets go: nothing is left to tell
    assert [(e["event_action"], e["dedup_key"]) for e in pagerduty.events()] == [
        ("trigger", first["dedup_key"])
    ]


def test_a_notification_with_nothing_to_show_is_recorded_so_a_restart_knows(
    store: Store, pagerduty: PagerDuty
) -> None:
    alerts = notifier(store, pagerduty_at(pagerduty), ROUTING_KEY, send_resolved=False)
    alerts.feed([finding("web")], NOW)
    alerts.step(NOW)
    later = NOW + timedelta(minutes=1)
    alerts.feed([finding("web", status="resolved").model_copy(update={"last_seen": later})], later)
    assert alerts.step(later).told == 1
    rows = attempts(store)
    assert [(r["outcome"], r["told"]) for r in rows] == [("delivered", True), ("empty", True)]
    restarted = notifier(store, pagerduty_at(pagerduty), ROUTING_KEY, send_resolved=False)
    assert restarted.router.log == {}  # its receiver was told nothing fires
    again = NOW + timedelta(minutes=5)
    restarted.feed([finding("web").model_copy(update={"last_seen": again})], again)
    restarted.step(again)
    assert [e["event_action"] for e in pagerduty.events()] == ["trigger", "trigger"]


def test_a_retry_after_longer_than_max_backoff_is_not_waited_for(
    store: Store, pagerduty: PagerDuty
) -> None:
    pagerduty.script.append(Scripted(429, '{"status": "throttled"}', {"Retry-After": "3600"}))
    alerts = notifier(store, pagerduty_at(pagerduty), ROUTING_KEY)
    alerts.feed([finding("web")], NOW)
    assert alerts.step(NOW).failed == 1  # at once, not in an hour
    (row,) = attempts(store)
    assert (row["status_code"], row["outcome"]) == (429, "failed")
    assert str(row["reason"]).startswith("Retry-After 3600 s is over max_backoff")
    assert alerts.step(NOW + timedelta(minutes=1)).told == 1  # the next flush delivers


def test_a_finding_the_receiver_cannot_take_is_recorded_invalid_and_the_rest_goes_on(
    store: Store, pagerduty: PagerDuty
) -> None:
    alerts = notifier(store, pagerduty_at(pagerduty), ROUTING_KEY)
    too_long = finding("web").model_copy(update={"fingerprint": "f" * 300})  # dedup_key <= 255
    alerts.feed([too_long, finding("db")], NOW)
    report = alerts.step(NOW)
    assert report.told == 2 and pagerduty.incidents == ["fp-shop-db"]
    outcomes = {r["outcome"]: r for r in attempts(store)}
    assert set(outcomes) == {"invalid", "delivered"}
    assert "cannot be formatted for pagerduty" in str(outcomes["invalid"]["reason"])
    assert alerts.step(NOW + timedelta(minutes=1)).due == 0  # not tried again


def test_a_receiver_that_repeats_the_webhooks_path_has_it_hidden(
    store: Store, slack: Slack
) -> None:
    slack.script.append(Scripted(404, f"Cannot POST {Slack.PATH}"))
    alerts = notifier(store, SLACK, slack.url)
    alerts.feed([finding("web")], NOW)
    alerts.step(NOW)
    (row,) = attempts(store)
    assert row["reason"] == "Cannot POST ***"
