"""The command line as a user meets it: help, reports, SQL formats and one-line errors."""

import io
import json
import subprocess
from pathlib import Path

import polars as pl
import pytest
from cli_tools import run_kubeopera
from test_cost_fixture import EXPECTED, EXPECTED_IDLE, fixture_messages

from kubeopera.sinks.clickhouse import ChdbBackend, Store
from kubeopera.streams.embedded import EmbeddedEngine

pytestmark = pytest.mark.slow  # the `kubeopera` command as a subprocess


def kubeopera(
    *args: str, data: Path, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return run_kubeopera(data, *args, extra_env=extra_env)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding the hand-computed fixture (March 2026), closed for the CLI to open."""
    path = tmp_path_factory.mktemp("cli") / "clickhouse"
    with Store(ChdbBackend(path), raw_retention_days=0) as store:
        EmbeddedEngine(store).run([fixture_messages()])
    return path


def test_help_lists_every_command_with_one_line(data: Path) -> None:
    result = kubeopera("--help", data=data)
    assert result.returncode == 0
    text = result.stdout
    for command in ("demo", "sql", "cost", "migrate"):
        line = next(line for line in text.splitlines() if line.strip().startswith(command + " "))
        assert len(line.split(None, 1)) == 2  # the command and its one-line summary


def test_cost_report_by_namespace_as_json(data: Path) -> None:
    result = kubeopera(
        "cost", "--by", "namespace", "--window", "3000d", "--format", "json", data=data
    )
    assert result.returncode == 0, result.stderr
    report = {row["namespace"]: row["total_cost"] for row in json.loads(result.stdout)}
    assert report == pytest.approx(
        {"shop": sum(EXPECTED.values()), "__idle__": sum(EXPECTED_IDLE.values())}
    )


def test_cost_report_by_label_with_idle_spread(data: Path) -> None:
    result = kubeopera(
        "cost",
        "--by",
        "label:team",
        "--window",
        "3000d",
        "--idle",
        "weighted",
        "--format",
        "csv",
        data=data,
    )
    assert result.returncode == 0, result.stderr
    report = pl.read_csv(io.StringIO(result.stdout))
    assert report["total_cost"].sum() == pytest.approx(2.304 + 1.632)  # both nodes, a full day
    assert "__idle__" not in report["label:team"].to_list()
    assert set(report["label:team"].to_list()) == {"payments", "search"}


def test_cost_report_table_prints_the_total(data: Path) -> None:
    result = kubeopera("cost", "--by", "team", "--window", "3000d", data=data)
    assert result.returncode == 0, result.stderr
    assert "Total: $3.94" in result.stdout  # 2.304 + 1.632


def test_sql_formats(data: Path, tmp_path: Path) -> None:
    query = (
        "SELECT pod, round(sum(total_cost), 6) AS usd FROM v_cost_hourly GROUP BY pod ORDER BY pod"
    )
    csv = kubeopera("sql", query, "--format", "csv", data=data)
    assert csv.returncode == 0, csv.stderr
    assert csv.stdout.splitlines()[0] == "pod,usd"
    assert "p4,0.408" in csv.stdout
    out = tmp_path / "costs.parquet"
    parquet = kubeopera("sql", query, "--format", "parquet", "--output", str(out), data=data)
    assert parquet.returncode == 0, parquet.stderr
    assert dict(pl.read_parquet(out).iter_rows())["p5"] == pytest.approx(0.816)
    table = kubeopera("sql", query, data=data)
    assert "p1" in table.stdout and "usd" in table.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["cost", "--window", "7x"], "invalid duration '7x'"),
        (["cost", "--by", "nmspace"], "unknown report key 'nmspace'"),
        (["cost", "--format", "xml"], "Invalid value for '--format'"),
        (["sql", "SELEC 1"], "Syntax error"),
        (["demo", "--clusters", "0"], "Invalid value for '--clusters'"),
        (["nope"], "No such command 'nope'"),
    ],
)
def test_bad_arguments_print_one_clear_line(data: Path, args: list[str], message: str) -> None:
    result = kubeopera(*args, data=data)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("kubeopera: error:") and message in lines[0]


def test_bad_config_prints_one_clear_line(data: Path, tmp_path: Path) -> None:
    config = tmp_path / "kubeopera.yaml"
    config.write_text("storage:\n  port: seventy\n")
    result = kubeopera("--config", str(config), "migrate", data=data)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "kubeopera: error: config error at storage.port: Input should be a valid integer, "
        "unable to parse string as an integer"
    )
    missing = kubeopera("--config", str(tmp_path / "absent.yaml"), "migrate", data=data)
    assert missing.stderr.strip().startswith("kubeopera: error: cannot read config file")
    env = kubeopera("migrate", data=data, extra_env={"KUBEOPERA_STORAGE__BACKEND": "mongo"})
    assert "config error at storage.backend" in env.stderr


def test_migrate_reports_the_schema(data: Path) -> None:
    from kubeopera.sinks.clickhouse import MIGRATIONS

    result = kubeopera("migrate", data=data)
    assert result.returncode == 0, result.stderr
    latest = MIGRATIONS[-1].version
    assert f"schema at migration {latest} ({len(MIGRATIONS)} applied)" in result.stdout
