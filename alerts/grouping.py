"""Findings into notifications, as Alertmanager groups and deduplicates alerts (pure: the
time is given, nothing is sent or stored here).

A finding that a subscription matches joins that subscription's group for its
``group_by`` values. A new group is flushed after ``group_wait``, then every
``group_interval``. A flush notifies when Alertmanager's ``DedupStage.needsUpdate``
(alertmanager ``notify/notify.go``) says so, against the group's notification log entry
(what its last notification said, ``LogEntry``): a finding firing that the last did not
tell; every finding resolved when the last told some firing; a finding newly resolved
(with ``send_resolved``); or nothing new but ``repeat_interval`` passed since. Resolved
findings leave the group once a notification carried them (or none needed to), and an
empty group is dropped. Silenced findings are left out of a flush, as Alertmanager mutes
them.

The log is what makes a restart change nothing: rebuilt from the deliveries recorded,
it holds what each group's receiver was told, so findings read again produce no message
until something changes.
"""

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from kubeopera.models import Finding, FindingStatus
from kubeopera.settings.subscriptions import Subscription

GroupId = tuple[str, str]
"""(subscription name, group key)."""

Silenced = Callable[[Finding], bool]
"""Whether a finding is silenced now."""

RESOLVED = FindingStatus.RESOLVED


@dataclass(frozen=True)
class LogEntry:
    """What a group's last notification told its receiver (Alertmanager's nflog entry):
    the fingerprints firing and resolved in it, and when (UTC)."""

    firing: frozenset[str]
    resolved: frozenset[str]
    sent_at: datetime


@dataclass(frozen=True)
class Notification:
    """One message due to a subscription's receiver: the group's ``firing`` and
    ``resolved`` findings; ``new``: the fingerprints firing that its last notification
    did not tell (PagerDuty triggers only those, unless ``repeat``); ``repeat``: nothing
    changed, ``repeat_interval`` passed; ``due_at``: the flush that made it (UTC);
    ``settled``: the group's resolved findings at the flush, which leave it once this
    is told."""

    subscription: Subscription
    group_key: str
    firing: tuple[Finding, ...]
    resolved: tuple[Finding, ...]
    new: frozenset[str]
    repeat: bool
    due_at: datetime
    settled: tuple[Finding, ...] = ()

    @property
    def group(self) -> GroupId:
        return (self.subscription.name, self.group_key)

    def entry(self, sent_at: datetime) -> LogEntry:
        """The log entry once this is delivered (or refused for good) at ``sent_at``."""
        return LogEntry(
            frozenset(f.fingerprint for f in self.firing),
            frozenset(f.fingerprint for f in self.resolved),
            sent_at,
        )


def group_key(subscription: Subscription, finding: Finding) -> str:
    """The group's key: its ``group_by`` values, ``name=value`` joined by commas.

    >>> from datetime import UTC, datetime
    >>> from kubeopera.models import Subject
    >>> from kubeopera.settings.subscriptions import Subscription
    >>> at = datetime(2026, 3, 2, tzinfo=UTC)
    >>> finding = Finding(kind="drift", severity="high", fingerprint="f1", first_seen=at,
    ...     last_seen=at, summary="s", subject=Subject(cluster="prod", namespace="shop",
    ...     kind="Deployment", name="web"))
    >>> subscription = Subscription.model_validate({"name": "sre", "group_by": ["cluster",
    ...     "subject_kind"], "receiver": {"webhook": {"url": {"env": "URL"}}}})
    >>> group_key(subscription, finding)
    'cluster=prod,subject_kind=Deployment'
    """
    values = finding_fields(finding)
    return ",".join(f"{key}={values[key]}" for key in subscription.group_by)


def finding_fields(finding: Finding) -> dict[str, str]:
    """What ``group_by`` and a silence's matchers name (``GROUP_KEYS``), by name."""
    subject = finding.subject
    return {
        "kind": finding.kind.value,
        "severity": finding.severity.value,
        "cluster": subject.cluster,
        "namespace": subject.namespace,
        "subject_kind": subject.kind,
        "name": subject.name,
        "fingerprint": finding.fingerprint,
    }


def needs_update(
    entry: LogEntry | None,
    firing: frozenset[str],
    resolved: frozenset[str],
    send_resolved: bool,
    repeat_due: bool,
) -> bool:
    """Alertmanager's ``DedupStage.needsUpdate``: whether a group with these ``firing``
    and ``resolved`` fingerprints must notify, given its last notification ``entry``.

    >>> from datetime import UTC, datetime
    >>> told = LogEntry(frozenset({"a"}), frozenset(), datetime(2026, 1, 1, tzinfo=UTC))
    >>> needs_update(told, frozenset({"a"}), frozenset(), True, False)  # nothing new
    False
    >>> needs_update(told, frozenset({"a", "b"}), frozenset(), True, False)
    True
    >>> needs_update(told, frozenset(), frozenset({"a"}), False, False)  # all resolved
    True
    >>> needs_update(None, frozenset(), frozenset({"a"}), True, False)  # never told
    False
    """
    if entry is None:
        return bool(firing)
    if not firing <= entry.firing:
        return True
    if not firing:
        return bool(entry.firing)
    if send_resolved and not resolved <= entry.resolved:
        return True
    return repeat_due


@dataclass
class _Group:
    findings: dict[str, Finding]
    next_flush: datetime


