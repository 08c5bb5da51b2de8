"""``kubeopera anomalies eval`` on the real labelled data (NAB's realKnownCause, in
../shared/data/nab): KubeOpera's best detector (seasonal or contextual) beats the
windowed-Gaussian baseline and river's HalfSpaceTrees under the standard profile, side by
side in one run."""

import json
from pathlib import Path

import pytest
from cli_tools import run_kubeopera
from conftest import SHARED_DATA

pytestmark = pytest.mark.slow  # the command as a subprocess, over 70k points

NAB = SHARED_DATA / "nab"


def test_the_best_kubeopera_detector_beats_the_baselines_on_real_known_causes() -> None:
    if not (NAB / "labels").exists():
        pytest.skip(f"{NAB} is not there")
    detectors = ["seasonal", "contextual", "windowed_gaussian", "half_space_trees"]
    args = [a for d in detectors for a in ("--detector", d)]
    result = run_kubeopera(None, "anomalies", "eval", "--nab", str(NAB), *args, "--format", "json")
    assert result.returncode == 0, result.stderr
    standard = {row["detector"]: row["standard"] for row in json.loads(result.stdout)}
    assert set(standard) == set(detectors)
    best = max(standard["seasonal"], standard["contextual"])
    assert best > standard["windowed_gaussian"] > 0
    assert best > standard["half_space_trees"]


def test_a_folder_without_labels_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "data" / "g").mkdir(parents=True)
    result = run_kubeopera(None, "anomalies", "eval", "--nab", str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"kubeopera: error: {tmp_path}: no labels/combined_windows.json (the anomaly windows) in it"
    )
