"""Alert subscriptions: the YAML's rules route findings as Robusta's scopes do (AND inside
a rule, OR between rules, exclusions win), secrets come only from the environment or
files, and a bad file is one line naming the file, line and field, never a secret."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kubeopera.models import Finding, Subject
from kubeopera.settings.subscriptions import (
    Match,
    Rule,
    SubscriptionError,
    load_subscriptions,
    read_subscriptions,
)

AT = datetime(2026, 3, 2, tzinfo=UTC)
HOOK = "https://hooks.slack.example/services/T000/B000/XXXXsecretXXXX"


def finding(kind: str = "anomaly", severity: str = "high", namespace: str = "payments",
            cluster: str = "prod-eu") -> Finding:  # fmt: skip
    return Finding(kind=kind, severity=severity, fingerprint=f"{kind}/{namespace}",
                   first_seen=AT, last_seen=AT, summary="s",
                   subject=Subject(cluster=cluster, namespace=namespace, kind="Deployment",
                                   name="api"))  # fmt: skip


@pytest.mark.parametrize(
    ("rule", "labels", "expected"),
    [
        (Rule(), {}, True),  # an empty rule matches everything
        (Rule(kind=["anomaly", "budget"]), {}, True),
        (Rule(kind=["drift"]), {}, False),
        (Rule(severity="high"), {}, True),  # at least high: high
        (Rule(severity="medium"), {}, True),
        (Rule(severity="critical"), {}, False),
        (Rule(namespace=["pay.*"]), {}, True),  # a regular expression, in full
        (Rule(namespace=["pay"]), {}, False),  # not a prefix match
        (Rule(cluster=["staging", "prod-.*"]), {}, True),  # OR inside a list
        (Rule(labels={"team": "pay.*"}), {"team": "payments"}, True),
        (Rule(labels={"team": "pay.*"}), {}, False),  # the key must be there
        (Rule(kind=["anomaly"], namespace=["checkout"]), {}, False),  # AND inside a rule
    ],
)
def test_a_rule_matches_when_every_field_given_does(
    rule: Rule, labels: dict[str, str], expected: bool
) -> None:
    assert rule.matches(finding(), labels) is expected


def test_rules_are_or_between_and_an_exclusion_wins() -> None:
    either = Match(include=[Rule(namespace=["checkout"]), Rule(kind=["anomaly"])])
    assert either.matches(finding(), {})
    assert not either.matches(finding(kind="drift"), {})
    but_not = Match(include=either.include, exclude=[Rule(cluster=["prod-.*"], severity="high")])
    assert not but_not.matches(finding(), {})
    assert but_not.matches(finding(severity="medium"), {})  # below the exclusion's severity
    assert Match().matches(finding(kind="budget"), {})  # no include: every finding


GOOD = """\
subscriptions:
  - name: finops-slack
    match:
      include:
        - kind: [anomaly, budget]
          severity: medium
      exclude:
        - namespace: [kube-system]
    receiver:
      slack:
        webhook_url: {env: KUBEOPERA_TEST_SLACK}
    group_by: [cluster, namespace]
    group_wait: 30s
    group_interval: 5m
    repeat_interval: 4h
    rate_limit: {messages: 20, per: 1m}
  - name: oncall
    receiver:
      pagerduty:
        routing_key: {file: KEYFILE}
