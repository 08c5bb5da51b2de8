"""The action service's policy as code (``actions.policy``), decided by hand: protected
namespaces, who may ask for what where, the size of a change, change windows,
auto-approval, and a bad file in one line."""

from datetime import UTC, datetime
from pathlib import Path

import pytest

from kubeopera.actions.policy import (
    Action,
    Change,
    Policy,
    PolicyError,
    Role,
    Window,
    load_policy,
)

MONDAY_NOON = datetime(2026, 3, 2, 12, tzinfo=UTC)
SATURDAY_NOON = datetime(2026, 3, 7, 12, tzinfo=UTC)

POLICY = """\
rules:
  - name: sre-scale
    roles: [requester]
    actions: [scale, restart]
    clusters: ["prod-.*"]
    namespaces: ["shop|cart"]
    limits: {replicas_factor: 2, resources_factor: 1.5}
    windows:
      - {days: [mon, tue, wed, thu, fri], start: "09:00", end: "17:00"}
  - name: restarts-any-time
    roles: [requester]
    actions: [restart]
    auto_approve: true
  - name: admins
    roles: [admin]
    actions: [scale, restart, set_resources, drain, cordon, uncordon]
"""


@pytest.fixture
def policy(tmp_path: Path) -> Policy:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    return load_policy(path)


def decide(
    policy: Policy,
    action: str,
    roles: set[str],
    where: str,
    change: Change | None = None,
    now: datetime = MONDAY_NOON,
) -> tuple[bool, str, str, bool]:
    """(allowed, rule, reason, auto_approve) for ``where``: ``cluster/namespace``, or a
    cluster alone (a node)."""
    cluster, _, namespace = where.partition("/")
    held = {Role(r) for r in roles}
    decision = policy.decide(Action(action), held, cluster, namespace, change or Change(), now)
    return decision.allowed, decision.rule, decision.reason, decision.auto_approve


def test_a_protected_namespace_is_refused_whoever_asks(policy: Policy) -> None:
    assert decide(policy, "restart", {"admin"}, "prod-eu/kube-system")[:3] == (
        False, "protected_namespaces", "namespace kube-system is protected"
    )  # fmt: skip


def test_within_its_scope_limits_and_window_a_rule_allows(policy: Policy) -> None:
    assert decide(policy, "scale", {"requester"}, "prod-eu/shop", Change(replicas=(3, 6))) == (
        True, "sre-scale", "allowed", False
    )  # fmt: skip
    assert decide(policy, "scale", {"requester"}, "prod-eu/shop", Change(replicas=(3, 2)))[0]


@pytest.mark.parametrize(
    ("replicas", "allowed"),
    [((3, 6), True), ((3, 7), False), ((4, 2), True), ((3, 1), False), ((0, 0), True),
     ((0, 1), False)],
)  # fmt: skip
def test_replicas_at_most_doubled_or_halved(
    policy: Policy, replicas: tuple[int, int], allowed: bool
) -> None:
    got = decide(policy, "scale", {"requester"}, "prod-eu/cart", Change(replicas=replicas))
    assert got[0] is allowed
    if not allowed:
        old, new = replicas
        assert got[1:3] == ("sre-scale", f"replicas {old} -> {new} is more than a factor of 2")


def test_a_resource_change_beyond_its_factor_names_the_container_and_the_key(
    policy: Policy,
) -> None:
    before = {"app": {"requests.cpu": 0.5, "limits.memory": 512.0}}
    fine = Change(resources=(before, {"app": {"requests.cpu": 0.75, "limits.memory": 400.0}}))
    assert decide(policy, "scale", {"requester"}, "prod-eu/shop", fine)[0]
    wide = Change(resources=(before, {"app": {"requests.cpu": 0.5, "limits.memory": 1024.0}}))
    assert decide(policy, "scale", {"requester"}, "prod-eu/shop", wide)[2] == (
        "app limits.memory 512 -> 1024 is more than a factor of 1.5"
    )


