"""Replay files and ``kubeopera replay`` runs, for tests and the scenario files.

A replay file holds recorded topic messages, one JSON object a line:
``{"topic": ..., "key": ..., "value": {...}}``, the value being the contract's JSON, the
topic the one its model is published on and the key the one the collectors give it.
"""

import json
import os
import subprocess
from collections.abc import Iterable
from pathlib import Path

import polars as pl

from kubeopera.models import TOPIC_MODELS, Contract, message_key
from kubeopera.sinks.clickhouse import ChdbBackend, Store

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


def run_kubeopera(
    data: Path, *arguments: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``kubeopera ARGUMENTS`` on the store at ``data`` (settings from the environment,
    not from a config file)."""
    env = {
        **os.environ,
        "KUBEOPERA_STORAGE__PATH": str(data),
        "KUBEOPERA_STORAGE__RAW_RETENTION_DAYS": "0",
    }
    env.pop("KUBEOPERA_CONFIG", None)
    return subprocess.run(
        ["kubeopera", *arguments],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def stored(data: Path, sql: str) -> pl.DataFrame:
    """``sql`` on the store at ``data``, opened here and closed again (chDB allows one open
    store per process)."""
    with Store(ChdbBackend(data), raw_retention_days=0) as store:
        return store.query(sql)
