"""PagerDuty Change Events for applied and undone remediations, sent to every PagerDuty
receiver of the alert subscriptions that says ``change_events: true``
(developer.pagerduty.com, "Send a Change Event": ``POST /v2/change/enqueue``)."""

import logging
from dataclasses import dataclass
from pathlib import Path

import requests
from pydantic import SecretStr

from kubeopera.actions.lifecycle import ActionRequest
from kubeopera.alerts.delivery import Outcome, Poster, Request
from kubeopera.alerts.receivers import PAGERDUTY_EVENTS_URL
from kubeopera.settings.subscriptions import load_subscriptions
from kubeopera.sinks.notifiers.pagerduty import ChangeEvent, ChangePayload
from kubeopera.sinks.notifiers.text import cut

log = logging.getLogger("kubeopera.actions")


def change_url(events_url: str) -> str:
    """The change events endpoint beside an events endpoint.

    >>> change_url("https://events.pagerduty.com/v2/enqueue")
    'https://events.pagerduty.com/v2/change/enqueue'
    """
    base = events_url.removesuffix("/").removesuffix("/v2/enqueue")
    return f"{base}/v2/change/enqueue"


@dataclass
class ChangeEvents:
    """Where change events go: (URL, routing key) per receiver, sent by ``poster``."""

    receivers: list[tuple[SecretStr, SecretStr]]
    poster: Poster

    @classmethod
    def from_subscriptions(cls, path: Path) -> "ChangeEvents":
        """The PagerDuty receivers of the subscriptions at ``path`` that want change
        events. Raises ``SubscriptionError`` as ``load_subscriptions`` does."""
        subscriptions, secrets = load_subscriptions(path)
        receivers = [
            (
                SecretStr(change_url(s.receiver.pagerduty.url or PAGERDUTY_EVENTS_URL)),
                secrets[(s.name, "pagerduty.routing_key")],
            )
            for s in subscriptions.subscriptions
            if s.receiver.pagerduty is not None and s.receiver.pagerduty.change_events
        ]
        session = requests.Session()
        session.headers["User-Agent"] = "KubeOpera-actions"
        return cls(receivers, Poster(subscriptions.delivery, session))

    def __call__(self, request: ActionRequest, what: str) -> None:
        """Tell each receiver that ``request`` was ``what`` (applied, undone)."""
        target = request.target
        by = request.undone_by if what == "undone" else request.applied_by
        payload = ChangePayload(
            summary=cut(f"KubeOpera {request.action.value} {what}: {target} (by {by})", 1024),
            source=target.cluster,
            timestamp=request.updated_at,
            custom_details={
                "request": request.id,
                "requester": request.requester,
                "rule": request.rule,
                "approved_by": [a.by for a in request.approvals],
                "changes": {d.path: {"old": d.old, "new": d.new} for d in request.diff},
            },
        )
        for url, key in self.receivers:
            event = ChangeEvent(routing_key=key, payload=payload)
            attempts = self.poster.post(Request(url, event.body(), f"change {request.id}"))
            if attempts and attempts[-1].outcome != Outcome.DELIVERED:
                log.warning(
                    "change event for %s not delivered: %s", request.id, attempts[-1].reason
                )