def test_outside_its_change_windows_the_rule_refuses_and_says_when_they_are(
    policy: Policy,
) -> None:
    got = decide(policy, "scale", {"requester"}, "prod-eu/shop", Change(replicas=(3, 4)),
                 SATURDAY_NOON)  # fmt: skip
    assert got[:3] == (
        False, "sre-scale",
        "Sat 12:00 UTC is outside its change windows (mon,tue,wed,thu,fri 09:00-17:00 UTC)",
    )  # fmt: skip


def test_a_later_rule_may_allow_what_the_first_refused_and_auto_approve(policy: Policy) -> None:
    # the restart is outside sre-scale's window, inside restarts-any-time (auto-approved)
    assert decide(policy, "restart", {"requester"}, "prod-eu/shop", now=SATURDAY_NOON) == (
        True, "restarts-any-time", "allowed", True
    )  # fmt: skip
    assert decide(policy, "scale", {"admin"}, "prod-eu/shop", Change(replicas=(3, 30)))[:2] == (
        True, "admins"
    )  # fmt: skip


def test_no_rule_for_the_role_action_or_place_says_so(policy: Policy) -> None:
    assert decide(policy, "scale", {"viewer"}, "prod-eu/shop")[:3] == (
        False, "no rule", "no rule lets viewer scale in prod-eu/shop"
    )  # fmt: skip
    assert decide(policy, "scale", {"requester"}, "staging/shop")[2] == (
        "no rule lets requester scale in staging/shop"
    )
    assert decide(policy, "drain", {"requester"}, "prod-eu")[2] == (
        "no rule lets requester drain in prod-eu"  # a node: no namespace
    )


@pytest.mark.parametrize(
    ("edit", "said"),
    [
        (("    auto_approve: true", "    auto_aprove: true"),
         ":13: rules[1].auto_aprove: Extra inputs are not permitted"),
        (("[scale, restart]\n", "[scale, reboot]\n"),
         ":4: rules[0].actions[1]: Input should be 'scale', 'restart'"),
        (('["shop|cart"]', '["shop(cart"]'),
         ":6: rules[0].namespaces: Value error, 'shop(cart' is not a regular expression"),
        (("replicas_factor: 2", "replicas_factor: 0.5"),
         ":7: rules[0].limits.replicas_factor: Input should be greater than or equal to 1"),
        (("name: admins", "name: sre-scale"),
         ":1: rules: Value error, rule names must be unique: sre-scale"),
    ],
)  # fmt: skip
def test_a_bad_policy_file_is_one_line_naming_file_line_and_field(
    tmp_path: Path, edit: tuple[str, str], said: str
) -> None:
    path = tmp_path / "policy.yaml"
    assert edit[0] in POLICY
    path.write_text(POLICY.replace(*edit))
    with pytest.raises(PolicyError) as refused:
        load_policy(path)
    assert str(refused.value).startswith(f"{path}{said}"), str(refused.value)
    assert "\n" not in str(refused.value)


def test_protected_namespaces_default_to_kube_system() -> None:
    assert Policy().protected_namespaces == ["kube-system"]
    assert (
        not Policy().decide(Action.SCALE, {Role.ADMIN}, "c", "shop", Change(), MONDAY_NOON).allowed
    )  # no rule: nothing is allowed


def test_the_default_window_is_the_whole_day() -> None:
    last = datetime(2026, 3, 6, 23, 59, 59, 999_000, tzinfo=UTC)
    assert Window().contains(last) and Window().contains(last.replace(hour=0, minute=0))


def test_a_request_or_limit_removed_is_beyond_any_factor() -> None:
    policy = Policy.model_validate({"rules": [{
        "name": "r", "roles": ["requester"], "actions": ["rollback"], "clusters": [],
        "namespaces": [], "limits": {"resources_factor": 2}}]})  # fmt: skip
    before = {"app": {"requests.cpu": 0.5, "limits.cpu": 1.0}}
    after = {"app": {"requests.cpu": 0.5}}
    decision = policy.decide(Action.ROLLBACK, {Role.REQUESTER}, "c", "ns",
                             Change(resources=(before, after)), datetime.now(UTC))  # fmt: skip
    assert decision.reason == "app limits.cpu would be removed, beyond any factor"
