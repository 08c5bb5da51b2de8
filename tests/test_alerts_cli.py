"""``kubeopera alerts`` as a user runs it: a bad subscription file stops it in one line
before anything starts; silences made, listed and ended; ``alerts test`` through the real
formatter to loopback receivers; ``alerts preview`` over the store's findings."""

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cli_tools import run_kubeopera, stored
from receivers import PagerDuty, Scripted, Slack

from kubeopera.models import Finding, Subject
from kubeopera.sinks.clickhouse import ChdbBackend, Store
from kubeopera.streams.frames import findings_frame

pytestmark = pytest.mark.slow

ROUTING_KEY = "R0UT1NGK3Y0123456789abcdefABCDEF"
NOWHERE = "http://127.0.0.1:9/v2/enqueue"
FILE = """\
subscriptions:
  - name: team-slack
    match:
      include:
        - namespace: [shop]
    receiver:
      slack:
        webhook_url: {env: SLACK_URL}
    group_by: [namespace]
    group_wait: 1m
  - name: oncall
    receiver:
      pagerduty:
        routing_key: {env: PD_KEY}
        url: PD_URL
"""


def subscriptions(tmp_path: Path, text: str = FILE, pd_url: str = NOWHERE) -> Path:
    path = tmp_path / "subscriptions.yaml"
    path.write_text(text.replace("PD_URL", pd_url))
    return path


SECRETS = {"SLACK_URL": "http://127.0.0.1:9/services/T0/B0/s3cr3t", "PD_KEY": ROUTING_KEY}


@pytest.mark.parametrize(
    ("edit", "said"),
    [
        (("    group_wait: 1m", "    group_wiat: 1m"),
         ":10: subscriptions[0].group_wiat: Extra inputs are not permitted"),
        (("        - namespace: [shop]", "        - namespace: ['sh(op']"),
         ":5: subscriptions[0].match.include[0].namespace: Value error, 'sh(op' is not a"
         " regular expression: missing ), unterminated subpattern at position 2"),
        (("{env: PD_KEY}", "{env: PD_KEY_UNSET}"),
         ":14: subscriptions[1].receiver.pagerduty.routing_key: the environment variable"
         " PD_KEY_UNSET is not set or empty"),
    ],
)  # fmt: skip
def test_a_bad_subscription_file_is_one_line_and_nothing_starts(
    tmp_path: Path, edit: tuple[str, str], said: str
) -> None:
    path = subscriptions(tmp_path, FILE.replace(*edit))
    store = tmp_path / "store"
    result = run_kubeopera(store, "alerts", "run", "-s", str(path), extra_env=SECRETS)
    assert result.returncode == 1
    assert result.stderr == f"kubeopera: error: {path}{said}\n"
    assert not store.exists()  # no store opened, no broker asked
    assert "s3cr3t" not in result.stderr


