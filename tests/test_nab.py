"""NAB scoring (``reports.nab``) on cases worked out by hand from the published method, and
reading a NAB-style corpus (``reports.nab_corpus``)."""

import json
import math
import re
from pathlib import Path

import pytest

from kubeopera.reports.nab import PROFILES, normalised, probation_length, series_score
from kubeopera.reports.nab_corpus import CorpusError, load_corpus


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def test_a_detection_a_false_positive_and_a_miss_score_as_worked_out_by_hand() -> None:
    """20 points; probation floor(0.15 * 20) = 3; windows [8, 11] (4 points) and
    [16, 18]; a detection at 9, a false positive at 14, nothing in the second window,
    and a detection at 1 that the probation hides.

    - at 9: position -(11 - 9 + 1) / 4 = -0.75, weight (2 sigmoid(3.75) - 1) divided by
      the best, 2 sigmoid(5) - 1 (tp weight 1);
    - at 14: 3 past the first window's right edge, over its width less one (3): 1.0,
      weight (2 sigmoid(-5) - 1) * 0.11;
    - the second window: -1.
    Normalised: null -2 (two windows missed), perfect 2."""
    detections = [False] * 20
    for index in (1, 9, 14):
        detections[index] = True
    score = series_score(detections, [(8, 11), (16, 18)], PROFILES["standard"])
    tp = (2 * sigmoid(3.75) - 1) / (2 * sigmoid(5) - 1)
    fp = (2 * sigmoid(-5) - 1) * 0.11
    assert (score.tp, score.fp, score.fn) == (1, 1, 1)
    assert score.raw == pytest.approx(tp + fp - 1, abs=1e-12)
    assert round(tp + fp - 1, 6) == -0.141538  # 0.966989 - 0.108528 - 1
    assert normalised(score.raw, 2, PROFILES["standard"]) == pytest.approx(
        100 * (tp + fp - 1 + 2) / 4, abs=1e-9
    )
    low_fn = series_score(detections, [(8, 11), (16, 18)], PROFILES["reward_low_FN_rate"])
    assert low_fn.raw == pytest.approx(tp + fp - 2, abs=1e-12)  # a miss costs 2 there


def test_only_the_best_detection_of_a_window_counts_and_nothing_scores_zero() -> None:
    windows = [(10, 19)]
    late, early = [False] * 40, [False] * 40
    late[19] = True
    early[10] = early[15] = early[19] = True
    profile = PROFILES["standard"]
    assert series_score(early, windows, profile).raw == pytest.approx(1.0)
    assert series_score(late, windows, profile).raw == pytest.approx(
        (2 * sigmoid(5 / 10) - 1) / (2 * sigmoid(5) - 1)
    )
    nothing = series_score([False] * 40, windows, profile)
    assert normalised(nothing.raw, nothing.tp + nothing.fn, profile) == 0.0


def test_the_probation_is_fifteen_percent_up_to_750_points() -> None:
    assert (probation_length(100), probation_length(10_000)) == (15, 750)
    with pytest.raises(ValueError, match="outside the series"):
        series_score([False] * 5, [(3, 9)], PROFILES["standard"])


def write_corpus(folder: Path, rows: str, windows: object) -> Path:
    (folder / "data" / "group").mkdir(parents=True)
    (folder / "data" / "group" / "s.csv").write_text("timestamp,value\n" + rows)
    (folder / "labels").mkdir()
    (folder / "labels" / "combined_windows.json").write_text(json.dumps(windows))
    return folder


def test_a_corpus_is_read_with_its_windows_as_point_indexes(tmp_path: Path) -> None:
    rows = "".join(f"2026-01-01 00:0{m}:00,{m}.5\n" for m in range(6))
    windows = {"group/s.csv": [["2026-01-01 00:02:00.000000", "2026-01-01 00:04:00.000000"]]}
    (series,) = load_corpus(write_corpus(tmp_path, rows, windows))
    assert (series.name, series.values[:2], series.windows) == ("group/s.csv", [0.5, 1.5], [(2, 4)])


@pytest.mark.parametrize(
    ("rows", "windows", "message"),
    [
        ("2026-01-01 00:00:00,nan\n", {"group/s.csv": []}, "line 2: value nan is not finite"),
        ("2026-01-01 00:00:00,-\n", {"group/s.csv": []}, "s.csv, line 2: not timestamp,value"),
        ("2026-01-01 00:00:00,1\n", {}, "no windows for group/s.csv"),
        ("2026-01-01 00:00:00,1\n", {"group/s.csv": [["2027-01-01", "2027-01-02"]]},
         "is not two of its timestamps"),
    ],
)  # fmt: skip
def test_what_cannot_be_read_is_named(
    tmp_path: Path, rows: str, windows: object, message: str
) -> None:
    with pytest.raises(CorpusError, match=re.escape(message)):
        load_corpus(write_corpus(tmp_path, rows, windows))


def test_a_folder_without_labels_is_no_corpus(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match=re.escape("no labels/combined_windows.json")):
        load_corpus(tmp_path)
