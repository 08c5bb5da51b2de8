"""The edges a new user meets in the first hour, each through the ``kubeopera`` command
as a subprocess: analyst SQL that cannot change the store, one statement per query,
errors that name their cause."""

import os
import subprocess
import sys
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


def every_command() -> list[list[str]]:
    """Every command and subcommand of ``kubeopera``, as the words that name it."""
    import click

    from kubeopera.cli.main import cli

    found: list[list[str]] = []

    def walk(command: click.Command, path: list[str]) -> None:
        found.append(path)
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                walk(sub, [*path, name])

    walk(cli, [])
    return found


@pytest.mark.parametrize("words", every_command(), ids=lambda w: " ".join(w) or "kubeopera")
def test_every_hint_names_a_real_command(data: Path, words: list[str]) -> None:
    """A usage error points at the help of the command it is about, which exists."""
    line = one_error_line(run_kubeopera(data, *words, "--no-such-option"))
    hint = line.rsplit("(see ", 1)[1].removesuffix(")").split()
    assert hint[0] == "kubeopera" and hint[1:] == [*words, "--help"]
    assert run_kubeopera(data, *hint[1:]).returncode == 0


@pytest.mark.parametrize(
    ("window", "message"),
    [
        ("100000w", "reaches back before 1900-01-01"),
        ("9999999999999w", "too long"),
        ("0d", "invalid duration"),
    ],
)
def test_a_window_the_store_cannot_hold_is_refused_before_any_sql(
    data: Path, window: str, message: str
) -> None:
    line = one_error_line(run_kubeopera(data, "cost", "--window", window))
    assert message in line and "DB::Exception" not in line


def test_a_store_held_by_another_process_names_it(tmp_path: Path) -> None:
    """chDB opens a store in one process at a time (a running worker holds its store)."""
    store = tmp_path / "store"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from chdb import session\n"
            f"s = session.Session({str(store)!r})\n"
            "print('open', flush=True)\n"
            "time.sleep(120)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        line = one_error_line(run_kubeopera(store, "cost"))
        assert f"it is open in process {holder.pid} (" in line
        assert "cp -r" in line and "KUBEOPERA_STORAGE__PATH" in line
        assert "EmbeddedServer" not in line
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize("path", ["/etc/hostname/store", "/proc/kubeopera-store"])
def test_a_store_that_cannot_be_created_is_one_line(path: str) -> None:
    line = one_error_line(run_kubeopera(Path(path), "cost"))
    assert f"cannot open the embedded store at {path}: " in line


