"""A notification as the requests its receiver takes.

Slack: one Block Kit message for the group (its findings firing, then those resolved).
PagerDuty: one Events API v2 event per finding, ``dedup_key`` its fingerprint: a trigger
for each finding the group's last notification did not tell (every one firing on a
repeat), a resolve for each resolved. A webhook: the group as JSON (Alertmanager's
webhook shape: ``status``, ``groupKey``, the findings as the findings topic carries them).
"""

from typing import Any

from pydantic import SecretStr

from kubeopera.alerts.delivery import Request
from kubeopera.alerts.grouping import Notification
from kubeopera.models import Finding
from kubeopera.settings.subscriptions import Receiver
from kubeopera.sinks.notifiers.pagerduty import alert_event
from kubeopera.sinks.notifiers.slack import slack_message

PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
"""The Events API v2 endpoint (``receiver.pagerduty.url`` overrides it: a proxy, a test)."""

WEBHOOK_VERSION = "1"


def requests_for(
    notification: Notification, receiver: Receiver, secrets: dict[str, SecretStr]
) -> list[Request]:
    """The requests that tell ``notification`` to ``receiver``, whose secrets are
    ``secrets`` by field path (``slack.webhook_url``); none when it shows no finding."""
    group = notification.group_key
    findings = (*notification.firing, *notification.resolved)
    if not findings:  # all resolved, resolves not sent: nothing to tell
        return []
    if receiver.slack is not None:
        url = secrets["slack.webhook_url"]
        message = slack_message(group, findings)
        return [Request(url, message, f"message ({_count(findings)})")]
    if receiver.pagerduty is not None:
        key = secrets["pagerduty.routing_key"]
        url = SecretStr(receiver.pagerduty.url or PAGERDUTY_EVENTS_URL)
        told = [
            f
            for f in notification.firing
            if notification.repeat or f.fingerprint in notification.new
        ]
        events = [alert_event(f, key) for f in (*told, *notification.resolved)]
        return [Request(url, e.body(), f"{e.event_action} {e.dedup_key}") for e in events]
    assert receiver.webhook is not None
    body = webhook_body(notification)
    return [Request(secrets["webhook.url"], body, f"group ({_count(findings)})")]


def _count(findings: tuple[Finding, ...]) -> str:
    return f"{len(findings)} finding" + ("s" if len(findings) != 1 else "")


def webhook_body(notification: Notification) -> dict[str, Any]:
    """The group as JSON: ``version``, ``subscription``, ``groupKey``, ``status``
    (``firing`` while any finding fires), ``repeat``, and the ``firing`` and
    ``resolved`` findings."""
    return {
        "version": WEBHOOK_VERSION,
        "subscription": notification.subscription.name,
        "groupKey": notification.group_key,
        "status": "firing" if notification.firing else "resolved",
        "repeat": notification.repeat,
        "firing": [f.model_dump(mode="json") for f in notification.firing],
        "resolved": [f.model_dump(mode="json") for f in notification.resolved],
    }
