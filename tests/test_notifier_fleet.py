"""A simulated fleet's findings through the notifier, replayed in time, to loopback
receivers that speak Slack's, PagerDuty's and a webhook's protocols: each subscription
gets exactly the messages its match, grouping and the silences call for, worked out
here from the findings' states."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from pydantic import SecretStr
from receivers import PagerDuty, Slack, Webhook

from kubeopera.alerts.delivery import Poster
from kubeopera.alerts.notifier import Notifier
from kubeopera.alerts.preview import replay
from kubeopera.alerts.records import finding_states, save_silence
from kubeopera.alerts.silences import Silence
from kubeopera.collectors.simulator import FleetSpec, simulate
from kubeopera.models import Finding, FindingKind, FindingStatus
from kubeopera.settings import DEFAULT_PROCESSORS
from kubeopera.settings.durations import EARLIEST
from kubeopera.settings.subscriptions import Delivery, Subscriptions
from kubeopera.sinks.clickhouse import ChdbBackend, Store
from kubeopera.streams import registry
from kubeopera.streams.embedded import EmbeddedEngine

pytestmark = pytest.mark.slow

FLEET = FleetSpec(
    clusters=2,
    pods_per_cluster=40,
    start=datetime(2026, 3, 2, tzinfo=UTC),
    duration=timedelta(days=4),  # drift in both clusters; a restart storm on day 4
    resolution=timedelta(minutes=15),
    seed=5,
)
HOUR = timedelta(hours=1)
ROUTING_KEY = "R0UT1NGK3Y0123456789abcdefABCDEF"
SILENCED = "report-builder"
PAGERDUTY_SEVERITY = {
    "critical": "critical", "high": "error", "medium": "warning", "low": "info", "info": "info"
}  # fmt: skip


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fleet")
    with Store(ChdbBackend(folder), raw_retention_days=0) as store:
        EmbeddedEngine(store, registry.build(list(DEFAULT_PROCESSORS))).run(simulate(FLEET))
    return folder


@pytest.fixture
def receivers() -> Iterator[tuple[Slack, PagerDuty, Webhook]]:
    with Slack() as slack, PagerDuty() as pagerduty, Webhook() as webhook:
        yield slack, pagerduty, webhook


def subscriptions(pagerduty: PagerDuty) -> Subscriptions:
    return Subscriptions.model_validate(
        {
            "subscriptions": [
                {
                    "name": "drift-to-slack",
                    "match": {
                        "include": [{"kind": ["drift"]}],
                        "exclude": [{"namespace": ["search"]}],
                    },
                    "receiver": {"slack": {"webhook_url": {"env": "X"}}},
                    "group_wait": "0s",
                    "group_interval": "1h",
                    "repeat_interval": "30d",
                },
                {
                    "name": "anomalies-to-pagerduty",
                    "match": {"include": [{"kind": ["anomaly"], "severity": "medium"}]},
                    "receiver": {"pagerduty": {"routing_key": {"env": "X"}, "url": pagerduty.url}},
                    "group_wait": "0s",
                    "group_interval": "1h",
                    "repeat_interval": "30d",
                },
                {
                    "name": "checkout-team",
                    "match": {"include": [{"labels": {"team": "checkout"}}]},
                    "receiver": {"webhook": {"url": {"env": "X"}}},
                    "group_by": ["cluster"],
                    "group_wait": "1h",
                    "group_interval": "1h",
                    "repeat_interval": "30d",
                },
            ]
        }
    )


def run_notifier(
    fleet: Path, slack: Slack, pagerduty: PagerDuty, webhook: Webhook
) -> list[Finding]:
    """Replay every finding state through a notifier; the states, oldest first."""
    with Store(ChdbBackend(fleet), raw_retention_days=0) as store:
        states = finding_states(store, EARLIEST)
        first = states[0].last_seen
        silence = Silence.create([f"name={SILENCED}"], first, timedelta(days=30), "sre", "known")
        save_silence(store, silence, first)
        secrets = {
            ("drift-to-slack", "slack.webhook_url"): SecretStr(slack.url),
            ("anomalies-to-pagerduty", "pagerduty.routing_key"): SecretStr(ROUTING_KEY),
            ("checkout-team", "webhook.url"): SecretStr(webhook.url),
        }
        delivery = Delivery()
        notifier = Notifier(
            subscriptions(pagerduty), secrets, store, Poster(delivery, requests.Session())
        )

        def step(found: list[Finding], now: datetime) -> None:
            notifier.feed(found, now)
            report = notifier.step(now)
            assert report.failed == 0

        replay(states, states[-1].last_seen + timedelta(days=1), notifier.router, step)
    return states


def test_each_subscription_gets_the_messages_its_match_grouping_and_silences_call_for(
    fleet: Path, receivers: tuple[Slack, PagerDuty, Webhook]
) -> None:
    slack, pagerduty, webhook = receivers
    states = run_notifier(fleet, slack, pagerduty, webhook)
    kinds = {f.kind for f in states}
    assert {FindingKind.DRIFT, FindingKind.ANOMALY} <= kinds
    assert any(f.subject.name == SILENCED for f in states)  # the silence had work to do

    # Slack, one group per finding, no wait: every state of every drift finding outside
    # search, but the silenced one's, is a message when it happens.
    drift = [
        f
        for f in states
        if f.kind == FindingKind.DRIFT
        and f.subject.namespace != "search"
        and f.subject.name != SILENCED
    ]
    assert len(drift) >= 4
    messages = slack.messages()
    assert len(messages) == len(drift)
    for message, state in zip(messages, drift, strict=True):
        header = message["blocks"][0]["text"]["text"]
        body = message["blocks"][1]["text"]["text"]
        assert state.summary in body
        assert header == (
            f"resolved · 1 finding · fingerprint={state.fingerprint}"
            if state.status == FindingStatus.RESOLVED
            else f"MEDIUM · 1 finding · fingerprint={state.fingerprint}"
        )

    # PagerDuty: a trigger when an anomaly opens, a resolve when it resolves; one incident
    # per anomaly, none open at the end.
    anomalies = [f for f in states if f.kind == FindingKind.ANOMALY]
    expected = [
        ("trigger" if f.status == FindingStatus.OPEN else "resolve", f.fingerprint)
        for f in anomalies
    ]
    events = pagerduty.events()
    assert [(e["event_action"], e["dedup_key"]) for e in events] == expected
    assert pagerduty.incidents == [f.fingerprint for f in anomalies if f.status == "open"]
    assert pagerduty.open == set()
    for event, state in zip(events, anomalies, strict=True):
        if event["event_action"] == "trigger":
            assert event["payload"]["summary"] == state.summary
            assert event["payload"]["source"] == state.subject.cluster
            assert event["payload"]["severity"] == PAGERDUTY_SEVERITY[state.severity]

    # The webhook: subjects labelled team=checkout, grouped by cluster, told an hour
    # after a group starts, then on its hourly grid.
    checkout = [f for f in states if f.subject.name == "checkout-api"]
    assert {f.subject.cluster for f in checkout} == {"prod-us-east-1", "staging-eu-west-1"}
    told = [
        (g["groupKey"], sorted(f["fingerprint"] for f in g["firing"]),
         sorted(f["fingerprint"] for f in g["resolved"]))
        for g in webhook.groups()
    ]  # fmt: skip
    assert told == expected_webhook(checkout)


def expected_webhook(states: list[Finding]) -> list[tuple[str, list[str], list[str]]]:
    """By hand for these states: in each cluster the episodes of checkout-api do not
    overlap, so a group opens with the first state, is told (its open findings) an hour
    later, and its resolves at the first hour of its grid at or after they happen."""
    out: list[tuple[datetime, str, list[str], list[str]]] = []
    for cluster in sorted({f.subject.cluster for f in states}):
        mine = [f for f in states if f.subject.cluster == cluster]
        opened = min(f.last_seen for f in mine)
        firing = sorted({f.fingerprint for f in mine if f.status == FindingStatus.OPEN})
        out.append((opened + HOUR, f"cluster={cluster}", firing, []))
        ended = max(f.last_seen for f in mine if f.status == FindingStatus.RESOLVED)
        grid = opened + HOUR
        while grid < ended:
            grid += HOUR
        resolved = sorted({f.fingerprint for f in mine if f.status == FindingStatus.RESOLVED})
        out.append((grid, f"cluster={cluster}", [], resolved))
    return [(key, firing, resolved) for _, key, firing, resolved in sorted(out)]
