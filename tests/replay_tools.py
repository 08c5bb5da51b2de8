"""Replay files and ``kubeopera replay`` runs, for tests and the scenario files.

A replay file holds recorded topic messages, one JSON object a line:
``{"topic": ..., "key": ..., "value": {...}}``, the value being the contract's JSON, the
topic the one its model is published on and the key the one the collectors give it.
"""

import json
import subprocess
from collections.abc import Iterable
from pathlib import Path

from cli_tools import run_kubeopera

from kubeopera.models import TOPIC_MODELS, Contract, message_key

TOPIC_OF = {model: topic for topic, model in TOPIC_MODELS.items()}


def jsonl_line(message: Contract) -> str:
    """One message as one line of a replay file, without the newline."""
    return json.dumps(
        {
            "topic": TOPIC_OF[type(message)].value,
            "key": message_key(message),
            "value": message.model_dump(mode="json"),
        }
    )


def write_jsonl(path: Path, messages: Iterable[Contract]) -> None:
    """Write ``messages`` to ``path`` as a replay file, in order."""
    with path.open("w", encoding="utf-8") as out:
        for message in messages:
            out.write(jsonl_line(message) + "\n")


def replay(
    source: Path | str, data: Path, *options: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``kubeopera replay SOURCE [OPTIONS]`` as a user does, into the store at ``data``."""
    return run_kubeopera(data, "replay", str(source), *options, stdin=stdin)
