"""Reports the commands print, read from the store."""

from datetime import datetime

import polars as pl

from kubeopera.sinks.clickhouse import Store
from kubeopera.sinks.clickhouse.queries import cost_rows_sql
from kubeopera.streams.aggregate import INPUT_MEASURES, Sharing, aggregate, key_columns

NO_SHARING = Sharing()
REPORT_COLUMNS = [
    "total_cost",
    "cpu_cost",
    "ram_cost",
    "gpu_cost",
    "idle_cost",
    "shared_cost",
    "cpu_efficiency",
    "ram_efficiency",
]


def cost_report(
    store: Store,
    by: str,
    since: datetime,
    until: datetime | None = None,
    sharing: Sharing = NO_SHARING,
) -> pl.DataFrame:
    """Cost per group of ``by`` between ``since`` and ``until`` (now), largest first."""
    keys = key_columns(by)
    rows = store.query(cost_rows_sql(keys, INPUT_MEASURES, since, until))
    if rows.is_empty():
        return pl.DataFrame(
            schema={**{k: pl.String for k in keys}, **{c: pl.Float64 for c in REPORT_COLUMNS}}
        )
    return aggregate(rows, by, sharing).select(*keys, *REPORT_COLUMNS)
