"""The clickhouse-driver backend over the native protocol, against a real server.

The server here is Debian's ClickHouse 18.16, which predates LowCardinality, Map and
DateTime64, so the migrations themselves are proven on chDB; these tests prove the
protocol path the migrations and inserts share: statements, columnar inserts, typed
results and the server's errors.
"""

from datetime import UTC, datetime

import pyarrow as pa
import pytest

from kubeopera.sinks.clickhouse import ClickHouseError, ServerBackend


@pytest.fixture
def backend(clickhouse_server: tuple[str, int]) -> ServerBackend:
    host, port = clickhouse_server
    server = ServerBackend(host=host, port=port, database="kubeopera_test")
    server.execute("DROP TABLE IF EXISTS samples")
    server.execute(
        "CREATE TABLE samples (cluster String, at DateTime, cores Float64, restarts UInt32) "
        "ENGINE = MergeTree ORDER BY (cluster, at)"
    )
    return server


def test_columnar_insert_and_query_round_trip(backend: ServerBackend) -> None:
    at = [datetime(2026, 3, 2, 10, minute, tzinfo=UTC) for minute in range(3)]
    batch = pa.table(
        {
            "cluster": ["a", "a", "b"],
            "at": pa.array(at, pa.timestamp("s", tz="UTC")),
            "cores": [0.25, 1.5, 3.0],
            "restarts": pa.array([0, 1, 2], pa.uint32()),
        }
    )
    backend.insert("samples", batch)
    result = backend.query(
        "SELECT cluster, sum(cores) AS cores, max(restarts) AS restarts, min(at) AS first "
        "FROM samples GROUP BY cluster ORDER BY cluster"
    )
    rows = result.to_pylist()
    assert [r["cluster"] for r in rows] == ["a", "b"]
    assert [r["cores"] for r in rows] == [1.75, 3.0]
    assert [r["restarts"] for r in rows] == [1, 2]
    assert rows[0]["first"].replace(tzinfo=UTC) == at[0]
    assert backend.describe() == f"ClickHouse server {backend._address}, database kubeopera_test"


def test_server_errors_become_clickhouse_errors(backend: ServerBackend) -> None:
    with pytest.raises(ClickHouseError, match=r"kubeopera_test\.missing doesn't exist"):
        backend.query("SELECT * FROM missing")


def test_unreachable_server_is_a_clear_error() -> None:
    with pytest.raises(ClickHouseError, match=r"ClickHouse server 127\.0\.0\.1:1"):
        ServerBackend(host="127.0.0.1", port=1)
