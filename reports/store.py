"""Reports on the store itself: its schema, what it holds, and analyst SQL."""

import polars as pl
import sqlparse

from kubeopera.reports.sql import SAMPLE_COUNTS_SQL, SCHEMA_SQL
from kubeopera.sinks.clickhouse import Store


def schema_status(store: Store) -> tuple[int, int]:
    """The latest migration applied to the store and how many are applied.

    Raises ``ClickHouseError`` when the store fails."""
    latest, count = store.query(SCHEMA_SQL).row(0)
    return latest, count


def sample_counts(store: Store) -> dict[str, int]:
    """What the store's raw scrapes cover: distinct ``clusters``, distinct ``pods`` (by
    uid, every pod that ran), container ``samples`` (rows of ``raw_metrics``, whatever
    their time) and ``pods_at_a_time`` (the pods of a scrape window, on average).

    Raises ``ClickHouseError`` when the store fails."""
    counts: dict[str, int] = store.query(SAMPLE_COUNTS_SQL).row(0, named=True)
    return counts


class QueryError(ValueError):
    """Analyst SQL that is not one statement."""


def one_statement(sql: str) -> str:
    """The one statement of ``sql`` (comments and a trailing ``;`` allowed).

    Raises ``QueryError`` for an empty query or several statements: a second statement's
    answer would silently replace the first's.

    >>> one_statement("SELECT ';' AS x; -- a comment")
    "SELECT ';' AS x"
    >>> one_statement("SELECT 1 AS a; SELECT 2 AS b")
    Traceback (most recent call last):
    ...
    kubeopera.reports.store.QueryError: 2 statements given: kubeopera sql runs one at a time
    """
    statements = [s for s in sqlparse.split(sql) if _code(s)]
    if not statements:
        raise QueryError('empty query: give one SQL statement, e.g. kubeopera sql "SELECT 1"')
    if len(statements) > 1:
        raise QueryError(f"{len(statements)} statements given: kubeopera sql runs one at a time")
    return _code(statements[0])


def _code(statement: str) -> str:
    """The statement without its comments, surrounding blanks and final ``;``."""
    return str(sqlparse.format(statement, strip_comments=True)).strip().rstrip(";").strip()


def analyst_query(store: Store, sql: str) -> pl.DataFrame:
    """The result of one analyst SQL statement (ClickHouse dialect) on the store, run
    read-only, e.g. over ``v_cost_by_namespace_daily`` (dashboards/README.md documents the
    views). The store stays read-only afterwards.

    Raises ``QueryError`` unless ``sql`` is one statement, and ``ClickHouseError`` for SQL
    the store refuses (anything that writes: ``READONLY``) or cannot run."""
    statement = one_statement(sql)
    store.read_only()
    return store.query(statement)
