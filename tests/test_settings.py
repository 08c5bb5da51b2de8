"""Settings: YAML file, environment overrides, and what they wire together."""

import os
import subprocess
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
        "kubeopera: error: config error at collector.redaction_key: Value error, too short to "
        "resist guessing: use 16+ characters (openssl rand -hex 32)"
    ]
    assert "hunter2" not in result.stderr
