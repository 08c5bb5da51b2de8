"""The change timeline as a report: what changed, field by field, newest first."""

from datetime import datetime

import polars as pl

from kubeopera.reports.sql import changes_sql, notable_changes_sql
from kubeopera.sinks.clickhouse import Store


def change_timeline(store: Store, since: datetime, filters: dict[str, str]) -> pl.DataFrame:
    """Rows of ``v_changes`` since ``since`` (UTC) matching ``filters`` (see
    ``reports.sql.changes_sql``), newest first."""
    return store.query(changes_sql(since, filters))


def notable_changes(store: Store, since: datetime, until: datetime, limit: int) -> pl.DataFrame:
    """Rollouts and edits by hand in [since, until), newest first
    (``reports.sql.notable_changes_sql``)."""
    return store.query(notable_changes_sql(since, until, limit))
