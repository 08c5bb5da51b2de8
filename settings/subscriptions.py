"""Alert subscriptions: which findings go to which receiver, grouped how (a YAML file).

Each subscription has a ``match`` (Robusta's sink scope: a finding matches when any
``include`` rule matches, or there is none, and no ``exclude`` rule does; inside a rule
every field given must match: AND inside, OR between rules), a receiver (a Slack
incoming webhook, a PagerDuty routing key or a generic webhook), Alertmanager's grouping
(``group_by``, ``group_wait``, ``group_interval``, ``repeat_interval``) and a rate limit.
A rule's strings are regular expressions matched in full (``payments-.*``); its
``severity`` is the least severity that matches.

Secrets (webhook URLs, routing keys) are never in the file: a receiver names the
environment variable (``*_env``) or the file (``*_file``) that holds each, and
``load_subscriptions`` reads them then. An error is one line naming the file, the line
and the field, never a secret's value.
"""

import os
import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Self
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from kubeopera.models import Finding, FindingKind, Severity
from kubeopera.settings.durations import parse_duration
from kubeopera.settings.patterns import Patterns, any_full, compiled
from kubeopera.settings.yaml_file import located, named_once, read_model

ROUTING_KEY_LENGTH = 32
"""PagerDuty's integration keys (Events API v2 ``routing_key``)."""

SEVERITY_ORDER = tuple(Severity)
"""Severities from the least to the most severe."""

GROUP_KEYS = ("kind", "severity", "cluster", "namespace", "subject_kind", "name", "fingerprint")
"""What ``group_by`` may name: the finding's kind and severity, its subject's cluster,
namespace, kind (``subject_kind``) and name, or its fingerprint (one group each)."""


def _duration(value: object) -> object:
    if isinstance(value, str):
        return timedelta(0) if value.strip() in {"0", "0s"} else parse_duration(value)
    return value


Duration = Annotated[timedelta, BeforeValidator(_duration)]
"""``0s``, ``30s``, ``5m``, ``4h``, ``1d`` (``settings.durations``)."""


def http_url(value: str, shown: bool = True) -> str:
    """``value`` if it is an http(s) URL with a host (and a port, if any, that can be);
    raises ``ValueError`` saying what is wrong, quoting the URL only when ``shown``.

    >>> http_url("http://[::1/x")
    Traceback (most recent call last):
    ValueError: 'http://[::1/x' is not an http(s) URL: Invalid IPv6 URL
    """
    quoted = f"{value!r} is not" if shown else "not"
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - reading it checks it
    except ValueError as error:
        raise ValueError(f"{quoted} an http(s) URL: {error}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{quoted} an http(s) URL")
    return value


