"""Policy as code for remediations: who may ask for which action where, how big a change
may be, when, and what is approved without a second person (a YAML file).

A request is refused in a protected namespace (``kube-system`` unless the file says
otherwise), whatever the rules. Otherwise the rules are read in order: a rule *applies*
when the requester holds one of its ``roles`` and the action, cluster and namespace are
among its ``actions``, ``clusters`` and ``namespaces`` (regular expressions, in full; an
empty list: any). The first rule that applies and whose ``limits`` and change ``windows``
the request meets allows it (``auto_approve`` from that rule); when rules apply but each
refuses, the first one's reason is given; when none applies, the refusal says so. Every
decision names the rule that made it.

Limits: ``replicas_factor`` (the new replica count at most that many times the old, and
at least the old divided by it: 2 allows 3 -> 6 and 3 -> 2, not 3 -> 7), and
``resources_factor`` (each container's request or limit changed by at most that factor
either way). Windows are UTC: days of the week and a start and end time.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kubeopera.settings.patterns import Patterns, any_full
from kubeopera.settings.yaml_file import named_once, read_model


class Action(StrEnum):
    SCALE = "scale"
    RESTART = "restart"
    ROLLBACK = "rollback"
    REVERT_DRIFT = "revert_drift"
    SET_RESOURCES = "set_resources"
    CORDON = "cordon"
    UNCORDON = "uncordon"
    DRAIN = "drain"
    DELETE_POD = "delete_pod"


class Role(StrEnum):
    VIEWER = "viewer"
    REQUESTER = "requester"
    APPROVER = "approver"
    ADMIN = "admin"


Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAYS: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class PolicyError(ValueError):
    """The policy file cannot be used; the message is one line naming the file, the
    line and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Window(_Strict):
    """A change window, UTC: ``days`` (all when empty), from ``start`` to ``end``
    (``end`` before ``start``: the window runs past midnight)."""

    days: list[Day] = Field(default_factory=list)
    start: time = time(0, 0)
    end: time = time.max

    def contains(self, now: datetime) -> bool:
        """Whether ``now`` (UTC) is in the window.

        >>> from datetime import UTC
        >>> night = Window(days=["fri"], start=time(22), end=time(2))
        >>> night.contains(datetime(2026, 3, 6, 23, tzinfo=UTC))  # a Friday, 23:00
        True
        >>> night.contains(datetime(2026, 3, 6, 3, tzinfo=UTC))
        False
        """
        moment = now.time()
        if self.start <= self.end:
            inside, day = self.start <= moment <= self.end, now.weekday()
        else:  # past midnight: the early hours belong to the day before
            late, early = moment >= self.start, moment <= self.end
            inside, day = late or early, (now.weekday() - (1 if early and not late else 0)) % 7
        return inside and (not self.days or DAYS[day] in self.days)

    def __str__(self) -> str:
        days = ",".join(self.days) or "every day"
        return f"{days} {self.start:%H:%M}-{self.end:%H:%M} UTC"


class Limits(_Strict):
    """How big one change may be (none given: any)."""

    replicas_factor: float | None = Field(None, ge=1)
    resources_factor: float | None = Field(None, ge=1)