def test_silences_are_made_listed_and_ended(tmp_path: Path) -> None:
    store = tmp_path / "store"
    made = run_kubeopera(
        store, "alerts", "silence", "-m", "namespace=shop|cart", "-m", "kind=drift",
        "--for", "3h", "-c", "deploy window", "--by", "ana",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    silence_id = made.stdout.split()[1]
    listed = run_kubeopera(store, "alerts", "silences")
    assert silence_id in listed.stdout and "kind=drift, namespace=shop|cart" in listed.stdout
    assert "active" in listed.stdout and "deploy window" in listed.stdout
    rows = stored(
        store, "SELECT dateDiff('second', starts_at, ends_at), state FROM v_alert_silences"
    )
    assert rows.rows() == [(3 * 3600, "active")]
    ended = run_kubeopera(store, "alerts", "unsilence", silence_id)
    assert ended.returncode == 0 and f"Silence {silence_id} ended" in ended.stdout
    assert silence_id not in run_kubeopera(store, "alerts", "silences").stdout
    assert "ended" in run_kubeopera(store, "alerts", "silences", "--all").stdout
    assert stored(store, "SELECT state FROM v_alert_silences").rows() == [("expired",)]
    bad = run_kubeopera(store, "alerts", "silence", "-m", "pod=web", "-c", "x")
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1
    assert "'pod' is not one of kind, severity" in bad.stderr
    unknown = run_kubeopera(store, "alerts", "unsilence", "nope")
    assert unknown.returncode == 1
    said = "kubeopera: error: no silence 'nope': kubeopera alerts silences lists them\n"
    assert unknown.stderr == said


def alerts_test(
    tmp_path: Path, name: str, path: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    return run_kubeopera(tmp_path / "store", "alerts", "test", name, "-s", str(path), extra_env=env)


def test_alerts_test_sends_a_sample_through_the_real_formatter(tmp_path: Path) -> None:
    with Slack() as slack, PagerDuty() as pagerduty:
        path = subscriptions(tmp_path, pd_url=pagerduty.url)
        env = {**SECRETS, "SLACK_URL": slack.url}
        sent = alerts_test(tmp_path, "team-slack", path, env)
        assert sent.returncode == 0, sent.stderr
        assert sent.stdout.strip() == "message (1 finding): attempt 1: 200 delivered (ok)"
        (message,) = slack.messages()
        assert "KubeOpera test of subscription team-slack" in message["blocks"][1]["text"]["text"]
        paged = alerts_test(tmp_path, "oncall", path, env)
        assert paged.returncode == 0, paged.stderr
        actions = [e["event_action"] for e in pagerduty.events()]
        assert actions == ["trigger", "resolve"] and pagerduty.open == set()
    with Slack() as slack, PagerDuty() as pagerduty:  # receivers that refuse the sample
        slack.script.append(Scripted(404, "no_service"))
        pagerduty.script.append(Scripted(400, '{"status": "invalid event"}'))
        path = subscriptions(tmp_path, pd_url=pagerduty.url)
        env = {"SLACK_URL": slack.url}  # oncall's key unset: team-slack needs only its own
        refused = alerts_test(tmp_path, "team-slack", path, env)
        assert refused.returncode == 1
        assert refused.stdout == "message (1 finding): attempt 1: 404 refused (no_service)\n"
        env = {**SECRETS, "SLACK_URL": slack.url}
        paged = alerts_test(tmp_path, "oncall", path, env)
        assert paged.returncode == 1 and len(pagerduty.received) == 1  # no resolve after it
    gone = alerts_test(tmp_path, "oncall", path, env)
    assert gone.returncode == 1
    assert gone.stderr.endswith("kubeopera: error: oncall: the receiver did not take the sample\n")
    assert ROUTING_KEY not in gone.stdout + gone.stderr
    told = stored(tmp_path / "store", "SELECT count() AS n FROM v_alert_deliveries WHERE told")
    assert told["n"][0] == 0  # a test changes no group's log


def test_preview_prints_what_would_have_been_sent(tmp_path: Path) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    opened = now - timedelta(hours=3)

    def state(name: str, namespace: str, at: datetime, status: str = "open") -> Finding:
        return Finding(
            kind="drift", severity="high", fingerprint=f"fp-{name}", first_seen=opened,
            last_seen=at, status=status, summary=f"{name} drifted",
            subject=Subject(cluster="prod", namespace=namespace, kind="Deployment", name=name),
        )  # fmt: skip

    states = [
        state("web", "shop", opened),
        state("cart", "shop", opened + timedelta(seconds=20)),
        state("web", "shop", opened + timedelta(hours=1), "resolved"),
        state("db", "data", opened + timedelta(hours=2)),
        state("old", "shop", now - timedelta(days=3)),  # before --since
    ]
    with Store(ChdbBackend(tmp_path / "store"), raw_retention_days=0) as store:
        store.insert("findings", findings_frame(states))
    path = subscriptions(tmp_path)
    shown = run_kubeopera(tmp_path / "store", "alerts", "preview", "-s", str(path), "--since", "1d")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()

    # team-slack: shop's group waits a minute (web and cart), then its 5-minute grid;
    # oncall: a group per finding, 30 s; nobody was told "old" (before --since).
    def at(offset: timedelta) -> str:
        return f"{opened + offset:%Y-%m-%d %H:%M:%S}"

    assert lines == [
        f"{at(timedelta(seconds=30))} oncall [fingerprint=fp-web] 1 firing, 0 resolved",
        "    open     high     web drifted",
        f"{at(timedelta(seconds=50))} oncall [fingerprint=fp-cart] 1 firing, 0 resolved",
        "    open     high     cart drifted",
        f"{at(timedelta(minutes=1))} team-slack [namespace=shop] 2 firing, 0 resolved",
        "    open     high     web drifted",
        "    open     high     cart drifted",
        f"{at(timedelta(hours=1, seconds=30))} oncall [fingerprint=fp-web] 0 firing, 1 resolved",
        "    resolved high     web drifted",
        f"{at(timedelta(hours=1, minutes=1))} team-slack [namespace=shop] 1 firing, 1 resolved",
        "    open     high     cart drifted",
        "    resolved high     web drifted",
        f"{at(timedelta(hours=2, seconds=30))} oncall [fingerprint=fp-db] 1 firing, 0 resolved",
        "    open     high     db drifted",
        f"Store: embedded ClickHouse (chDB) at {tmp_path / 'store'}, database kubeopera",
    ]
