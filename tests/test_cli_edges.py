"""The edges a new user meets in the first hour, each through the ``kubeopera`` command
as a subprocess: analyst SQL that cannot change the store, one statement per query,
errors that name their cause."""

import subprocess
from pathlib import Path

import pytest
from cli_tools import run_kubeopera
from test_cost_fixture import fixture_messages

from kubeopera.reports import EXAMPLE_SQL
from kubeopera.sinks.clickhouse import ChdbBackend, Store
from kubeopera.streams.embedded import EmbeddedEngine

pytestmark = pytest.mark.slow  # the `kubeopera` command as a subprocess


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A store holding the hand-computed fixture, closed for the CLI to open."""
    path = tmp_path / "clickhouse"
    with Store(ChdbBackend(path), raw_retention_days=0) as store:
        EmbeddedEngine(store).run([fixture_messages()])
    return path


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single ``kubeopera: error:`` line a failed command printed (and nothing else)."""
    assert result.returncode != 0, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("kubeopera: error: "), lines[0]
    return lines[0]


@pytest.mark.parametrize(
    "statement",
    [
        "DROP VIEW v_cost_by_team_daily",
        "DROP TABLE cost_allocation_hourly",
        "TRUNCATE TABLE raw_metrics",
        "INSERT INTO deadletter (source_topic, error) VALUES ('x', 'y')",
        "ALTER TABLE raw_metrics DELETE WHERE 1",
        "CREATE TABLE scratch (a Int8) ENGINE = Memory",
        "SET readonly = 0",
    ],
)
def test_analyst_sql_cannot_change_the_store(data: Path, statement: str) -> None:
    line = one_error_line(run_kubeopera(data, "sql", statement))
    assert "READONLY" in line and "only reads the store" in line
    example = run_kubeopera(data, "sql", EXAMPLE_SQL, "--format", "csv")
    assert example.returncode == 0, example.stderr
    assert example.stdout.splitlines()[0] == "team,usd"
    assert run_kubeopera(data, "sql", "SELECT count() FROM raw_metrics").returncode == 0


def test_migrate_brings_back_a_view_that_was_dropped(data: Path) -> None:
    """A view dropped behind KubeOpera's back (a ClickHouse client with write rights)."""
    with Store(ChdbBackend(data), raw_retention_days=0) as store:
        store.backend.execute("DROP VIEW v_cost_by_team_daily")
        store.backend.execute("DROP VIEW cost_by_team_daily_mv")
    result = run_kubeopera(data, "migrate")
    assert result.returncode == 0, result.stderr
    example = run_kubeopera(data, "sql", EXAMPLE_SQL, "--format", "csv")
    assert example.returncode == 0, example.stderr
    with Store(ChdbBackend(data), raw_retention_days=0) as store:
        views = store.query("SELECT name FROM system.tables WHERE engine LIKE '%View'")
    assert {"v_cost_by_team_daily", "cost_by_team_daily_mv"} <= set(views["name"])


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("SELECT 1 AS a; SELECT 2 AS b", "2 statements given"),
        ("SELECT 1; SELECT 2; SELECT 3", "3 statements given"),
        ("", "empty query"),
        ("   ", "empty query"),
        ("/* a comment, no statement */", "empty query"),
        (";", "empty query"),
    ],
)
def test_one_statement_per_query(data: Path, query: str, message: str) -> None:
    assert message in one_error_line(run_kubeopera(data, "sql", query, "--format", "csv"))


@pytest.mark.parametrize(
    "query",
    ["SELECT 1 AS a", "SELECT 1 AS a;", "SELECT 1 AS a; -- done", "SELECT ';' AS s, 1 AS a"],
)
def test_one_statement_one_answer(data: Path, query: str) -> None:
    result = run_kubeopera(data, "sql", query, "--format", "csv")
    assert result.returncode == 0, result.stderr
    header, row = result.stdout.splitlines()[:2]
    assert header.split(",")[-1] == "a" and row.split(",")[-1] == "1"
