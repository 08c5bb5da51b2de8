"""The notifier: findings in, notifications out, every attempt recorded.

``Notifier.feed`` routes each new state of a finding (an older or the same state read
again changes nothing); ``Notifier.step`` flushes the groups that are due, holds back
what a subscription's rate limit does not allow yet (a newer notification of a group
replaces one held), delivers the rest and records every attempt in one insert. A
notification is settled (the group's log moves on) once its receiver took it or refused
it for good; one whose retries ran out is made again at its group's next flush.

Exactly-once effect across restarts: the log is read back from ``alert_deliveries`` at
start, so findings read again tell nothing new. A kill between a delivery and its
record sends that one notification once more; PagerDuty folds it into the same incident
by ``dedup_key``.
"""

import logging
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from pydantic import SecretStr, ValidationError

from kubeopera.alerts.delivery import Attempt, Outcome, Poster, Request, hide_in_logs
from kubeopera.alerts.grouping import GroupId, Notification, Router, Silenced
from kubeopera.alerts.receivers import requests_for
from kubeopera.alerts.records import (
    attempt_rows,
    notification_log,
    record_attempts,
    silences,
    subject_labels,
)
from kubeopera.alerts.silences import Silence, silenced_at
from kubeopera.alerts.sources import FindingSource
from kubeopera.models import DeadLetter, Finding, FindingKind, FindingStatus, Severity, Subject
from kubeopera.settings.messages import first_line
from kubeopera.settings.subscriptions import Subscription, Subscriptions
from kubeopera.sinks.clickhouse import Store
from kubeopera.streams.frames import deadletters_frame
from kubeopera.streams.sink import DEADLETTER_TABLE

log = logging.getLogger("kubeopera.alerts")

SILENCES_EVERY = timedelta(seconds=10)
"""How often silences are read again (``kubeopera alerts silence`` from elsewhere)."""

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

FORGET_RESOLVED = timedelta(days=1)
"""How long the version of a resolved finding is kept (``StoreSource.lookback``)."""


@dataclass
class StepReport:
    """What a step did: notifications due, held by a rate limit, told, failed."""

    due: int = 0
    held: int = 0
    told: int = 0
    failed: int = 0


@dataclass
class Notifier:
    """Routes, groups, delivers and records (see the module). ``secrets`` are the
    receivers' by (subscription, field path), from ``load_subscriptions``."""

    subscriptions: Subscriptions
    secrets: dict[tuple[str, str], SecretStr]
    store: Store
    poster: Poster
    router: Router = field(init=False)
    _versions: dict[str, tuple[datetime, str]] = field(default_factory=dict)
    _held: dict[GroupId, datetime] = field(default_factory=dict)
    _sent: dict[str, deque[datetime]] = field(default_factory=dict)
    _silences: list[Silence] = field(default_factory=list)
    _silences_read: datetime | None = None
    _forgotten_at: datetime = EPOCH

    def __post_init__(self) -> None:
        hide_in_logs(self.secrets.values())
        self.router = Router(self.subscriptions.subscriptions, log=notification_log(self.store))
        self._labels_wanted = any(
            rule.labels
            for s in self.subscriptions.subscriptions
            for rule in (*s.match.include, *s.match.exclude)
        )

    def feed(self, findings: Iterable[Finding], now: datetime) -> int:
        """Route the findings' new states; returns how many were new."""
        fresh = [f for f in findings if self._is_new(f)]
        labels: dict[Subject, dict[str, str]] = {}
        if fresh and self._labels_wanted:
            labels = subject_labels(self.store, (f.subject for f in fresh))
        for finding in fresh:
            self.router.add(finding, labels.get(finding.subject, {}), now)
        return len(fresh)

    def _is_new(self, finding: Finding) -> bool:
        """Whether ``finding`` is a later state than the one seen last (by ``last_seen``,
        then resolved after open)."""
        version = (finding.last_seen, finding.status.value)
        known = self._versions.get(finding.fingerprint)
        if known is not None and known >= version:
            return False
        self._versions[finding.fingerprint] = version
        return True

    def _forget_resolved(self, now: datetime) -> None:
        """Forget the versions of findings resolved more than ``FORGET_RESOLVED`` ago
        (memory stays bounded by the findings open and lately resolved): read again,
        such a state finds its group's receiver told, or never told, and is dropped."""
        if now - self._forgotten_at < FORGET_RESOLVED / 24:
            return
        self._forgotten_at = now
        old = now - FORGET_RESOLVED
        self._versions = {
            fingerprint: (seen, status)
            for fingerprint, (seen, status) in self._versions.items()
            if status == FindingStatus.OPEN.value or seen >= old
        }

    def dead_letters(self, letters: list[DeadLetter]) -> None:
        """Record what the source could not read (``deadletter``)."""
        if letters:
            self.store.insert(DEADLETTER_TABLE, deadletters_frame(letters), deduplicate=True)

    def silenced(self, now: datetime) -> Silenced:
        """Whether a finding is silenced now (silences read again every
        ``SILENCES_EVERY``)."""
        if self._silences_read is None or now - self._silences_read >= SILENCES_EVERY:
            self._silences = silences(self.store)
            self._silences_read = now
        return silenced_at(self._silences, now)

    def step(self, now: datetime) -> StepReport:
        """Flush the due groups, deliver what the rate limits allow, record it all. A
        notification held back is made again from its group when let go: what it tells
        is the group's state then (gone, if nothing is left to tell)."""
        report = StepReport()
        self._forget_resolved(now)
        silenced = self.silenced(now)
        flushed = {n.group: n for n in self.router.due(now, silenced)}
        for gid, notification in flushed.items():
            self._held.setdefault(gid, notification.due_at)
        report.due = len(flushed)
        rows: list[dict[str, object]] = []
        for gid, due_at in list(self._held.items()):
            current = flushed.get(gid) or self.router.current(gid, now, silenced)
            if current is None:
                del self._held[gid]
                continue
            if not self._allowed(current.subscription, now):
                report.held += 1
                continue
            del self._held[gid]
            notification = replace(current, due_at=due_at)
            told, attempts = deliver(notification, self.secrets, self.poster)
            rows += attempts
            if told:
                self.router.sent(notification, now)
                report.told += 1
            else:
                report.failed += 1
        record_attempts(self.store, rows)
        return report

    def _allowed(self, subscription: Subscription, now: datetime) -> bool:
        limit = subscription.rate_limit
        if limit is None:
            return True
        sent = self._sent.setdefault(subscription.name, deque())
        while sent and now - sent[0] >= limit.per:
            sent.popleft()
        if len(sent) >= limit.messages:
            return False
        sent.append(now)
        return True


