"""The base every contract shares: strict fields, a schema version, UTC millisecond time."""

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def _utc_millis(value: datetime) -> datetime:
    """Timestamps cross clusters, so they must say their zone; we keep UTC to the millisecond."""
    if value.tzinfo is None:
        raise ValueError("timestamp has no timezone; send UTC, e.g. '2026-01-01T00:00:00Z'")
    try:
        value = value.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:59:59-01:00 is past the last day Python has
        raise ValueError("timestamp out of range") from None
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


UtcDatetime = Annotated[datetime, AfterValidator(_utc_millis)]
"""A timezone-aware instant, normalised to UTC and truncated to milliseconds."""

NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
"""A finite quantity that cannot be below zero (cores, bytes, dollars)."""


class Contract(BaseModel):
    """Base of every message: unknown fields are refused, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1

    def event_time(self) -> datetime:
        """When what the message reports happened (UTC): the instant its partition's
        watermark advances to. Every topic message defines it."""
        raise NotImplementedError(f"{type(self).__name__} is not a topic message")
