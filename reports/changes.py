"""The change timeline as a report: what changed, field by field, newest first."""

from datetime import datetime

import polars as pl

from kubeopera.reports.sql import changes_sql
from kubeopera.sinks.clickhouse import Store


def change_timeline(store: Store, since: datetime, filters: dict[str, str]) -> pl.DataFrame:
    """Rows of ``v_changes`` since ``since`` (UTC) matching ``filters`` (see
    ``reports.sql.changes_sql``), newest first."""
    return store.query(changes_sql(since, filters))
