"""Alertmanager's grouping and deduplication of findings (``alerts.grouping``), worked by
hand on a timeline of minutes: group_wait, group_interval, repeat_interval, resolves with
and without send_resolved, silences, a restart with the notification log, and the
preview that replays past states."""

from datetime import UTC, datetime, timedelta

import pytest

from kubeopera.alerts.grouping import Notification, Router
from kubeopera.alerts.preview import preview
from kubeopera.alerts.silences import Silence, silenced_at
from kubeopera.models import Finding, Subject
from kubeopera.settings.subscriptions import Subscription

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def finding(
    name: str, at: datetime, status: str = "open", cluster: str = "prod", severity: str = "high"
) -> Finding:
    return Finding(
        kind="drift",
        severity=severity,
        fingerprint=f"fp-{name}",
        subject=Subject(cluster=cluster, namespace="shop", kind="Deployment", name=name),
        first_seen=T0,
        last_seen=at,
        status=status,
        summary=f"{name} drifted",
    )


def subscription(**settings: object) -> Subscription:
    return Subscription.model_validate(
        {
            "name": "sre",
            "receiver": {"webhook": {"url": {"env": "HOOK"}}},
            "group_by": ["cluster"],
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "4h",
            **settings,
        }
    )


def fingerprints(notification: Notification) -> tuple[list[str], list[str]]:
    return (
        sorted(f.fingerprint for f in notification.firing),
        sorted(f.fingerprint for f in notification.resolved),
    )


def flush(router: Router, now: datetime) -> list[Notification]:
    """Flush at ``now`` and count every notification as told."""
    out = router.due(now)
    for notification in out:
        router.sent(notification, now)
    return out


def test_a_group_waits_group_wait_then_tells_changes_every_group_interval() -> None:
    router = Router([subscription()])
    router.add(finding("a", T0), {}, T0)
    router.add(finding("b", T0 + timedelta(seconds=10)), {}, T0 + timedelta(seconds=10))
    router.add(finding("c", T0, cluster="dev"), {}, T0)
    assert flush(router, T0 + timedelta(seconds=29)) == []  # group_wait not over
    first = flush(router, T0 + timedelta(seconds=30))
    assert {n.group_key: fingerprints(n) for n in first} == {
        "cluster=prod": (["fp-a", "fp-b"], []),
        "cluster=dev": (["fp-c"], []),
    }
    router.add(finding("d", T0 + MINUTE), {}, T0 + MINUTE)
    assert flush(router, T0 + 5 * MINUTE) == []  # group_interval runs from the flush
    (second,) = flush(router, T0 + 5 * MINUTE + timedelta(seconds=30))
    assert fingerprints(second) == (["fp-a", "fp-b", "fp-d"], [])  # the whole group
    assert second.new == {"fp-d"} and not second.repeat  # what PagerDuty triggers


def test_nothing_new_tells_nothing_until_repeat_interval() -> None:
    router = Router([subscription()])
    router.add(finding("a", T0), {}, T0)
    flush(router, T0 + timedelta(seconds=30))  # told at 09:00:30
    told_at = T0 + timedelta(seconds=30)
    flushes = [told_at + k * 5 * MINUTE for k in range(1, 49)]  # every 5 m for 4 h
    repeats = [n for at in flushes for n in flush(router, at)]
    assert len(repeats) == 1  # 09:00:30 + 4 h is the 48th flush
    assert repeats[0].repeat and repeats[0].new == frozenset()
    assert repeats[0].due_at == told_at + timedelta(hours=4)


def test_a_resolve_is_told_once_and_leaves_the_group() -> None:
    router = Router([subscription()])
    router.add(finding("a", T0), {}, T0)
    router.add(finding("b", T0), {}, T0)
    flush(router, T0 + timedelta(seconds=30))
    router.add(finding("a", T0 + MINUTE, "resolved"), {}, T0 + MINUTE)
    (told,) = flush(router, T0 + 5 * MINUTE + timedelta(seconds=30))
    assert fingerprints(told) == (["fp-b"], ["fp-a"])
    assert flush(router, T0 + 10 * MINUTE + timedelta(seconds=30)) == []  # told once
    router.add(finding("b", T0 + 11 * MINUTE, "resolved"), {}, T0 + 11 * MINUTE)
    (last,) = flush(router, T0 + 15 * MINUTE + timedelta(seconds=30))
    assert fingerprints(last) == ([], ["fp-b"])
    assert router.groups == {}  # nothing left: the group is gone