class Rule(_Strict):
    """Who (``roles``) may ask for which ``actions`` in which ``clusters`` and
    ``namespaces`` (regular expressions in full; empty: any), within ``limits`` and
    ``windows`` (empty: any time); ``auto_approve``: no second person needed."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")
    roles: list[Role] = Field(min_length=1)
    actions: list[Action] = Field(min_length=1)
    clusters: Patterns
    namespaces: Patterns
    limits: Limits = Field(default_factory=Limits)
    windows: list[Window] = Field(default_factory=list)
    auto_approve: bool = False


Resources = Mapping[str, Mapping[str, float]]
"""Container name -> ``requests.cpu``, ``limits.memory``, ... -> cores or bytes."""


@dataclass(frozen=True)
class Change:
    """What a request would change, as far as the limits judge it: the replica count
    before and after, and each container's requests and limits (``{"app":
    {"requests.cpu": 0.5, ...}}``, cores and bytes) before and after."""

    replicas: tuple[int, int] | None = None
    resources: tuple[Resources, Resources] | None = None


@dataclass(frozen=True)
class Decision:
    """Allowed or not, by which rule (``protected_namespaces``, a rule's name, or
    ``no rule``), why, and whether it needs no second person."""

    allowed: bool
    rule: str
    reason: str
    auto_approve: bool = False


class Policy(_Strict):
    """The file: ``protected_namespaces`` and the ``rules`` (names unique)."""

    protected_namespaces: list[str] = Field(default_factory=lambda: ["kube-system"])
    rules: list[Rule] = Field(default_factory=list)

    @field_validator("rules")
    @classmethod
    def _unique(cls, rules: list[Rule]) -> list[Rule]:
        return named_once(rules, "rule")

    def decide(
        self,
        action: Action,
        roles: set[Role],
        cluster: str,
        namespace: str,
        change: Change,
        now: datetime,
    ) -> Decision:
        """Whether someone holding ``roles`` may ask for ``action`` on an object of
        ``namespace`` ("" for a node) in ``cluster`` making ``change`` at ``now`` (UTC)."""
        if namespace and namespace in self.protected_namespaces:
            return Decision(False, "protected_namespaces", f"namespace {namespace} is protected")
        refusals: list[Decision] = []
        for rule in self.rules:
            if not _applies(rule, action, roles, cluster, namespace):
                continue
            problem = _limit_problem(rule.limits, change) or _window_problem(rule.windows, now)
            if problem is None:
                return Decision(True, rule.name, "allowed", rule.auto_approve)
            refusals.append(Decision(False, rule.name, problem))
        if refusals:
            return refusals[0]
        where = f"{cluster}/{namespace}" if namespace else cluster
        held = ", ".join(sorted(roles)) or "no role"
        return Decision(False, "no rule", f"no rule lets {held} {action.value} in {where}")


def _applies(rule: Rule, action: Action, roles: set[Role], cluster: str, namespace: str) -> bool:
    return (
        action in rule.actions
        and bool(roles & set(rule.roles))
        and any_full(rule.clusters, cluster)
        and any_full(rule.namespaces, namespace)
    )


def _limit_problem(limits: Limits, change: Change) -> str | None:
    factor = limits.replicas_factor
    if factor is not None and change.replicas is not None:
        old, new = change.replicas
        if not _within(old, new, factor):
            return f"replicas {old} -> {new} is more than a factor of {factor:g}"
    factor = limits.resources_factor
    if factor is not None and change.resources is not None:
        before, after = change.resources
        for container, values in after.items():
            was = before.get(container, {})
            for key, new_value in values.items():
                problem = _resource_problem(container, key, was, new_value, factor)
                if problem is not None:
                    return problem
            removed = sorted(set(was) - set(values))
            if removed:  # a request or limit dropped: no factor bounds that
                return f"{container} {removed[0]} would be removed, beyond any factor"
    return None


def _resource_problem(
    container: str, key: str, was: Mapping[str, float], new_value: float, factor: float
) -> str | None:
    """Why ``key`` (``limits.cpu``) going to ``new_value`` is beyond ``factor``: changed
    by more, or new and more than ``factor`` from its other side (a new limit against the
    request), or new with no other side to measure it by."""
    old_value, against = was.get(key), ""
    if old_value == new_value:
        return None
    if old_value is None:
        part, resource = key.split(".", 1)
        against = f"{'limits' if part == 'requests' else 'requests'}.{resource}"
        old_value = was.get(against)
        if old_value is None:
            return f"{container} {key} is new, with nothing to measure it by"
    if _within(old_value, new_value, factor):
        return None
    measured = f" (new: against {against})" if against else ""
    return (
        f"{container} {key} {old_value:g} -> {new_value:g} is more than a factor of "
        f"{factor:g}{measured}"
    )


def _within(old: float, new: float, factor: float) -> bool:
    """Whether ``new`` is within ``factor`` of ``old`` either way (from 0: only 0)."""
    if old == 0:
        return new == 0
    return old / factor <= new <= old * factor


def _window_problem(windows: list[Window], now: datetime) -> str | None:
    if not windows or any(w.contains(now) for w in windows):
        return None
    return f"{now:%a %H:%M} UTC is outside its change windows ({'; '.join(map(str, windows))})"


def load_policy(path: Path) -> Policy:
    """The policy in the YAML file at ``path``. Raises ``PolicyError`` (one line:
    ``FILE:LINE: FIELD: what``) for a file that cannot be read or parsed, an unknown key
    or a bad value."""
    return read_model(path, Policy, PolicyError)[0]
