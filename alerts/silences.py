"""Silences: matchers over a finding's fields, active from ``starts_at`` to ``ends_at``
(Alertmanager's silences, its ``=~`` matchers: regular expressions matched in full)."""

import re
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kubeopera.alerts.grouping import Silenced, finding_fields
from kubeopera.models import Finding, FindingKind, Severity
from kubeopera.models.base import UtcDatetime
from kubeopera.settings.subscriptions import GROUP_KEYS


class Silence(BaseModel):
    """A silence: every matcher (field name -> regular expression, matched in full) must
    match a finding for it to be silenced between ``starts_at`` and ``ends_at`` (UTC).

    >>> from datetime import UTC, datetime
    >>> at = datetime(2026, 3, 2, tzinfo=UTC)
    >>> silence = Silence.create(["namespace=shop|cart", "kind=drift"], at, timedelta(hours=2),
    ...     "ana", "deploy window")
    >>> silence.active(at + timedelta(hours=1)), silence.active(at + timedelta(hours=3))
    (True, False)
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    matchers: dict[str, str] = Field(min_length=1)
    starts_at: UtcDatetime
    ends_at: UtcDatetime
    created_by: str = ""
    comment: str = ""

    @field_validator("matchers")
    @classmethod
    def _known_and_compiled(cls, matchers: dict[str, str]) -> dict[str, str]:
        for key, pattern in matchers.items():
            check_matcher(key, pattern)
        return matchers

    @classmethod
    def create(
        cls, matchers: list[str], now: datetime, duration: timedelta, by: str, comment: str
    ) -> "Silence":
        """A new silence from ``key=regex`` matchers, from ``now`` for ``duration``.
        Raises ``ValueError`` for a matcher without ``=``, an unknown field or a bad
        regular expression."""
        parsed: dict[str, str] = {}
        for matcher in matchers:
            key, equals, pattern = matcher.partition("=")
            if not equals or not key:
                raise ValueError(f"--match {matcher!r}: write FIELD=REGEX, as cluster=prod")
            check_matcher(key.strip(), pattern)
            parsed[key.strip()] = pattern
        return cls(
            id=uuid.uuid4().hex[:12],
            matchers=parsed,
            starts_at=now,
            ends_at=now + duration,
            created_by=by,
            comment=comment,
        )

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at

    def matches(self, finding: Finding) -> bool:
        fields = finding_fields(finding)
        return all(re.fullmatch(p, fields[k]) for k, p in self.matchers.items())


def silenced_at(silences: Iterable[Silence], now: datetime) -> Silenced:
    """Whether a finding is silenced by one of ``silences`` active at ``now``."""
    active = [s for s in silences if s.active(now)]
    return lambda finding: any(s.matches(finding) for s in active)


VALUES = {"kind": [k.value for k in FindingKind], "severity": [s.value for s in Severity]}
"""The values a finding's own fields take."""


def check_matcher(key: str, pattern: str) -> None:
    """Raises ``ValueError`` for a field a matcher cannot name, a pattern that is not a
    regular expression or is empty (it would match only an empty value), or a pattern
    no value of a closed field (``kind``: the finding's, ``severity``) matches."""
    where = f"--match {key}={pattern}"
    if key not in GROUP_KEYS:
        raise ValueError(f"{where}: {key!r} is not one of {', '.join(GROUP_KEYS)}")
    if not pattern:
        raise ValueError(f"{where}: an empty pattern matches only an empty value (any: .*)")
    try:
        re.compile(pattern)
    except re.error as error:
        raise ValueError(f"{where}: not a regular expression: {error}") from None
    known = VALUES.get(key)
    if known is not None and not any(re.fullmatch(pattern, v) for v in known):
        hint = " (a subject's kind, as Deployment, is subject_kind)" if key == "kind" else ""
        raise ValueError(f"{where}: matches no {key} ({', '.join(known)}){hint}")
