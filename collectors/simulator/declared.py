"""The simulated fleet's declared manifests as files: what each workload's owners last
applied (its latest declared baseline), one YAML file per object under a folder per
cluster, ``<cluster>/<namespace>/<kind>-<name>.yaml``, as a GitOps repository lays them
out. ``kubeopera drift --baseline <folder>/<cluster> --cluster <cluster>`` then finds the
edits made by hand since (the demo's ground truth)."""

import shutil
from collections.abc import Iterable
from pathlib import Path

import yaml

from kubeopera.models import Baseline, BaselineKind


def write_declared(baselines: Iterable[Baseline], folder: Path) -> int:
    """Write the latest declared baseline of each object (a withdrawn one: no file) into
    ``folder``, emptied first; returns how many files were written."""
    latest: dict[str, Baseline] = {}
    for baseline in baselines:
        if baseline.baseline == BaselineKind.DECLARED:
            current = latest.get(baseline.object_key())
            if current is None or current.recorded_at <= baseline.recorded_at:
                latest[baseline.object_key()] = baseline
    if folder.exists():
        shutil.rmtree(folder)
    written = 0
    for baseline in latest.values():
        if baseline.object is None:
            continue
        path = folder / baseline.cluster / (baseline.namespace or "_cluster")
        path.mkdir(parents=True, exist_ok=True)
        text = yaml.safe_dump(baseline.object, sort_keys=False)
        (path / f"{baseline.kind.lower()}-{baseline.name}.yaml").write_text(text)
        written += 1
    return written
