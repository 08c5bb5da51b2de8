"""The stages' layering (``[tool.importlinter]`` in pyproject.toml), checked by import-linter."""

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _lint_imports() -> str:
    beside = Path(sys.executable).parent / "lint-imports"  # this environment's first
    found = str(beside) if beside.exists() else shutil.which("lint-imports")
    if found is None:
        pytest.skip('lint-imports is not installed (pip install -e ".[dev]" brings it)')
    return found


def test_no_stage_imports_a_stage_it_must_not() -> None:
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    result = subprocess.run(
        [_lint_imports(), "--no-cache"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Contracts: {len(contracts['contracts'])} kept, 0 broken." in result.stdout
