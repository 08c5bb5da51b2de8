"""The ClickHouse store on the real engine: migrations, persistence, retention, inserts."""

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from kubeopera.sinks.clickhouse import MIGRATIONS, ChdbBackend, ClickHouseError, Store, migrate
from kubeopera.streams.frames import LABEL_TYPE, TIME


def test_migrations_apply_once_in_order_and_persist(tmp_path: Path) -> None:
    with Store(ChdbBackend(tmp_path), raw_retention_days=0) as store:
        applied = store.query("SELECT version, name FROM schema_migrations ORDER BY version")
        versions = applied["version"].to_list()
        assert versions == [m.version for m in MIGRATIONS] == list(range(1, 16))
        store.query("SELECT 1")  # the store answers
        frame = pl.DataFrame(
            {
                "at": [datetime(2026, 3, 2, tzinfo=UTC)],
                "source_topic": ["t"],
                "partition": [0],
                "offset": [7],
                "key": ["k"],
                "raw": ["x"],
                "error": ["bad"],
            },
            schema_overrides={"at": TIME, "partition": pl.Int32, "offset": pl.Int64},
        )
        store.insert("deadletter", frame)
    with Store(ChdbBackend(tmp_path), raw_retention_days=0) as reopened:
        assert reopened.query("SELECT count() FROM schema_migrations").item() == len(MIGRATIONS)
        assert reopened.query("SELECT offset, error FROM deadletter").rows() == [(7, "bad")]
        assert migrate(reopened.backend) == []


def test_an_edited_applied_migration_is_refused(store: Store) -> None:
    edited = [replace(MIGRATIONS[0], sql=MIGRATIONS[0].sql + "\n-- edited\n"), *MIGRATIONS[1:]]
    with pytest.raises(ClickHouseError, match="001_raw_tables changed after it was applied"):
        migrate(store.backend, edited)


def test_statements_split_on_line_end_semicolons() -> None:
    migration = replace(MIGRATIONS[0], sql="-- note; not a statement\nSELECT 1;\nSELECT ';'\n;\n")
    assert migration.statements() == ["SELECT 1", "SELECT ';'"]


def test_retention_sets_and_removes_ttl(tmp_path: Path) -> None:
    def ttl(table: str) -> str:
        with Store(ChdbBackend(tmp_path), days, history_retention_days=history) as store:
            engine: str = store.query(
                "SELECT engine_full FROM system.tables "
                f"WHERE database = currentDatabase() AND name = '{table}'"
            ).item()
        return engine

    days, history = 14, 90
    assert "TTL toDateTime(window_start) + toIntervalDay(14)" in ttl("raw_metrics")
    assert "TTL toDateTime(observed_at) + toIntervalDay(90)" in ttl("object_changes")
    assert "TTL toDateTime(last_seen) + toIntervalDay(90)" in ttl("findings")
    days, history = 0, 0
    assert " TTL " not in ttl("raw_metrics")
    assert " TTL " not in ttl("findings")


def test_label_lists_insert_as_maps_and_reset_empties_tables(store: Store) -> None:
    frame = pl.DataFrame(
        {
            "cluster": ["c"],
            "kind": ["Pod"],
            "namespace": ["n"],
            "name": ["p"],
            "uid": ["u"],
            "api_version": ["v1"],
            "resource_version": ["1"],
            "generation": [None],
            "observed_at": [datetime(2026, 3, 2, tzinfo=UTC)],
            "change": ["ADDED"],
            "object": ["{}"],
            "labels": [[{"key": "team", "value": "payments"}, {"key": "app", "value": "web"}]],
            "annotations": [[]],
            "owner_chain": ["[]"],
            "last_manager": [""],
        },
        schema_overrides={
            "observed_at": TIME,
            "labels": LABEL_TYPE,
            "annotations": LABEL_TYPE,
            "generation": pl.Int64,
        },
    )
    store.insert("raw_objects", frame)
    assert store.query(
        "SELECT labels['team'] AS team, labels['app'] AS app FROM raw_objects"
    ).rows() == [("payments", "web")]
    assert "raw_objects" in store.reset()
    assert store.query("SELECT count() FROM raw_objects").item() == 0
    assert store.query("SELECT count() FROM schema_migrations").item() == len(MIGRATIONS)


def test_sql_errors_carry_clickhouse_message(store: Store) -> None:
    with pytest.raises(ClickHouseError, match="UNKNOWN_TABLE"):
        store.query("SELECT * FROM no_such_table")