"""


def write(tmp_path: Path, text: str) -> Path:
    key = tmp_path / "routing.key"
    key.write_text("R0UT1NGKEY0000000000000000000000\n")
    path = tmp_path / "subscriptions.yaml"
    path.write_text(text.replace("KEYFILE", str(key)))
    return path


def test_a_good_file_loads_with_its_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBEOPERA_TEST_SLACK", HOOK)
    loaded, secrets = load_subscriptions(write(tmp_path, GOOD))
    finops, oncall = loaded.subscriptions
    assert finops.group_by == ["cluster", "namespace"]
    assert (finops.group_wait, finops.repeat_interval) == (
        timedelta(seconds=30),
        timedelta(hours=4),
    )
    assert finops.rate_limit is not None and finops.rate_limit.per == timedelta(minutes=1)
    assert oncall.group_by == ["fingerprint"]  # a group per finding unless told otherwise
    assert secrets[("finops-slack", "slack.webhook_url")].get_secret_value() == HOOK
    assert (
        secrets[("oncall", "pagerduty.routing_key")].get_secret_value() == "R0UT1NGKEY" + "0" * 22
    )
    assert HOOK not in repr(secrets) and HOOK not in repr(loaded)


@pytest.mark.parametrize(
    ("edit", "line", "message"),
    [
        (("    group_wait: 30s", "    group_wiat: 30s"), 13,
         "subscriptions[0].group_wiat: Extra inputs are not permitted"),
        (("          severity: medium", "          severity: urgent"), 6,
         "subscriptions[0].match.include[0].severity: Input should be"),
        (("        - namespace: [kube-system]", "        - namespace: ['kube-(system']"), 8,
         "subscriptions[0].match.exclude[0].namespace: Value error, 'kube-(system' is not a"
         " regular expression"),
        (("    group_by: [cluster, namespace]", "    group_by: [cluster, pod]"), 12,
         "subscriptions[0].group_by: Value error, 'pod' is not one of"),
        (("    group_wait: 30s", "    group_wait: soon"), 13,
         "subscriptions[0].group_wait: Value error, invalid duration 'soon'"),
        (("        webhook_url: {env: KUBEOPERA_TEST_SLACK}", f"        webhook_url: {HOOK}"), 11,
         "subscriptions[0].receiver.slack.webhook_url: Value error, a secret is never written"),
        (("  - name: oncall", "  - name: finops-slack"), 1,
         "subscriptions: Value error, subscription names must be unique: finops-slack"),
    ],
)  # fmt: skip
def test_a_bad_file_is_one_line_naming_file_line_and_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, edit: tuple[str, str], line: int,
    message: str,
) -> None:  # fmt: skip
    monkeypatch.setenv("KUBEOPERA_TEST_SLACK", HOOK)
    old, new = edit
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new))
    with pytest.raises(SubscriptionError) as refused:
        load_subscriptions(path)
    said = str(refused.value)
    assert said.startswith(f"{path}:{line}: {message}"), said
    assert "\n" not in said and HOOK not in said


def test_a_missing_secret_stops_the_whole_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBEOPERA_TEST_SLACK", raising=False)
    path = write(tmp_path, GOOD)
    with pytest.raises(SubscriptionError) as refused:
        load_subscriptions(path)
    assert str(refused.value) == (
        f"{path}:11: subscriptions[0].receiver.slack.webhook_url: the environment variable"
        " KUBEOPERA_TEST_SLACK is not set or empty"
    )
    monkeypatch.setenv("KUBEOPERA_TEST_SLACK", HOOK)
    (tmp_path / "routing.key").unlink()
    with pytest.raises(SubscriptionError, match=r":20: subscriptions\[1\]\.receiver\.pagerduty"
                       r"\.routing_key: cannot read the file .*No such file"):  # fmt: skip
        load_subscriptions(path)


def test_a_file_that_is_not_yaml_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("subscriptions:\n  - name: x\n    receiver: [unclosed\n")
    with pytest.raises(SubscriptionError, match=rf"^{path}:4: not YAML: "):
        load_subscriptions(path)


@pytest.mark.parametrize(
    ("slack", "key", "message"),
    [
        (HOOK, "short", ":20: subscriptions[1].receiver.pagerduty.routing_key: a PagerDuty"
         " routing key has 32 characters, this one 5"),
        ("hooks.slack.example/services/T0/B0/s3cr3t", "K" * 32,
         ":11: subscriptions[0].receiver.slack.webhook_url: not an http(s) URL"),
        ("http://[::1/services/s3cr3t", "K" * 32,
         ":11: subscriptions[0].receiver.slack.webhook_url: not an http(s) URL: Invalid IPv6 URL"),
        ("http://127.0.0.1:99999/services/s3cr3t", "K" * 32,
         ":11: subscriptions[0].receiver.slack.webhook_url: not an http(s) URL: Port out of"
         " range 0-65535"),
    ],
)  # fmt: skip
def test_a_secret_of_the_wrong_form_is_refused_without_showing_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slack: str, key: str, message: str
) -> None:
    monkeypatch.setenv("KUBEOPERA_TEST_SLACK", slack)
    path = write(tmp_path, GOOD)
    (tmp_path / "routing.key").write_text(key)
    with pytest.raises(SubscriptionError) as refused:
        load_subscriptions(path)
    assert str(refused.value) == f"{path}{message}"


def test_only_the_secrets_of_the_subscription_asked_for_are_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBEOPERA_TEST_SLACK", raising=False)  # finops-slack's: unset
    _, secrets = load_subscriptions(write(tmp_path, GOOD), only="oncall")
    assert list(secrets) == [("oncall", "pagerduty.routing_key")]


def test_a_pagerduty_url_that_is_not_one_is_refused(tmp_path: Path) -> None:
    key = "        routing_key: {file: KEYFILE}"
    text = GOOD.replace(key, f"{key}\n        url: events.example/v2")
    with pytest.raises(SubscriptionError) as refused:
        read_subscriptions(write(tmp_path, text))
    assert str(refused.value).endswith(
        ":21: subscriptions[1].receiver.pagerduty.url: Value error,"
        " 'events.example/v2' is not an http(s) URL"
    )
