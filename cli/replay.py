"""``kubeopera replay``: recorded topic messages through the embedded pipeline into the store.

A replay file holds one message a line, as the collectors publish them::

    {"topic": "kubeopera.metrics.v1", "key": "c1/node-a", "value": {...}}

``topic`` is a topic name (``models/topics.py``), ``key`` is optional and ``value`` is the
contract's JSON object. Blank lines are skipped. A line that cannot be read (not JSON, not
such an object, or a value its contract rejects) becomes a dead letter whose reason starts
with ``line N:``, with offset N and the line kept; the rest is processed.
"""

import json
from collections.abc import Iterable
from dataclasses import replace
from itertools import islice
from typing import Any, BinaryIO

import click
from pydantic import BaseModel, ValidationError

from kubeopera.models import DeadLetter, Message, Topic
from kubeopera.settings import Settings
from kubeopera.streams.decode import RawMessage, dead_letter, decode, summarize
from kubeopera.streams.embedded import EmbeddedEngine, tune_gc_for_batches


class RecordedMessage(BaseModel):
    """One line of a replay file (other fields, such as a dump's partition, are ignored)."""

    topic: str
    key: str | None = None
    value: dict[str, Any]


def run_replay(settings: Settings, source: BinaryIO, batch_size: int) -> None:
    """Replay ``source`` into the settings' store (added to it, never emptied first) and
    print a one-line summary."""
    tune_gc_for_batches()
    with settings.open_store() as store:
        runner = settings.engine(store, settings.catalogue())
        read = replay(source, runner, batch_size)
        click.echo(
            f"Replayed {read:,} messages ({runner.stats.dead_letters:,} dead letters) "
            f"into {store.describe()}: {runner.stats.counts['cost_rows']:,} cost rows"
        )


def replay(lines: Iterable[bytes], runner: EmbeddedEngine, batch_size: int) -> int:
    """Feed the lines to ``runner`` in file order, ``batch_size`` messages a batch, then
    close every open window; returns the number of messages read.

    Only one batch is held at a time, so memory stays bounded whatever the file's size.
    """
    messages = (read_line(number, line) for number, line in enumerate(lines, 1) if line.strip())
    read = 0
    while batch := list(islice(messages, batch_size)):
        runner.process(
            [m for m in batch if not isinstance(m, DeadLetter)],
            [m for m in batch if isinstance(m, DeadLetter)],
        )
        read += len(batch)
    runner.finish()
    return read


def read_line(number: int, line: bytes) -> Message | DeadLetter:
    """Line ``number`` as the message it records, or the dead letter saying why it cannot
    be read (offset ``number``, the line kept as its raw bytes)."""
    line = line.rstrip(b"\r\n")
    unread = RawMessage(topic="", value=line, offset=number)
    try:
        recorded = RecordedMessage.model_validate(json.loads(line))
    except json.JSONDecodeError as error:
        return _rejected(unread, f"not JSON: {error.msg} at column {error.colno}")
    except UnicodeDecodeError as error:
        return _rejected(unread, f"not JSON: {error}")
    except ValidationError as error:
        return _rejected(unread, f"not a recorded message: {summarize(error)}")
    raw = RawMessage(
        topic=recorded.topic,
        value=json.dumps(recorded.value, separators=(",", ":")).encode(),
        key=recorded.key or "",
        offset=number,
    )
    decoded = decode(raw)
    if isinstance(decoded, DeadLetter):
        return _rejected(replace(raw, value=line), decoded.error)
    return Topic(raw.topic), decoded


def _rejected(raw: RawMessage, reason: str) -> DeadLetter:
    """The dead letter of ``raw``, its reason naming the line."""
    return dead_letter(raw, f"line {raw.offset}: {reason}")
