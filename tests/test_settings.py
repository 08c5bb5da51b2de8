"""Settings: YAML file, environment overrides, and what they wire together."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kubeopera.settings import SettingsError, load_settings
from kubeopera.sinks.clickhouse import Store
from kubeopera.streams.processors.cost_allocation import CostAllocation


def test_file_then_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "kubeopera.yaml"
    config.write_text(
        "storage:\n  path: /data/ch\n  raw_retention_days: 7\n"
        "cost:\n  shared_namespaces: [kube-system]\n  idle: weighted\n"
    )
    monkeypatch.setenv("KUBEOPERA_STORAGE__RAW_RETENTION_DAYS", "3")
    settings = load_settings(config)
    assert settings.storage.path == Path("/data/ch")
    assert settings.storage.raw_retention_days == 3  # the environment wins
    sharing = settings.sharing()
    assert (sharing.idle, sharing.shared_namespaces) == ("weighted", ("kube-system",))


def test_unknown_keys_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "kubeopera.yaml"
    config.write_text("storage:\n  pth: /data\n")
    with pytest.raises(SettingsError, match=r"config error at storage\.pth: Extra inputs"):
        load_settings(config)
    config.write_text("- a list\n")
    with pytest.raises(SettingsError, match="must hold a mapping"):
        load_settings(config)


def test_runner_gets_catalogue_price_sheet_spot_fallback_and_lateness(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store: Store
) -> None:
    sheet = tmp_path / "sheet.csv"
    sheet.write_text(
        "EndTimestamp,InstanceID,Region,AssetClass,InstanceIDField,InstanceType,"
        "MarketPriceHourly,Version\n2026-01-01,,,node,,m5.large,0.05,\n"
    )
    monkeypatch.setenv("KUBEOPERA_PRICING__PRICE_SHEET_PATH", str(sheet))
    monkeypatch.setenv("KUBEOPERA_COST__ALLOWED_LATENESS_MINUTES", "30")
    monkeypatch.setenv("KUBEOPERA_PRICING__SPOT_FALLBACK", "estimate")
    settings = load_settings()
    runner = settings.engine(store)
    sheet_read = runner.reference.pricer.sheet
    assert sheet_read is not None
    assert sheet_read.node_price("n", "", "m5.large") == 0.05
    cost = next(p for p in runner.pipeline.processors if isinstance(p, CostAllocation))
    assert cost.settings.allowed_lateness.total_seconds() == 1800
    assert len(runner.reference.pricer.catalogue) == 110  # the built-in table
    assert runner.reference.pricer.spot_fallback == "estimate"


@pytest.mark.slow  # the `kubeopera` command as a subprocess
def test_a_short_redaction_key_is_refused_in_one_line() -> None:
    result = subprocess.run(
        ["kubeopera", "collect", "--simulate"],
        env={**os.environ, "KUBEOPERA_COLLECTOR__REDACTION_KEY": "hunter2"},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "kubeopera: error: config error at collector.redaction_key: too short to "
        "resist guessing: use 16+ characters (openssl rand -hex 32)"
    ]
    assert "hunter2" not in result.stderr


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            "processors: [archive, costs]",
            "unknown processor 'costs' (known: anomalies, archive, budgets, changes, cost",
        ),
        ("processors: [cost, cost]", "processors: cost listed more than once"),
        ("processor_modules: [json.nope]", "cannot import processor module 'json.nope'"),
        (
            "processors: [cost]\nprocessor_settings: {archive: {}}",
            "processor_settings.archive: archive is not in processors:",
        ),
        (
            "processor_settings: {cost: {team_label: x}}",
            "processor_settings.cost: cost has its own section",
        ),
        ("processor_settings: {archive: {x: 1}}", "archive.x: Extra inputs are not permitted"),
    ],
)
def test_a_processor_list_or_section_that_cannot_run_is_refused_in_one_line(
    tmp_path: Path, config: str, message: str
) -> None:
    path = tmp_path / "kubeopera.yaml"
    path.write_text(config + "\n")
    with pytest.raises(SettingsError) as refused:
        load_settings(path)
    assert message in str(refused.value) and "\n" not in str(refused.value)


def test_the_processors_listed_run_with_their_sections(tmp_path: Path) -> None:
    path = tmp_path / "kubeopera.yaml"
    path.write_text("processors: [cost]\ncost: {allowed_lateness_minutes: 3}\n")
    (cost,) = load_settings(path).build_processors()
    assert isinstance(cost, CostAllocation)
    assert cost.settings.allowed_lateness.total_seconds() == 180


def test_the_collector_loads_neither_the_processors_nor_polars(tmp_path: Path) -> None:
    """``kubeopera collect`` runs no processor (but with ``--embedded``): its 150 MiB
    budget has no room for polars and pyarrow (65 MiB), so it does not load them."""
    script = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from kubeopera.cli.main import cli\n"
        "args = ['collect', '--kubeconfig', sys.argv[1], '--cluster-name', 'it']\n"
        "result = CliRunner().invoke(cli, args)\n"
        "print('kubernetes' in sys.modules, result.exit_code != 0)\n"
        "heavy = ('polars', 'pyarrow', 'chdb', 'kubeopera.streams.processor')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\nclusters: []\n")  # no cluster in it
    result = subprocess.run(
        [sys.executable, "-c", script, str(kubeconfig)],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert result.stdout.splitlines() == ["True True", "[]"]


def test_collect_embedded_checks_the_processors_before_anything_else(tmp_path: Path) -> None:
    """With ``--embedded`` the collector runs the processors: a list it cannot run is one
    error line, before any store is created; to Kafka it runs none, and goes on."""
    config = tmp_path / "kubeopera.yaml"
    config.write_text("processors: [archive, costs]\n")
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\nclusters: []\n")
    store = tmp_path / "store"
    env = {**os.environ, "KUBEOPERA_STORAGE__PATH": str(store)}
    command = ["kubeopera", "--config", str(config), "collect", "--kubeconfig", str(kubeconfig)]
    embedded = subprocess.run(
        [*command, "--cluster-name", "it", "--embedded"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    (line,) = embedded.stderr.splitlines()
    assert embedded.returncode == 1
    assert line.startswith("kubeopera: error: config error: unknown processor 'costs' (known:")
    assert not store.exists()
    to_kafka = subprocess.run(
        [*command, "--cluster-name", "it"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert "processor" not in to_kafka.stderr and "cannot use the cluster" in to_kafka.stderr
