"""Shared fixtures: a fresh embedded ClickHouse store per test."""

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubeopera.sinks.clickhouse import ChdbBackend, Store

sys.path.insert(0, str(Path(__file__).parent))

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """The real ClickHouse engine (chDB) on a temporary directory."""
    with Store(ChdbBackend(tmp_path / "clickhouse"), raw_retention_days=0) as opened:
        yield opened
