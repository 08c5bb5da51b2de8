"""A folder laid out like the Numenta Anomaly Benchmark's corpus, read: ``data/<group>/
<series>.csv`` (``timestamp,value``) and ``labels/combined_windows.json`` (for each
``<group>/<series>.csv``, its anomaly windows as ``[start, end]`` timestamps)."""

import csv
import json
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

WINDOWS = Path("labels") / "combined_windows.json"


class CorpusError(ValueError):
    """A folder that is not a NAB corpus, or a file of it that cannot be read: one line
    naming the file (and line)."""


@dataclass(frozen=True)
class LabelledSeries:
    """One series: its name (``group/series.csv``), its points and its anomaly windows
    as (first, last) point indexes, inclusive."""

    name: str
    timestamps: list[datetime]
    values: list[float]
    windows: list[tuple[int, int]]


def load_corpus(folder: Path) -> list[LabelledSeries]:
    """Every labelled series under ``folder``, by name. Raises ``CorpusError``."""
    labels = folder / WINDOWS
    if not labels.is_file():
        raise CorpusError(f"{folder}: no {WINDOWS} (the anomaly windows) in it")
    try:
        windows = json.loads(labels.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise CorpusError(f"{labels}: not JSON ({error})") from None
    if not isinstance(windows, dict):
        raise CorpusError(f"{labels}: not a mapping of series to windows")
    files = sorted((folder / "data").glob("*/*.csv"))
    if not files:
        raise CorpusError(f"{folder}: no data/<group>/<series>.csv in it")
    return [_series(f, f"{f.parent.name}/{f.name}", windows) for f in files]


def _series(path: Path, name: str, windows: dict[str, object]) -> LabelledSeries:
    if name not in windows:
        raise CorpusError(f"{path}: no windows for {name} in {WINDOWS}")
    timestamps, values = [], []
    with path.open(newline="") as file:
        for number, row in enumerate(csv.DictReader(file), start=2):
            try:
                at, value = _time(row["timestamp"]), float(row["value"])
            except (KeyError, TypeError, ValueError):
                raise CorpusError(f"{path}, line {number}: not timestamp,value: {row}") from None
            if not math.isfinite(value):
                raise CorpusError(f"{path}, line {number}: value {row['value']} is not finite")
            timestamps.append(at)
            values.append(value)
    index = {at: i for i, at in enumerate(timestamps)}
    found = []
    for window in windows[name]:  # type: ignore[attr-defined]
        try:
            found.append((index[_time(window[0])], index[_time(window[1])]))
        except (KeyError, IndexError, TypeError, ValueError):
            raise CorpusError(f"{path}: window {window} is not two of its timestamps") from None
    return LabelledSeries(name, timestamps, values, found)


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.strip())
