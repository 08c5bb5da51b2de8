"""Reports over the store: the queries the commands run, and OpenCost's aggregation and
sharing of cost rows. Above sinks and streams, below the CLI, which only calls these."""

from kubeopera.reports.aggregate import Sharing, aggregate, key_columns
from kubeopera.reports.changes import change_timeline
from kubeopera.reports.cost import cost_report, pricing_notes
from kubeopera.reports.sql import EXAMPLE_SQL
from kubeopera.reports.store import analyst_query, sample_counts, schema_status

__all__ = [
    "EXAMPLE_SQL",
    "Sharing",
    "aggregate",
    "analyst_query",
    "change_timeline",
    "cost_report",
    "key_columns",
    "pricing_notes",
    "sample_counts",
    "schema_status",
]
