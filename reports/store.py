"""Reports on the store itself: its schema, what it holds, and analyst SQL."""

import polars as pl

from kubeopera.reports.sql import SAMPLE_COUNTS_SQL, SCHEMA_SQL
from kubeopera.sinks.clickhouse import Store


def schema_status(store: Store) -> tuple[int, int]:
    """The latest migration applied to the store and how many are applied.

    Raises ``ClickHouseError`` when the store fails."""
    latest, count = store.query(SCHEMA_SQL).row(0)
    return latest, count


def sample_counts(store: Store) -> dict[str, int]:
    """What the store's raw scrapes cover: distinct ``clusters``, distinct ``pods`` (by
    uid) and container ``samples`` (rows of ``raw_metrics``, whatever their time).

    Raises ``ClickHouseError`` when the store fails."""
    counts: dict[str, int] = store.query(SAMPLE_COUNTS_SQL).row(0, named=True)
    return counts


def analyst_query(store: Store, sql: str) -> pl.DataFrame:
    """The result of analyst SQL (ClickHouse dialect) on the store, e.g. over
    ``v_cost_by_namespace_daily`` (dashboards/README.md documents the views).

    Raises ``ClickHouseError`` for SQL the store refuses or cannot run."""
    return store.query(sql)
