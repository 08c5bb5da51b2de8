"""Silences: matchers over a finding's fields, active from ``starts_at`` to ``ends_at``
(Alertmanager's silences, its ``=~`` matchers: regular expressions matched in full)."""

import re
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from kubeopera.alerts.grouping import finding_fields
from kubeopera.models import Finding
from kubeopera.models.base import UtcDatetime
from kubeopera.settings.subscriptions import GROUP_KEYS
from kubeopera.streams.decode import summarize


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
            if key not in GROUP_KEYS:
                raise ValueError(f"{key!r} is not one of {', '.join(GROUP_KEYS)}")
            try:
                re.compile(pattern)
            except re.error as error:
                raise ValueError(f"{pattern!r} is not a regular expression: {error}") from None
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
                raise ValueError(f"matcher {matcher!r}: write FIELD=REGEX, as cluster=prod")
            parsed[key.strip()] = pattern
        try:
            return cls(
                id=uuid.uuid4().hex[:12],
                matchers=parsed,
                starts_at=now,
                ends_at=now + duration,
                created_by=by,
                comment=comment,
            )
        except ValidationError as error:
            raise ValueError(f"silence: {summarize(error)}") from None

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at

    def matches(self, finding: Finding) -> bool:
        fields = finding_fields(finding)
        return all(re.fullmatch(p, fields[k]) for k, p in self.matchers.items())


def silenced_at(silences: Iterable[Silence], now: datetime) -> Callable[[Finding], bool]:
    """Whether a finding is silenced by one of ``silences`` active at ``now``."""
    active = [s for s in silences if s.active(now)]
    return lambda finding: any(s.matches(finding) for s in active)