def test_without_send_resolved_only_the_end_of_all_is_told_and_it_shows_nothing() -> None:
    router = Router([subscription(send_resolved=False)])
    router.add(finding("a", T0), {}, T0)
    router.add(finding("b", T0), {}, T0)
    flush(router, T0 + timedelta(seconds=30))
    router.add(finding("a", T0 + MINUTE, "resolved"), {}, T0 + MINUTE)
    assert flush(router, T0 + 5 * MINUTE + timedelta(seconds=30)) == []
    router.add(finding("b", T0 + 6 * MINUTE, "resolved"), {}, T0 + 6 * MINUTE)
    (cleared,) = flush(router, T0 + 10 * MINUTE + timedelta(seconds=30))
    assert fingerprints(cleared) == ([], [])  # the log is cleared; no request is made
    assert ("sre", "cluster=prod") not in router.log  # its receiver knows nothing fires


def test_a_finding_resolved_before_anyone_was_told_is_never_told() -> None:
    router = Router([subscription()])
    router.add(finding("a", T0), {}, T0)
    router.add(finding("a", T0 + timedelta(seconds=10), "resolved"), {}, T0)
    assert flush(router, T0 + timedelta(seconds=30)) == []
    assert router.groups == {}
    router.add(finding("z", T0, "resolved"), {}, T0)  # no group, nothing told: ignored
    assert router.groups == {}


def test_silenced_findings_are_left_out_and_a_silenced_group_tells_nothing() -> None:
    router = Router([subscription()])
    router.add(finding("a", T0), {}, T0)
    router.add(finding("b", T0), {}, T0)
    silence = Silence.create(["name=a"], T0, timedelta(hours=1), "ana", "known")
    (told,) = router.due(T0 + timedelta(seconds=30), silenced_at([silence], T0))
    assert fingerprints(told) == (["fp-b"], [])
    only_a = Router([subscription()])
    only_a.add(finding("a", T0), {}, T0)
    assert only_a.due(T0 + timedelta(seconds=30), silenced_at([silence], T0)) == []
    after = T0 + timedelta(hours=1)  # the silence ended: a is told at the next flush
    (late,) = only_a.due(after, silenced_at([silence], after))
    assert fingerprints(late) == (["fp-a"], [])


def test_a_restart_with_the_log_tells_nothing_twice_and_then_the_resolve() -> None:
    before = Router([subscription()])
    before.add(finding("a", T0), {}, T0)
    flush(before, T0 + timedelta(seconds=30))
    restarted = Router([subscription()], log=dict(before.log))  # read back from the store
    restarted.add(finding("a", T0), {}, T0 + 20 * MINUTE)  # the topic read again
    assert flush(restarted, T0 + 21 * MINUTE) == []
    restarted.add(finding("a", T0 + 22 * MINUTE, "resolved"), {}, T0 + 22 * MINUTE)
    (resolve,) = flush(restarted, T0 + 26 * MINUTE)
    assert fingerprints(resolve) == ([], ["fp-a"])
    again = Router([subscription()], log=dict(restarted.log))  # and once more
    again.add(finding("a", T0 + 22 * MINUTE, "resolved"), {}, T0 + 30 * MINUTE)
    assert again.groups == {}  # its receiver knows it resolved: nothing to do


def test_preview_replays_states_in_time_with_the_silences_of_then() -> None:
    states = [
        finding("a", T0),
        finding("a", T0 + timedelta(seconds=20), "resolved"),  # within group_wait: never told
        finding("b", T0 + 10 * MINUTE),
        finding("b", T0 + 40 * MINUTE, "resolved"),
        finding("c", T0 + 50 * MINUTE, cluster="dev"),
    ]
    silence = Silence.create(["cluster=dev"], T0 + 45 * MINUTE, timedelta(minutes=30), "x", "y")
    out = preview([subscription()], states, [silence], {}, T0 + 3 * timedelta(hours=1))
    told = [(n.due_at - T0, n.group_key, *fingerprints(n)) for n in out]
    assert told == [
        # b arrives 09:10 into a new group: group_wait 30 s
        (10 * MINUTE + timedelta(seconds=30), "cluster=prod", ["fp-b"], []),
        # its resolve at 09:40 waits for the flush on the 5-minute grid from 09:10:30
        (40 * MINUTE + timedelta(seconds=30), "cluster=prod", [], ["fp-b"]),
        # c at 09:50 is silenced until 10:15; told at the first flush after it ends
        (75 * MINUTE + timedelta(seconds=30), "cluster=dev", ["fp-c"], []),
    ]


