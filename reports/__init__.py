"""Reports over the store: the queries the commands run, and OpenCost's aggregation and
sharing of cost rows. Above sinks and streams, below the CLI, which only calls these."""

from kubeopera.reports.aggregate import Sharing, aggregate, key_columns
from kubeopera.reports.anomalies import anomalies
from kubeopera.reports.budgets import (
    budget_report,
    record_budgets,
    recorded_budgets,
    recorded_spends,
)
from kubeopera.reports.changes import change_timeline, notable_changes
from kubeopera.reports.cost import cost_report, pricing_notes
from kubeopera.reports.drift import (
    across_clusters,
    clusters,
    live_objects,
    open_drift,
    open_findings,
    recorded_baselines,
)
from kubeopera.reports.sql import EXAMPLE_SQL
from kubeopera.reports.store import analyst_query, sample_counts, schema_status

__all__ = [
    "EXAMPLE_SQL",
    "Sharing",
    "across_clusters",
    "aggregate",
    "analyst_query",
    "anomalies",
    "budget_report",
    "change_timeline",
    "clusters",
    "cost_report",
    "key_columns",
    "live_objects",
    "notable_changes",
    "open_drift",
    "open_findings",
    "pricing_notes",
    "record_budgets",
    "recorded_baselines",
    "recorded_budgets",
    "recorded_spends",
    "sample_counts",
    "schema_status",
]
