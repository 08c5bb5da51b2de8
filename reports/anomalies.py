"""Anomalies as a report: the anomaly episodes of a recent span, open or resolved."""

from datetime import datetime

import polars as pl

from kubeopera.reports.sql import literal, time_literal
from kubeopera.sinks.clickhouse import Store

KINDS = {
    "cost": ("cost",),
    "usage": ("cpu", "memory"),
    "restarts": ("restarts", "oom_kills"),
    "warnings": ("warnings",),
}
"""What ``kubeopera anomalies --kind`` names: series kinds."""


def anomalies_sql(since: datetime, kind: str | None) -> str:
    """Anomaly episodes open now or seen since ``since``, newest first, one row each:
    ``began`` (the hour it opened), ``ended`` (the hour the series was back to normal;
    NULL while open), ``series_kind``, the subject (``cluster``, ``namespace``, ``kind``,
    ``name``), what the series was when it opened (``observed``) against the most its
    detector expected then (``expected_at_most``), in ``unit``."""
    where = "finding_kind = 'anomaly'"
    if kind:
        kinds = ", ".join(literal(k) for k in KINDS[kind])
        where += f" AND JSONExtractString(evidence, 'series_kind') IN ({kinds})"
    opened = "argMin(evidence, last_seen)"
    return (
        "SELECT first_seen AS began, "
        "if(argMax(status, last_seen) = 'resolved', max(last_seen), NULL) AS ended, "
        f"JSONExtractString({opened}, 'series_kind') AS series_kind, "
        "cluster, namespace, kind, name, "
        f"JSONExtractFloat({opened}, 'observed') AS observed, "
        f"if(JSONType({opened}, 'band') = 'Null', NULL, JSONExtractFloat({opened}, 'band', 2)) "
        f"AS expected_at_most, JSONExtractString({opened}, 'unit') AS unit "
        f"FROM findings FINAL WHERE {where} "
        "GROUP BY fingerprint, first_seen, cluster, namespace, kind, name "
        f"HAVING ended IS NULL OR ended >= {time_literal(since)} "
        "ORDER BY began DESC, cluster, namespace, kind, name"
    )


def anomalies(store: Store, since: datetime, kind: str | None = None) -> pl.DataFrame:
    """``anomalies_sql`` on the store."""
    return store.query(anomalies_sql(since, kind))
