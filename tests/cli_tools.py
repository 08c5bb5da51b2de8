"""The ``kubeopera`` command as tests run it, and the store it wrote, read back."""

import os
import subprocess
from pathlib import Path

import polars as pl

from kubeopera.sinks.clickhouse import ChdbBackend, Store


def run_kubeopera(
    data: Path | None,
    *arguments: str,
    stdin: str | None = None,
    extra_env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``kubeopera ARGUMENTS`` as a user does, in ``cwd``, on the store at ``data``
    (None: the data home's, as with no store path given; settings from the environment
    and ``extra_env``, not from a config file)."""
    env = {**os.environ, "KUBEOPERA_STORAGE__RAW_RETENTION_DAYS": "0", **(extra_env or {})}
    env.pop("KUBEOPERA_CONFIG", None)
    env.pop("KUBEOPERA_STORAGE__PATH", None)
    if data is not None:
        env["KUBEOPERA_STORAGE__PATH"] = str(data)
    return subprocess.run(
        ["kubeopera", *arguments],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
        check=False,
    )


def stored(data: Path, sql: str) -> pl.DataFrame:
    """``sql`` on the store at ``data``, opened here and closed again (chDB allows one open
    store per process)."""
    with Store(ChdbBackend(data), raw_retention_days=0) as store:
        return store.query(sql)
