"""The wheel that a plain ``pip install .`` and ``deploy/Dockerfile`` install: installed
into a fresh virtual environment, ``kubeopera`` runs from it (not from this source
tree) with every file its commands read: migrations, the instance catalogue, the Kafka
pom and the test API server's Go sources."""

import os
import site
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # builds the wheel, installs it and runs the demo

ROOT = Path(__file__).resolve().parents[1]


PACKAGE_DATA = (
    "deploy/testcluster/main.go",
    "deploy/testcluster/go.mod",
    "deploy/testcluster/go.sum",
    "deploy/kafka/pom.xml",
    "models/data/instance_types.csv",
    "models/schemas/kubeopera.metrics.v1.json",
    "sinks/clickhouse/migrations/001_raw_tables.sql",
    "deploy/grafana/provisioning/datasources/kubeopera.yaml",
    "deploy/grafana/provisioning/dashboards/kubeopera.yaml",
    "reports/report.html.j2",
)


def venv_with_these_dependencies(venv: Path) -> Path:
    """A fresh virtual environment at ``venv`` that imports the dependencies from this
    interpreter's site-packages, with nothing downloaded; its python. (``venv
    --system-site-packages`` would give the *base* interpreter's site-packages, which lack
    them when the tests run in a virtual environment.) The folders are plain path entries:
    the ``.pth`` files in them, such as an editable install of this source tree, are not
    run."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    ours = [*site.getsitepackages(), site.getusersitepackages()]
    lines = [folder for folder in ours if folder in sys.path]
    (Path(purelib) / "kubeopera-tests-dependencies.pth").write_text("\n".join(lines) + "\n")
    return python


def test_the_installed_wheel_carries_what_every_command_needs(tmp_path: Path) -> None:
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--verbose", "--no-deps"]
    build = subprocess.run(
        [*pip_wheel, "-w", str(tmp_path), str(ROOT)], check=True, capture_output=True, text=True
    )
    assert "would be ignored" not in build.stdout + build.stderr  # every data folder declared
    (wheel,) = tmp_path.glob("kubeopera-*.whl")
    venv = tmp_path / "venv"
    python = venv_with_these_dependencies(venv)
    subprocess.run(  # this interpreter's pip, installing into the new environment
        [str(python), "-m", "pip", "install", "--quiet", "--no-deps", str(wheel)],
        check=True, capture_output=True,
    )  # fmt: skip
    where = subprocess.run(
        [str(python), "-c", "import kubeopera.cli; print(kubeopera.cli.__file__)"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    installed = Path(where).parents[1]
    assert installed.is_relative_to(venv)  # the wheel's copy, not the source tree
    assert [name for name in PACKAGE_DATA if not (installed / name).is_file()] == []
    env = {**os.environ, "KUBEOPERA_STORAGE__PATH": str(tmp_path / "store")}
    demo = subprocess.run(
        [str(venv / "bin" / "kubeopera"), "demo", "--clusters", "1", "--pods-per-cluster", "20",
         "--duration", "1h", "--resolution", "5m"],
        env=env, capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert demo.returncode == 0, demo.stderr
    assert "Total fleet cost: $" in demo.stdout
