"""The ClickHouse store: migrated schema, columnar inserts of frames, analyst queries."""

import hashlib
from typing import Self

import polars as pl
import pyarrow as pa

from kubeopera.sinks.clickhouse.backends import Backend
from kubeopera.sinks.clickhouse.migrations import migrate
from kubeopera.sinks.clickhouse.retry import DEFAULT_BACKOFF, Backoff, with_retries

RAW_RETENTION = {
    "raw_metrics": "window_start",
    "raw_node_metrics": "window_start",
    "raw_objects": "observed_at",
    "raw_events": "last_time",
}
"""Raw tables and the time column their TTL counts from."""

HISTORY_RETENTION = {"object_changes": "observed_at", "findings": "last_seen"}
"""The change timeline and the findings' history, kept longer than raw data."""


class Store:
    """One ClickHouse database holding every KubeOpera table.

    Opening it applies pending migrations and the raw-data retention, so a store is
    always at the schema this code expects.
    """

    def __init__(
        self,
        backend: Backend,
        raw_retention_days: int = 30,
        backoff: Backoff = DEFAULT_BACKOFF,
        history_retention_days: int = 365,
    ) -> None:
        self.backend = backend
        self.backoff = backoff
        migrate(backend)
        self._apply_retention(RAW_RETENTION, raw_retention_days)
        self._apply_retention(HISTORY_RETENTION, history_retention_days)

    def _apply_retention(self, tables: dict[str, str], days: int) -> None:
        """Set the TTL of ``tables`` (name -> time column) to ``days`` (0 keeps their rows
        forever); no-op when unchanged."""
        engines = {
            row["name"]: row["engine_full"]
            for row in self.backend.query(
                "SELECT name, engine_full FROM system.tables WHERE database = currentDatabase()"
            ).to_pylist()
        }
        for table, column in tables.items():
            current = engines[table]
            if days > 0 and f"toIntervalDay({days})" not in current:
                self.backend.execute(
                    f"ALTER TABLE {table} MODIFY TTL toDateTime({column}) + INTERVAL {days} DAY"
                )
            elif days <= 0 and " TTL " in current:
                self.backend.execute(f"ALTER TABLE {table} REMOVE TTL")

    def insert(self, table: str, frame: pl.DataFrame, deduplicate: bool = False) -> None:
        """Insert a frame as one columnar block; key/value list columns become Maps.

        With ``deduplicate`` the block carries a token made from its content: inserting
        the same rows again (a replay) is skipped by the table and its materialized views.
        The frame goes as one chunk: ClickHouse would take each Arrow chunk as a block of
        its own, each deduplicated by the token and the block's number.
        """
        if frame.height:
            token = content_token(table, frame) if deduplicate else None
            data = to_arrow(frame.rechunk())
            with_retries(lambda: self.backend.insert(table, data, token), self.backoff)

    def reset(self) -> list[str]:
        """Empty every data table (the schema stays); returns the tables emptied."""
        tables = self.query(
            "SELECT name FROM system.tables WHERE database = currentDatabase() "
            "AND engine NOT IN ('View', 'MaterializedView') AND name != 'schema_migrations' "
            "ORDER BY name"
        )["name"].to_list()
        for table in tables:
            self.backend.execute(f"TRUNCATE TABLE {table}")
        return tables

    def query(self, sql: str) -> pl.DataFrame:
        """The rows of ``sql``; a column name the statement repeats (``SELECT a, a``)
        is numbered from its second use on (``a_2``), as a frame's names are unique."""
        table = self.backend.query(sql)
        if len(set(table.column_names)) != table.num_columns:
            table = table.rename_columns(_numbered(table.column_names))
        result = pl.from_arrow(table)
        assert isinstance(result, pl.DataFrame)
        return result

    def read_only(self) -> None:
        """Refuse every later statement that would change the store (ClickHouse's
        ``readonly`` setting): for SQL that is not the pipeline's own."""
        self.backend.read_only()

    def describe(self) -> str:
        return self.backend.describe()

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def content_token(table: str, frame: pl.DataFrame) -> str:
    """A token that only the same rows in the same order give, however the frame is laid
    out in memory: its rows as JSON lines, hashed. (The Arrow IPC bytes it was once made
    of depend on chunks and buffers: a restarted worker wrote an hour it had written
    before, identical, under another token, and the rollups counted it twice.)"""
    return hashlib.sha256(table.encode() + frame.write_ndjson().encode()).hexdigest()


def to_arrow(frame: pl.DataFrame) -> pa.Table:
    table = frame.to_arrow()
    for index, field in enumerate(table.schema):
        if _is_key_value_list(field.type):
            table = table.set_column(index, field.name, _as_map(table.column(index)))
    return table


def _is_key_value_list(kind: pa.DataType) -> bool:
    if not (pa.types.is_list(kind) or pa.types.is_large_list(kind)):
        return False
    item = kind.value_type
    return pa.types.is_struct(item) and [f.name for f in item] == ["key", "value"]


def _as_map(column: pa.ChunkedArray) -> pa.Array:
    lists = column.combine_chunks()
    if pa.types.is_large_list(lists.type):
        lists = lists.cast(pa.list_(lists.type.value_type))
    entries = lists.values
    return pa.MapArray.from_arrays(lists.offsets, entries.field("key"), entries.field("value"))


def _numbered(names: list[str]) -> list[str]:
    """``names`` with each repeat numbered (``a, a, b`` -> ``a, a_2, b``), avoiding the
    names already there."""
    taken, out = set(names), []
    seen: dict[str, int] = {}
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        if seen[name] == 1:
            out.append(name)
            continue
        number = seen[name]
        while f"{name}_{number}" in taken:
            number += 1
        taken.add(f"{name}_{number}")
        out.append(f"{name}_{number}")
    return out