@dataclass
class Router:
    """The groups of every subscription and their log.

    ``add`` routes a finding's latest state; ``due`` flushes the groups whose time has
    come and returns the notifications to send; ``current`` is what a group would tell
    now (a notification held back by a rate limit is made again from it when let go);
    ``sent`` records one as told (delivered, or refused by the receiver for good) so the
    group's log moves on. A notification not ``sent`` (its delivery failed) is made
    again at the group's next flush."""

    subscriptions: list[Subscription]
    log: dict[GroupId, LogEntry] = field(default_factory=dict)
    groups: dict[GroupId, _Group] = field(default_factory=dict)
    _where: dict[tuple[str, str], str] = field(default_factory=dict)
    """(subscription, fingerprint) -> the key of the group the finding is in."""
    _told: dict[tuple[str, str], str] = field(default_factory=dict)
    """(subscription, fingerprint) -> the key of the group whose receiver was told it
    firing (from the log)."""

    def __post_init__(self) -> None:
        self._by_name = {s.name: s for s in self.subscriptions}
        for gid, entry in self.log.items():
            self._told.update({(gid[0], f): gid[1] for f in entry.firing})

    def add(self, finding: Finding, labels: Mapping[str, str], now: datetime) -> int:
        """Route ``finding`` (its subject carrying ``labels``) to a group of each
        subscription it matches; returns how many. A finding stays in the group it
        joined (or whose receiver was told it firing, after a restart) until it leaves
        it resolved: a later state goes there even if it would match otherwise (its
        severity changed) or not at all, so no group keeps a stale state and no resolve
        is lost. A resolved finding goes only to a group that holds it or was told it
        firing: one never told needs no resolve."""
        routed = 0
        fingerprint = finding.fingerprint
        for subscription in self.subscriptions:
            at = (subscription.name, fingerprint)
            key = self._where.get(at) or self._told.get(at)
            if key is None:
                if finding.status == FindingStatus.RESOLVED:
                    continue
                if not subscription.match.matches(finding, labels):
                    continue
                key = group_key(subscription, finding)
            gid = (subscription.name, key)
            group = self.groups.get(gid)
            if group is None:
                group = self.groups[gid] = _Group({}, now + subscription.group_wait)
            group.findings[fingerprint] = finding
            self._where[at] = key
            routed += 1
        return routed

    def due(self, now: datetime, silenced: Silenced = lambda _: False) -> list[Notification]:
        """The notifications of the groups flushed at ``now`` (UTC). A group that needs
        none drops its resolved findings at once."""
        out: list[Notification] = []
        for gid, group in list(self.groups.items()):
            if group.next_flush > now:
                continue
            group.next_flush = now + self._by_name[gid[0]].group_interval
            notification = self.current(gid, now, silenced)
            if notification is not None:
                out.append(notification)
            else:
                self._drop(gid, [f for f in group.findings.values() if f.status == RESOLVED])
        return out

    def current(
        self, gid: GroupId, now: datetime, silenced: Silenced = lambda _: False
    ) -> Notification | None:
        """What group ``gid`` must tell at ``now``, or None: nothing (it is gone, nothing
        changed, or every finding of it is silenced: Alertmanager's MuteStage stops
        there, and the log keeps what its receiver knows)."""
        group = self.groups.get(gid)
        if group is None:
            return None
        subscription = self._by_name[gid[0]]
        settled = tuple(f for f in group.findings.values() if f.status == RESOLVED)
        shown = [f for f in group.findings.values() if not silenced(f)]
        if not shown:
            return None
        firing = tuple(f for f in shown if f.status == FindingStatus.OPEN)
        resolved = tuple(f for f in shown if f.status == RESOLVED)
        entry = self.log.get(gid)
        fired = frozenset(f.fingerprint for f in firing)
        ended = frozenset(f.fingerprint for f in resolved)
        send_resolved = subscription.send_resolved
        repeat_due = entry is not None and now - entry.sent_at >= subscription.repeat_interval
        if not needs_update(entry, fired, ended, send_resolved, repeat_due):
            return None
        told = entry.firing if entry is not None else frozenset()
        return Notification(
            subscription=subscription,
            group_key=gid[1],
            firing=firing,
            resolved=resolved if send_resolved else (),
            new=fired - told,
            repeat=not needs_update(entry, fired, ended, send_resolved, False),
            due_at=now,
            settled=settled,
        )

    def sent(self, notification: Notification, at: datetime) -> None:
        """``notification`` was told at ``at``: the group's log entry becomes it (none when
        nothing fires: the log holds only groups whose receivers know of firing
        findings), and the resolved findings of its flush leave the group (a newer state
        of one stays)."""
        gid = notification.group
        before = self.log.pop(gid, None)
        if before is not None:
            for fingerprint in before.firing:
                if self._told.get((gid[0], fingerprint)) == gid[1]:
                    del self._told[(gid[0], fingerprint)]
        entry = notification.entry(at)
        if entry.firing:  # an entry with nothing firing decides as no entry does
            self.log[gid] = entry
            self._told.update({(gid[0], f): gid[1] for f in entry.firing})
        self._drop(gid, notification.settled)

    def _drop(self, gid: GroupId, resolved: Iterable[Finding]) -> None:
        group = self.groups.get(gid)
        if group is None:
            return
        for finding in resolved:
            if group.findings.get(finding.fingerprint) is finding:
                del group.findings[finding.fingerprint]
                del self._where[(gid[0], finding.fingerprint)]
        if not group.findings:
            del self.groups[gid]