def test_a_finding_stays_in_its_group_when_its_severity_changes_and_resolves_there() -> None:
    router = Router(
        [subscription(group_by=["severity"], match={"include": [{"severity": "high"}]})]
    )
    router.add(finding("a", T0), {}, T0)  # high
    flush(router, T0 + timedelta(seconds=30))
    worse = finding("a", T0 + MINUTE, severity="critical")
    assert router.add(worse, {}, T0 + MINUTE) == 1
    assert list(router.groups) == [("sre", "severity=high")]  # no second group, no stale state
    milder = finding("a", T0 + 2 * MINUTE, severity="medium")
    assert router.add(milder, {}, T0 + 2 * MINUTE) == 1  # no longer matches, still its own
    ended = finding("a", T0 + 3 * MINUTE, "resolved", severity="low")
    router.add(ended, {}, T0 + 3 * MINUTE)
    (resolve,) = flush(router, T0 + 5 * MINUTE + timedelta(seconds=30))
    assert (resolve.group_key, *fingerprints(resolve)) == ("severity=high", [], ["fp-a"])
    assert router.groups == {}
    router.add(finding("a", T0 + 9 * MINUTE), {}, T0 + 9 * MINUTE)  # opens again: matched anew
    assert list(router.groups) == [("sre", "severity=high")]


def test_after_a_restart_a_resolve_goes_to_the_group_told_even_if_it_matches_no_more() -> None:
    high = {"include": [{"severity": "high"}]}
    before = Router([subscription(match=high)])
    before.add(finding("a", T0), {}, T0)
    flush(before, T0 + timedelta(seconds=30))
    restarted = Router([subscription(match=high)], log=dict(before.log))
    ended = finding("a", T0 + MINUTE, "resolved", severity="medium")  # resolves as medium
    assert restarted.add(ended, {}, T0 + 10 * MINUTE) == 1
    (resolve,) = flush(restarted, T0 + 11 * MINUTE)
    assert fingerprints(resolve) == ([], ["fp-a"])


def test_after_a_restart_old_resolved_findings_do_not_join_a_firing_group() -> None:
    before = Router([subscription()])
    before.add(finding("a", T0), {}, T0)
    flush(before, T0 + timedelta(seconds=30))
    restarted = Router([subscription()], log=dict(before.log))
    restarted.add(finding("a", T0), {}, T0 + 10 * MINUTE)  # the topic read again
    for name in ("old1", "old2"):  # resolved long ago, told long ago: not in the log
        restarted.add(finding(name, T0, "resolved"), {}, T0 + 10 * MINUTE)
    assert flush(restarted, T0 + 11 * MINUTE) == []
    assert list(restarted.groups[("sre", "cluster=prod")].findings) == ["fp-a"]


def test_a_silenced_group_keeps_its_log_and_tells_nothing_again_when_the_silence_ends() -> None:
    router = Router([subscription()])
    router.add(finding("a", T0), {}, T0)
    flush(router, T0 + timedelta(seconds=30))
    silence = Silence.create(["name=a"], T0 + MINUTE, timedelta(minutes=10), "ana", "known")
    during = T0 + 5 * MINUTE + timedelta(seconds=30)
    assert router.due(during, silenced_at([silence], during)) == []
    assert router.log[("sre", "cluster=prod")].firing == {"fp-a"}  # as Alertmanager mutes
    after = T0 + 15 * MINUTE + timedelta(seconds=30)
    assert router.due(after, silenced_at([silence], after)) == []  # its receiver knows it


@pytest.mark.parametrize(
    ("matcher", "said"),
    [
        ("pod=web", "--match pod=web: 'pod' is not one of kind, severity, cluster"),
        ("kind=Deployment", "--match kind=Deployment: matches no kind (drift, anomaly, risk,"
         " budget, rightsizing, incident) (a subject's kind, as Deployment, is subject_kind)"),
        ("severity=urgent", "--match severity=urgent: matches no severity (info, low, medium,"),
        ("namespace=", "--match namespace=: an empty pattern matches only an empty value"),
        ("name=web(", "--match name=web(: not a regular expression: missing ), unterminated"),
        ("namespace", "--match 'namespace': write FIELD=REGEX, as cluster=prod"),
    ],
)  # fmt: skip
def test_a_silence_that_could_never_match_what_was_meant_is_refused(
    matcher: str, said: str
) -> None:
    with pytest.raises(ValueError) as refused:
        Silence.create([matcher], T0, timedelta(hours=1), "ana", "why")
    assert str(refused.value).startswith(said), str(refused.value)
