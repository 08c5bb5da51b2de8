"""Contracts to columnar frames: the one place messages become table rows.

Processors compute on these frames, and the sink inserts them as they are (a list of
key/value structs becomes a ClickHouse Map).
"""

from itertools import chain

import numpy as np
import polars as pl
import pyarrow as pa
from pydantic_core import to_json

from kubeopera.models import (
    Baseline,
    DeadLetter,
    Finding,
    KubeEvent,
    MetricBatch,
    ObjectChange,
)

TIME = pl.Datetime("ms", "UTC")
LABEL_TYPE = pl.List(pl.Struct({"key": pl.String, "value": pl.String}))

_SAMPLE_COLUMNS: dict[str, pl.DataType] = {
    "namespace": pl.String(),
    "pod": pl.String(),
    "pod_uid": pl.String(),
    "container": pl.String(),
    "cpu_cores": pl.Float64(),
    "memory_working_set_bytes": pl.Float64(),
    "memory_rss_bytes": pl.Float64(),
    "restarts": pl.UInt32(),
    "cpu_throttled_ratio": pl.Float64(),
}


def map_series(name: str, mappings: list[dict[str, str]]) -> pl.Series:
    """Label maps as one column of sorted key/value structs (a ClickHouse Map).

    Built through Arrow's map layout (offsets, keys, values) because polars builds
    struct lists from Python dicts an order of magnitude slower.
    """
    keys = [sorted(m) for m in mappings]
    offsets = np.zeros(len(mappings) + 1, dtype=np.int32)
    np.cumsum([len(k) for k in keys], out=offsets[1:])
    flat_keys = list(chain.from_iterable(keys))
    values = [m[k] for m, ks in zip(mappings, keys, strict=True) for k in ks]
    column = pa.MapArray.from_arrays(
        offsets, pa.array(flat_keys, pa.string()), pa.array(values, pa.string())
    )
    series = pl.Series(name, column)
    return series.cast(LABEL_TYPE)


def samples_frame(batches: list[MetricBatch]) -> pl.DataFrame:
    """Per-container samples of the batches, one row each (table ``raw_metrics``).

    Columns are flattened in Python and handed to polars whole: building list columns
    per batch costs ten times more.
    """
    scrape_columns = pl.DataFrame(
        {
            "cluster": [b.cluster for b in batches],
            "node": [b.node for b in batches],
            "window_start": [b.window_start for b in batches],
            "window_end": [b.window_end for b in batches],
        },
        schema={"cluster": pl.String, "node": pl.String, "window_start": TIME, "window_end": TIME},
    )
    repeats = np.repeat(np.arange(len(batches)), [len(b.containers) for b in batches])
    samples = {
        name: pl.Series(
            name, list(chain.from_iterable(getattr(b.containers, name) for b in batches)), dtype
        )
        for name, dtype in _SAMPLE_COLUMNS.items()
    }
    return _one_sample_per_container(scrape_columns[repeats].with_columns(**samples))


SAMPLE_KEY = ["cluster", "node", "window_start", "pod_uid", "container"]


def _one_sample_per_container(samples: pl.DataFrame) -> pl.DataFrame:
    """A container listed twice in one scrape (cAdvisor lists a restarted container's
    old and new instance until the old one is collected) counts once, with the larger
    of each of its measures, whatever order they were listed in: summing would charge
    it twice. (OpenCost averages duplicate series; the old instance uses next to
    nothing, so the average would halve the running one.)"""
    if not samples.select(pl.struct(SAMPLE_KEY).is_duplicated().any()).item():
        return samples
    measures = [c for c in _SAMPLE_COLUMNS if _SAMPLE_COLUMNS[c].is_numeric()]
    return (
        samples.group_by(SAMPLE_KEY, maintain_order=True)
        .agg(pl.exclude(*SAMPLE_KEY, *measures).first(), pl.col(measures).max())
        .select(samples.columns)
    )


def scrapes_frame(batches: list[MetricBatch]) -> pl.DataFrame:
    """One row per node scrape: window, capacity and usage (table ``raw_node_metrics``)."""
    return pl.DataFrame(
        {
            "cluster": [b.cluster for b in batches],
            "node": [b.node for b in batches],
            "window_start": [b.window_start for b in batches],
            "window_end": [b.window_end for b in batches],
            "capacity_cpu": [b.node_capacity.cpu_cores for b in batches],
            "capacity_memory_bytes": [b.node_capacity.memory_bytes for b in batches],
            "capacity_gpus": [b.node_capacity.gpus for b in batches],
            "usage_cpu": [b.node_usage.cpu_cores for b in batches],
            "usage_memory_bytes": [b.node_usage.memory_bytes for b in batches],
        },
        schema_overrides={
            "cluster": pl.String,
            "node": pl.String,
            "window_start": TIME,
            "window_end": TIME,
        },
    )