def test_one_store_found_the_same_way_from_any_directory(tmp_path: Path) -> None:
    """No store path given: every command uses the data home's store (here
    ``$KUBEOPERA_HOME``), whatever the current directory, and says which store it read."""
    home, first, second = tmp_path / "home", tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()

    def kubeopera(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return run_kubeopera(None, *args, cwd=cwd, extra_env={"KUBEOPERA_HOME": str(home)})

    store_line = f"Store: embedded ClickHouse (chDB) at {home / 'clickhouse'}, database kubeopera"
    empty = kubeopera(first, "cost")
    assert empty.returncode == 0, empty.stderr
    assert "The store holds no cost data yet" in empty.stdout and "Total" not in empty.stdout
    assert store_line in empty.stdout
    assert not list(first.iterdir())  # nothing written where the command ran
    scenario = Path(__file__).parent / "scenarios" / "spot_without_market_price.jsonl"
    assert kubeopera(first, "replay", str(scenario)).returncode == 0
    report = kubeopera(second, "cost", "--window", "3000d", "--format", "csv")
    assert report.returncode == 0, report.stderr
    assert len(report.stdout.splitlines()) > 1 and store_line in report.stderr
    elsewhere = kubeopera(second, "cost", "--window", "1h")
    assert "No cost data since" in elsewhere.stdout and "widen --window" in elsewhere.stdout


def test_every_table_honours_output_and_format(data: Path, tmp_path: Path) -> None:
    """``-o`` writes the file (and nothing to the terminal) for every format."""
    for command in (["cost", "--by", "team", "--window", "3000d"], ["sql", EXAMPLE_SQL]):
        for fmt in ("table", "csv", "json"):
            out = tmp_path / f"{command[0]}.{fmt}"
            result = run_kubeopera(data, *command, "--format", fmt, "-o", str(out))
            assert result.returncode == 0, result.stderr
            assert result.stdout == ""
            text = out.read_text()
            assert "payments" in text
            if fmt == "table" and command[0] == "cost":
                assert "Total: $3.94" in text and "Store: " in text


def test_report_rows_say_what_they_hold(data: Path) -> None:
    """The idle group's idle_cost is its cost; rows lacking the key are __unallocated__."""
    import json

    def report(by: str) -> dict[str, dict[str, float]]:
        result = run_kubeopera(data, "cost", "--by", by, "--window", "3000d", "--format", "json")
        assert result.returncode == 0, result.stderr
        return {row[by]: row for row in json.loads(result.stdout)}

    teams = report("team")
    assert teams["__idle__"]["idle_cost"] == pytest.approx(teams["__idle__"]["total_cost"])
    assert teams["__idle__"]["total_cost"] > 0
    assert all(row["idle_cost"] == 0 for team, row in teams.items() if team != "__idle__")
    missing = report("label:nonexistent")
    assert set(missing) == {"__unallocated__", "__idle__"}
    assert sum(r["total_cost"] for r in missing.values()) == pytest.approx(
        sum(r["total_cost"] for r in teams.values())
    )


def test_a_report_says_which_nodes_another_regions_prices_cost(tmp_path: Path) -> None:
    """The simulated fleet runs in us-east-1, eu-west-1 and us-west-2; the built-in
    catalogue prices us-east-1. Each node's facts are in node_prices with their region."""
    data = tmp_path / "store"
    demo = run_kubeopera(data, "demo", "--duration", "2h", "--pods-per-cluster", "40")
    assert demo.returncode == 0, demo.stderr
    with Store(ChdbBackend(data), raw_retention_days=0) as store:
        foreign = store.query(
            "SELECT region, uniqExact(cluster, node) AS nodes FROM node_prices FINAL "
            "WHERE price_source = 'catalogue' AND region != 'us-east-1' GROUP BY region"
        )
    expected = dict(foreign.iter_rows())
    assert set(expected) == {"eu-west-1", "us-west-2"}
    report = run_kubeopera(data, "cost", "--window", "3000d")
    for region, nodes in expected.items():
        assert (
            f"{nodes} node{'s' if nodes != 1 else ''} in {region} priced at the catalogue's "
            f"us-east-1 on-demand rates: give {region} prices in a price sheet"
        ) in " ".join(report.stdout.split())


def test_numbers_keep_the_digits_they_have(data: Path) -> None:
    """A value rounded in SQL prints as rounded (129.08, not 129.080)."""
    result = run_kubeopera(data, "sql", "SELECT round(129.08, 2) AS usd, 1234567.5 AS big")
    assert result.returncode == 0, result.stderr
    assert "129.08 " in result.stdout and "129.080" not in result.stdout
    assert "1,234,567.5 " in result.stdout


def test_the_demo_counts_pods_over_the_run_and_at_a_time(tmp_path: Path) -> None:
    result = run_kubeopera(
        tmp_path / "store",
        "demo",
        "--clusters",
        "1",
        "--duration",
        "2h",
        "--pods-per-cluster",
        "40",
    )
    assert result.returncode == 0, result.stderr
    header = result.stdout.splitlines()[0]
    with Store(ChdbBackend(tmp_path / "store"), raw_retention_days=0) as store:
        pods, per_window = store.query(
            "SELECT uniqExact(pod_uid), (SELECT round(avg(n)) FROM (SELECT uniqExact(pod_uid) "
            "AS n FROM raw_metrics GROUP BY window_start)) FROM raw_metrics"
        ).row(0)
    assert f"1 cluster, {pods:,} pods over the run (about {int(per_window):,} at a time)" in header


def test_every_benchmark_says_which_machine_it_ran_on() -> None:
    """The first line a benchmark prints names the machine (CPU model, cores, RAM, load)."""
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, str(root / "benchmarks" / "pipeline.py"), "--clusters", "1",
         "--pods-per-cluster", "20", "--duration", "1h"],
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    first = result.stdout.splitlines()[0]
    cores = len(os.sched_getaffinity(0))
    assert first.startswith("machine: ") and f", {cores} cores, " in first and "GiB RAM" in first
    for script in ("collector.py", "demo.py", "kafka_pipeline.py", "pipeline.py"):
        source = (root / "benchmarks" / script).read_text()
        assert "print(describe(), flush=True)" in source, script