def test_a_replayed_block_counts_once_in_table_and_rollups(store: Store) -> None:
    """The same hour inserted twice (a restart, a re-run) is skipped the second time, in the
    hourly table and in the daily rollups its materialized views fill; other rows are not."""
    from test_cost_fixture import fixture_messages

    from kubeopera.streams.embedded import EmbeddedEngine

    for _ in range(2):
        EmbeddedEngine(store).run([fixture_messages()])
    daily = store.query("SELECT sum(total_cost) FROM v_cost_by_namespace_daily").item()
    assert daily == pytest.approx(2.304 + 1.632)  # one day of both nodes, not two
    assert store.query("SELECT count() FROM cost_allocation_hourly").item() == 24 * 7
    changed = store.query("SELECT * FROM cost_allocation_hourly LIMIT 1").with_columns(
        total_cost=pl.lit(99.0)
    )
    store.insert("cost_allocation_hourly", changed, deduplicate=True)
    assert store.query("SELECT count() FROM cost_allocation_hourly").item() == 24 * 7 + 1


def test_the_same_rows_laid_out_otherwise_in_memory_are_the_same_block(store: Store) -> None:
    """A restarted worker rebuilds an hour from its saved state: the same rows, in other
    chunks and buffers. Its block must be skipped as the replay it is (the rollups would
    count the hour twice), and a block with other rows must not."""
    from test_cost_fixture import fixture_messages

    from kubeopera.streams.embedded import EmbeddedEngine

    EmbeddedEngine(store).run([fixture_messages()])
    hour = store.query(
        "SELECT * FROM cost_allocation_hourly ORDER BY window_start, node, namespace, pod, "
        "container LIMIT 7"
    )
    daily = "SELECT sum(total_cost) FROM v_cost_by_namespace_daily"
    before = store.query(daily).item()
    store.insert("cost_allocation_hourly", hour, deduplicate=True)
    after_first = store.query(daily).item()
    relaid = pl.concat([hour.slice(0, 3), hour.slice(3)], rechunk=False)
    assert relaid.n_chunks() == 2 and relaid.equals(hour)
    store.insert("cost_allocation_hourly", relaid, deduplicate=True)
    assert store.query(daily).item() == pytest.approx(after_first, abs=1e-12)
    assert after_first == pytest.approx(before + hour["total_cost"].sum(), abs=1e-9)


def test_each_scrape_row_records_when_it_was_written(store: Store) -> None:
    """``raw_node_metrics.ingested_at`` is ClickHouse's clock at insert: the freshness and
    publish-to-row latency figures come from it."""
    from builders import scrape

    from kubeopera.streams.frames import scrapes_frame

    before = datetime.now(UTC)
    store.insert(
        "raw_node_metrics",
        scrapes_frame([scrape("c", "n", before, 1, (2.0, 8.0), {("ns", "p"): (0.5, 1.0)})]),
    )
    after = datetime.now(UTC)
    written = store.query("SELECT ingested_at FROM raw_node_metrics").item()
    assert before.replace(microsecond=before.microsecond // 1000 * 1000) <= written <= after


def test_datetime_columns_come_back_as_utc_times_and_uint32_stays_a_number(store: Store) -> None:
    # 1767571200 s is 2026-01-05 00:00 UTC; chDB's Arrow output writes DateTime as uint32.
    frame = store.query(
        "SELECT toDateTime(1767571200, 'UTC') AS t, toDateTime(1767571200) AS local,"
        " CAST(NULL, 'Nullable(DateTime)') AS none, toUInt32(7) AS n"
    )
    assert frame["t"].to_list() == [datetime(2026, 1, 5, tzinfo=UTC)]
    assert frame["local"].to_list() == [datetime(2026, 1, 5, tzinfo=UTC)]  # the same instant
    assert frame["none"].to_list() == [None]
    assert frame["n"].to_list() == [7]
    assert frame.schema["n"] == pl.UInt32


def test_a_column_name_the_statement_repeats_is_numbered(store: Store) -> None:
    frame = store.query("SELECT 1 AS a, 2 AS b, 3 AS a_2, name, name FROM system.one AS t"
                        " CROSS JOIN (SELECT 'x' AS name) AS u")  # fmt: skip
    assert frame.columns == ["a", "b", "a_2", "name", "name_2"]
    assert frame.row(0) == (1, 2, 3, "x", "x")