def objects_frame(changes: list[ObjectChange]) -> pl.DataFrame:
    """Object changes as ``raw_objects`` rows; the object itself as JSON text."""
    return pl.DataFrame(
        {
            "cluster": [c.cluster for c in changes],
            "kind": [c.kind for c in changes],
            "namespace": [c.namespace for c in changes],
            "name": [c.name for c in changes],
            "uid": [c.uid for c in changes],
            "api_version": [c.api_version for c in changes],
            "resource_version": [c.resource_version for c in changes],
            "generation": [c.generation for c in changes],
            "observed_at": [c.observed_at for c in changes],
            "change": [str(c.change) for c in changes],
            "object": [to_json(c.object).decode() for c in changes],
            "labels": map_series("labels", [c.labels for c in changes]),
            "annotations": map_series("annotations", [c.annotations for c in changes]),
            "owner_chain": [to_json(c.owner_chain).decode() for c in changes],
            "last_manager": [c.last_manager or "" for c in changes],
        },
        schema_overrides={
            "generation": pl.Int64,
            "observed_at": TIME,
            "labels": LABEL_TYPE,
            "annotations": LABEL_TYPE,
            **{
                c: pl.String for c in ("cluster", "kind", "namespace", "name", "uid", "api_version")
            },
            **{c: pl.String for c in ("resource_version", "change", "object", "owner_chain")},
            "last_manager": pl.String,
        },
    )


def events_frame(events: list[KubeEvent]) -> pl.DataFrame:
    """Kubernetes events as ``raw_events`` rows."""
    strings = ["cluster", "namespace", "name", "uid", "type", "reason", "message"]
    return pl.DataFrame(
        {
            **{c: [getattr(e, c) for e in events] for c in strings},
            "involved_kind": [e.involved.kind for e in events],
            "involved_name": [e.involved.name for e in events],
            "involved_uid": [e.involved.uid for e in events],
            "source_component": [e.source.component for e in events],
            "source_host": [e.source.host for e in events],
            "count": [e.count for e in events],
            "first_time": [e.first_time for e in events],
            "last_time": [e.last_time for e in events],
        },
        schema_overrides={
            **{c: pl.String for c in strings},
            **{c: pl.String for c in ("involved_kind", "involved_name", "involved_uid")},
            "source_component": pl.String,
            "source_host": pl.String,
            "count": pl.UInt32,
            "first_time": TIME,
            "last_time": TIME,
        },
    )


def deadletters_frame(letters: list[DeadLetter]) -> pl.DataFrame:
    """Dead letters as ``deadletter`` rows; undecodable bytes are kept as text."""
    return pl.DataFrame(
        {
            "at": [d.at for d in letters],
            "source_topic": [d.source_topic for d in letters],
            "partition": [d.partition for d in letters],
            "offset": [d.offset for d in letters],
            "key": [d.key for d in letters],
            "raw": [d.raw.decode("utf-8", errors="replace") for d in letters],
            "error": [d.error for d in letters],
        },
        schema_overrides={
            "at": TIME,
            "source_topic": pl.String,
            "partition": pl.Int32,
            "offset": pl.Int64,
            "key": pl.String,
            "raw": pl.String,
            "error": pl.String,
        },
    )


def findings_frame(findings: list[Finding]) -> pl.DataFrame:
    """Findings as ``findings`` rows: the subject's fields flattened, the evidence as JSON."""
    return pl.DataFrame(
        {
            "cluster": [f.subject.cluster for f in findings],
            "namespace": [f.subject.namespace for f in findings],
            "finding_kind": [str(f.kind) for f in findings],
            "fingerprint": [f.fingerprint for f in findings],
            "last_seen": [f.last_seen for f in findings],
            "first_seen": [f.first_seen for f in findings],
            "status": [str(f.status) for f in findings],
            "severity": [str(f.severity) for f in findings],
            "kind": [f.subject.kind for f in findings],
            "name": [f.subject.name for f in findings],
            "summary": [f.summary for f in findings],
            "evidence": [to_json(f.evidence).decode() for f in findings],
            "remediation": [f.remediation for f in findings],
        },
        schema_overrides={
            **dict.fromkeys(
                ("cluster", "namespace", "finding_kind", "fingerprint", "status", "severity",
                 "kind", "name", "summary", "evidence", "remediation"),
                pl.String,
            ),
            "last_seen": TIME,
            "first_seen": TIME,
        },
    )  # fmt: skip


def baselines_frame(baselines: list[Baseline]) -> pl.DataFrame:
    """Baselines as ``baselines`` rows, the object as JSON (empty: withdrawn)."""
    return pl.DataFrame(
        {
            "cluster": [b.cluster for b in baselines],
            "namespace": [b.namespace for b in baselines],
            "kind": [b.kind for b in baselines],
            "name": [b.name for b in baselines],
            "baseline": [str(b.baseline) for b in baselines],
            "recorded_at": [b.recorded_at for b in baselines],
            "api_version": [b.api_version for b in baselines],
            "origin": [b.origin for b in baselines],
            "object": ["" if b.object is None else to_json(b.object).decode() for b in baselines],
        },
        schema_overrides={
            **dict.fromkeys(
                ("cluster", "namespace", "kind", "name", "baseline", "api_version", "origin",
                 "object"),
                pl.String,
            ),
            "recorded_at": TIME,
        },
    )  # fmt: skip