def deliver(
    notification: Notification,
    secrets: dict[tuple[str, str], SecretStr],
    poster: Poster,
) -> tuple[bool, list[dict[str, object]]]:
    """Send every request of ``notification`` (the receiver's secrets from ``secrets``,
    by subscription and field path); whether all were settled (taken, or refused for
    good), and the rows of every attempt. A request whose retries ran out stops it. A
    notification that shows nothing (every finding resolved, ``send_resolved`` off) is
    settled without a request, and one the receiver's format cannot take (a finding
    outside its schema) is settled as invalid: each has a row, so the log read back
    after a restart is the one kept here."""
    subscription = notification.subscription
    mine = {path: value for (name, path), value in secrets.items() if name == subscription.name}
    receiver = subscription.receiver
    kind = receiver.kind
    try:
        requests = requests_for(notification, receiver, mine)
    except (ValidationError, ValueError, LookupError, TypeError) as error:
        log.warning("%s: %s: not sent: %s", subscription.name, notification.group_key, error)
        reason = f"cannot be formatted for {kind}: {first_line(error)}"
        return True, attempt_rows(notification, kind, [_unsent(Outcome.INVALID, reason)], True)
    if not requests:
        unsent = _unsent(Outcome.EMPTY, "nothing to show: resolves are not sent")
        return True, attempt_rows(notification, kind, [unsent], True)
    rows: list[dict[str, object]] = []
    for index, request in enumerate(requests):
        attempts = poster.post(request)
        last = attempts[-1]
        settled = last.outcome in (Outcome.DELIVERED, Outcome.REFUSED)
        if last.outcome == Outcome.REFUSED:
            log.warning(
                "%s: %s refused (%s): %s", subscription.name, request.what, last.status, last.reason
            )
        elif not settled:
            log.warning(
                "%s: %s not delivered after %d attempts: %s",
                subscription.name, request.what, len(attempts), last.reason,
            )  # fmt: skip
        last_request = index == len(requests) - 1
        rows += attempt_rows(notification, kind, attempts, settled and last_request)
        if not settled:
            return False, rows
    return True, rows


def _unsent(outcome: Outcome, reason: str) -> Attempt:
    """The record of a notification settled without a request."""
    nothing = Request(SecretStr(""), {}, "no request")
    return Attempt(nothing, datetime.now(UTC), 0, None, outcome, reason, 0.0)


SAMPLE_EVIDENCE = {"observed": 412.5, "band": [80.0, 140.0], "score": 0.99999, "unit": "USD/h"}


def test_notification(
    subscription: Subscription,
    secrets: dict[tuple[str, str], SecretStr],
    poster: Poster,
    now: datetime,
) -> tuple[bool, list[dict[str, object]]]:
    """Send a sample anomaly to ``subscription``'s receiver as a notification (to a
    receiver that keeps incidents open, PagerDuty, its resolve follows once the trigger
    is taken); whether the receiver took every request (a refusal is not taking it), and
    the attempts' rows (none marked told: no group's log changes)."""
    sample = Finding(
        kind=FindingKind.ANOMALY,
        severity=Severity.HIGH,
        fingerprint=f"kubeopera-test-{now:%Y%m%dT%H%M%S}",
        subject=Subject(
            cluster="sample-cluster", namespace="sample", kind="Deployment", name="web"
        ),
        first_seen=now,
        last_seen=now,
        summary=f"KubeOpera test of subscription {subscription.name}: cost 3x the expected band",
        evidence=SAMPLE_EVIDENCE,
    )
    firing = Notification(
        subscription, "test", (sample,), (), frozenset({sample.fingerprint}), False, now
    )
    notifications = [firing]
    if subscription.receiver.pagerduty is not None:
        ended = sample.model_copy(update={"status": FindingStatus.RESOLVED})
        notifications.append(
            Notification(subscription, "test", (), (ended,), frozenset(), False, now)
        )
    rows: list[dict[str, object]] = []
    for notification in notifications:
        _, attempts = deliver(notification, secrets, poster)
        rows += [{**row, "told": 0} for row in attempts]
        if attempts[-1]["outcome"] != Outcome.DELIVERED.value:  # refused is not taken
            return False, rows
    return True, rows


def run(
    notifier: Notifier,
    source: FindingSource,
    stop: threading.Event,
    tick: float = 0.2,
) -> None:
    """Read, route and step until ``stop`` is set."""
    while not stop.is_set():
        findings, letters = source.poll(tick)
        now = datetime.now(UTC)
        notifier.dead_letters(letters)
        notifier.feed(findings, now)
        report = notifier.step(now)
        if report.due or report.failed:
            log.info(
                "%d notifications due, %d told, %d held by rate limits, %d failed",
                report.due, report.told, report.held, report.failed,
            )  # fmt: skip