class SubscriptionError(ValueError):
    """The subscription file cannot be used; the message is one line: file, line, field,
    what is wrong."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Rule(_Strict):
    """Every field given must match (regular expressions, in full; ``labels``: each key
    present with a matching value; ``severity``: at least it)."""

    kind: list[FindingKind] = Field(default_factory=list)
    severity: Severity | None = None
    cluster: Patterns
    namespace: Patterns
    labels: dict[str, str] = Field(default_factory=dict)

    @field_validator("labels")
    @classmethod
    def _label_patterns(cls, labels: dict[str, str]) -> dict[str, str]:
        compiled(list(labels.values()))
        return labels

    def matches(self, finding: Finding, labels: Mapping[str, str]) -> bool:
        """Whether ``finding`` (its subject carrying ``labels``) meets every field."""
        subject = finding.subject
        return (
            (not self.kind or finding.kind in self.kind)
            and (
                self.severity is None
                or SEVERITY_ORDER.index(finding.severity) >= SEVERITY_ORDER.index(self.severity)
            )
            and any_full(self.cluster, subject.cluster)
            and any_full(self.namespace, subject.namespace)
            and all(
                key in labels and re.fullmatch(pattern, labels[key])
                for key, pattern in self.labels.items()
            )
        )


class Match(_Strict):
    """``include`` rules (none: every finding) and ``exclude`` rules."""

    include: list[Rule] = Field(default_factory=list)
    exclude: list[Rule] = Field(default_factory=list)

    def matches(self, finding: Finding, labels: Mapping[str, str]) -> bool:
        """Any include rule (or none given) and no exclude rule.

        >>> from datetime import UTC, datetime
        >>> from kubeopera.models import Subject
        >>> at = datetime(2026, 3, 2, tzinfo=UTC)
        >>> finding = Finding(kind="budget", severity="high", fingerprint="f", first_seen=at,
        ...     last_seen=at, summary="s", subject=Subject(cluster="prod", namespace="shop",
        ...     kind="Team", name="web"))
        >>> Match(include=[Rule(severity="medium", namespace=["shop|cart"])]).matches(finding, {})
        True
        >>> Match(exclude=[Rule(kind=["budget"])]).matches(finding, {})
        False
        """
        included = not self.include or any(r.matches(finding, labels) for r in self.include)
        return included and not any(r.matches(finding, labels) for r in self.exclude)


class SecretRef(_Strict):
    """Where a secret is: an environment variable (``env``) or a file (``file``; its
    content, surrounding whitespace removed). Exactly one."""

    env: str | None = None
    file: Path | None = None

    @model_validator(mode="before")
    @classmethod
    def _not_the_secret_itself(cls, data: object) -> object:
        if isinstance(data, str):
            raise ValueError(
                "a secret is never written in the file: name the environment variable"
                " ({env: NAME}) or the file ({file: PATH}) that holds it"
            )
        return data

    @model_validator(mode="after")
    def _one(self) -> Self:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of env (a variable's name) or file (a path)")
        return self

    def read(self) -> SecretStr:
        """The secret. Raises ``ValueError`` (naming the variable or the file, never the
        value) when it is unset, empty or unreadable."""
        if self.env is not None:
            value = os.environ.get(self.env, "")
            where = f"the environment variable {self.env}"
        else:
            assert self.file is not None
            where = f"the file {self.file}"
            try:
                value = self.file.read_text().strip()
            except OSError as error:
                raise ValueError(f"cannot read {where}: {error.strerror}") from None
        if not value:
            raise ValueError(f"{where} is not set or empty")
        return SecretStr(value)


class SlackReceiver(_Strict):
    """A Slack incoming webhook. A resolved finding is told in a new message (an incoming
    webhook answers ``ok``, not the message's ``ts`` a thread reply needs)."""

    webhook_url: SecretRef


class PagerDutyReceiver(_Strict):
    """PagerDuty's Events API v2: the integration's routing key; ``url``: the events
    endpoint when not PagerDuty's own (a proxy, an EU service region);
    ``change_events``: also send the action service's applies and undos to the
    integration as Change Events."""

    routing_key: SecretRef
    url: Annotated[str, AfterValidator(http_url)] | None = None
    change_events: bool = False


class WebhookReceiver(_Strict):
    """A generic webhook: each group as JSON, POSTed to the URL."""

    url: SecretRef


RECEIVER_KINDS = ("slack", "pagerduty", "webhook")


class Receiver(_Strict):
    """Exactly one of ``slack``, ``pagerduty``, ``webhook``."""

    slack: SlackReceiver | None = None
    pagerduty: PagerDutyReceiver | None = None
    webhook: WebhookReceiver | None = None

    @model_validator(mode="after")
    def _one(self) -> Self:
        given = [k for k in RECEIVER_KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one receiver: slack, pagerduty or webhook")
        return self

    @property
    def kind(self) -> str:
        """``slack``, ``pagerduty`` or ``webhook``: the one given."""
        return next(k for k in RECEIVER_KINDS if getattr(self, k) is not None)

    def secrets(self) -> dict[str, SecretRef]:
        """The receiver's secrets by field path (``slack.webhook_url``)."""
        return {
            f"{self.kind}.{name}": value
            for name, value in getattr(self, self.kind)
            if isinstance(value, SecretRef)
        }


class RateLimit(_Strict):
    """At most ``messages`` per ``per`` to the receiver; the rest wait."""

    messages: int = Field(gt=0)
    per: Duration


class Subscription(_Strict):
    """One route: findings that ``match`` go to ``receiver``, grouped as Alertmanager
    groups alerts (``group_by``; the first message of a group after ``group_wait``,
    changes at most every ``group_interval``, the same again after
    ``repeat_interval``; ``send_resolved``: tell when findings resolve)."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")
    match: Match = Field(default_factory=Match)
    receiver: Receiver
    group_by: list[str] = Field(default_factory=lambda: ["fingerprint"])
    group_wait: Duration = timedelta(seconds=30)
    group_interval: Annotated[Duration, Field(gt=timedelta(0))] = timedelta(minutes=5)
    repeat_interval: Annotated[Duration, Field(gt=timedelta(0))] = timedelta(hours=4)
    send_resolved: bool = True
    rate_limit: RateLimit | None = None

    @field_validator("group_by")
    @classmethod
    def _group_keys(cls, keys: list[str]) -> list[str]:
        unknown = [k for k in keys if k not in GROUP_KEYS]
        if unknown:
            raise ValueError(f"{unknown[0]!r} is not one of {', '.join(GROUP_KEYS)}")
        return keys


class Delivery(_Strict):
    """Retries of a request the receiver did not take (429, 5xx, no answer): up to
    ``max_attempts`` in all, waiting exponentially longer from ``initial_backoff`` to
    ``max_backoff`` with full jitter, or the receiver's ``Retry-After`` when it is
    longer; each request waits ``timeout`` for an answer."""

    max_attempts: int = Field(6, ge=1, le=100)
    initial_backoff: Duration = timedelta(seconds=1)
    max_backoff: Duration = timedelta(seconds=60)
    timeout: Annotated[Duration, Field(gt=timedelta(0))] = timedelta(seconds=10)


class Subscriptions(_Strict):
    """The file: its ``subscriptions`` (names unique) and how requests are retried
    (``delivery``)."""

    subscriptions: list[Subscription]
    delivery: Delivery = Field(default_factory=Delivery)

    @field_validator("subscriptions")
    @classmethod
    def _unique(cls, subscriptions: list[Subscription]) -> list[Subscription]:
        return named_once(subscriptions, "subscription")


def read_subscriptions(path: Path) -> Subscriptions:
    """The subscriptions of the YAML file at ``path``, validated, their secrets not read
    (``kubeopera alerts preview`` needs none). Raises ``SubscriptionError`` as
    ``load_subscriptions`` does."""
    return read_model(path, Subscriptions, SubscriptionError)[0]


def load_subscriptions(
    path: Path, only: str | None = None
) -> tuple[Subscriptions, dict[tuple[str, str], SecretStr]]:
    """The subscriptions of the YAML file at ``path`` and their secrets, read now, by
    (subscription name, field path such as ``slack.webhook_url``); with ``only``, the
    secrets of that subscription alone.

    Raises ``SubscriptionError`` (one line: ``FILE:LINE: FIELD: what``) for a file that
    cannot be read or parsed, an unknown key, a bad value or matcher, or a secret that is
    unset or unreadable: nothing half-configured is returned."""
    subscriptions, lines = read_model(path, Subscriptions, SubscriptionError)
    secrets: dict[tuple[str, str], SecretStr] = {}
    for index, subscription in enumerate(subscriptions.subscriptions):
        if only is not None and subscription.name != only:
            continue
        for field, ref in subscription.receiver.secrets().items():
            where = ("subscriptions", index, "receiver", *field.split("."))
            try:
                secrets[(subscription.name, field)] = _checked(field, ref.read())
            except ValueError as error:
                raise SubscriptionError(f"{located(path, where, lines)}: {error}") from None
    return subscriptions, secrets


def _checked(field: str, secret: SecretStr) -> SecretStr:
    """``secret`` if it has the form its field needs (a URL; a 32-character routing key);
    raises ``ValueError`` saying what is wrong, never the value."""
    value = secret.get_secret_value()
    if field == "pagerduty.routing_key" and len(value) != ROUTING_KEY_LENGTH:
        raise ValueError(
            f"a PagerDuty routing key has {ROUTING_KEY_LENGTH} characters, this one {len(value)}"
        )
    if field.endswith("url"):
        http_url(value, shown=False)
    return secret
