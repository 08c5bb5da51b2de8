"""Decoding raw topic bytes into contracts; what cannot be read becomes a dead letter."""

from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import ValidationError

from kubeopera.models import TOPIC_MODELS, Contract, DeadLetter, Topic


@dataclass(frozen=True, slots=True)
class RawMessage:
    """Bytes as they came off a topic (or a file), with where they came from."""

    topic: str
    value: bytes
    key: str = ""
    partition: int = -1
    offset: int = -1


def decode(raw: RawMessage) -> Contract | DeadLetter:
    """The message's contract, or a dead letter saying why it could not be read."""
    try:
        model = TOPIC_MODELS[Topic(raw.topic)]
    except ValueError:
        return dead_letter(raw, f"unknown topic {raw.topic!r}")
    try:
        return model.model_validate_json(raw.value)
    except ValidationError as error:
        return dead_letter(raw, f"invalid {raw.topic} message: {summarize(error)}")


def summarize(error: ValidationError, most: int = 3) -> str:
    """The first few problems, each as ``field.path: message``, on one line."""
    parts = []
    for item in error.errors()[:most]:
        where = ".".join(str(p) for p in item["loc"]) or "message"
        parts.append(f"{where}: {item['msg']}")
    more = error.error_count() - most
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


def dead_letter(raw: RawMessage, reason: str) -> DeadLetter:
    return DeadLetter(
        source_topic=raw.topic,
        partition=raw.partition,
        offset=raw.offset,
        key=raw.key,
        raw=raw.value,
        error=reason,
        at=datetime.now(UTC),
    )
