"""What the subscriptions would have sent over past findings, without sending (``kubeopera
alerts preview``): the findings' states replayed in time order through a fresh
``Router``, each group flushed at the times Alertmanager would (``group_wait``, then
every ``group_interval``), silences applied as they were active then. Every notification
counts as told; rate limits are not replayed."""

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from kubeopera.alerts.grouping import Notification, Router
from kubeopera.alerts.silences import Silence, silenced_at
from kubeopera.models import Finding, Subject
from kubeopera.settings.subscriptions import Subscription


def replay(
    states: Sequence[Finding],
    until: datetime,
    router: Router,
    step: Callable[[list[Finding], datetime], None],
) -> None:
    """Call ``step(found, t)`` at each time ``t`` up to ``until`` (UTC) that a state of
    ``states`` was seen (``last_seen``; ``found``: those states) or one of ``router``'s
    groups is due (``found`` empty), in order."""
    pending = sorted(states, key=lambda f: (f.last_seen, f.fingerprint))
    index = 0
    while True:
        times = [g.next_flush for g in router.groups.values()]
        if index < len(pending):
            times.append(pending[index].last_seen)
        now = min(times, default=None)
        if now is None or now > until:
            return
        found = []
        while index < len(pending) and pending[index].last_seen == now:
            found.append(pending[index])
            index += 1
        step(found, now)


def preview(
    subscriptions: Sequence[Subscription],
    states: Sequence[Finding],
    silences: Sequence[Silence],
    labels: Mapping[Subject, Mapping[str, str]],
    until: datetime,
) -> list[Notification]:
    """The notifications ``states`` (every state of each finding, any order) make up to
    ``until`` (UTC), in order."""
    router = Router(list(subscriptions))
    out: list[Notification] = []

    def step(found: list[Finding], now: datetime) -> None:
        for finding in found:
            router.add(finding, labels.get(finding.subject, {}), now)
        for notification in router.due(now, silenced_at(silences, now)):
            router.sent(notification, now)
            out.append(notification)

    replay(states, until, router, step)
    return out
