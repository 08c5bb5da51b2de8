"""The wheel that a plain ``pip install .`` and ``deploy/Dockerfile`` install: installed
into a fresh virtual environment, ``kubeopera`` runs from it (not from this source
tree) with every file its commands read: migrations, the instance catalogue, the Kafka
pom and the test API server's Go sources."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


PACKAGE_DATA = (
    "deploy/testcluster/main.go",
    "deploy/testcluster/go.mod",
    "deploy/testcluster/go.sum",
    "deploy/kafka/pom.xml",
    "models/data/instance_types.csv",
    "sinks/clickhouse/migrations/001_raw_tables.sql",
)


def test_the_installed_wheel_carries_what_every_command_needs(tmp_path: Path) -> None:
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps"]
    subprocess.run([*pip_wheel, "-w", str(tmp_path), str(ROOT)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("kubeopera-*.whl")
    venv = tmp_path / "venv"
    subprocess.run(  # the dependencies come from this interpreter's site-packages
        [sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True
    )
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", "--no-deps", str(wheel)],
        check=True, capture_output=True,
    )  # fmt: skip
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import kubeopera.cli; print(kubeopera.cli.__file__)"],
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
