"""The clickhouse-driver backend over the native protocol, against a real server.

The server here is Debian's ClickHouse 18.16, which predates LowCardinality, Map and
DateTime64, so the migrations themselves are proven on chDB; these tests prove the
protocol path the migrations and inserts share: statements, columnar inserts, typed
results and the server's errors.
"""

import time
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest
from conftest import ClickHouseServer

from kubeopera.sinks.clickhouse import (
    Backoff,
    ClickHouseError,
    ClickHouseUnavailableError,
    ServerBackend,
    with_retries,
)


@pytest.fixture
def backend(clickhouse_server: ClickHouseServer) -> ServerBackend:
    server = ServerBackend(port=clickhouse_server.port, database="kubeopera_test")
    create_samples(server)
    return server


def create_samples(server: ServerBackend) -> None:
    server.execute("DROP TABLE IF EXISTS samples")
    server.execute(
        "CREATE TABLE samples (cluster String, at DateTime, cores Float64, restarts UInt32) "
        "ENGINE = MergeTree ORDER BY (cluster, at)"
    )


def batch(rows: int) -> pa.Table:
    at = datetime(2026, 3, 2, tzinfo=UTC)
    return pa.table(
        {
            "cluster": [f"c{i % 3}" for i in range(rows)],
            "at": pa.array([at] * rows, pa.timestamp("s", tz="UTC")),
            "cores": [0.5] * rows,
            "restarts": pa.array([0] * rows, pa.uint32()),
        }
    )


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
    with pytest.raises(ClickHouseUnavailableError, match=r"ClickHouse server 127\.0\.0\.1:1"):
        ServerBackend(host="127.0.0.1", port=1)


@pytest.mark.integration  # starts its own clickhouse-server
def test_an_insert_waits_out_a_server_restart(tmp_path: Path) -> None:
    """The server stops while a batch is waiting to be written: the insert retries with
    backoff, and lands exactly once when the server is back."""
    server = ClickHouseServer(tmp_path)
    server.start()
    try:
        backend = ServerBackend(port=server.port, database="kubeopera_test")
        create_samples(backend)
        server.stop(kill=True)
        delays: list[float] = []

        def sleep(seconds: float) -> None:
            delays.append(seconds)
            if len(delays) == 3:
                server.start()
            time.sleep(seconds)

        backoff = Backoff(initial_s=0.2, factor=2, maximum_s=1)
        with_retries(lambda: backend.insert("samples", batch(1000)), backoff, sleep)
        assert delays[:3] == [0.2, 0.4, 0.8]
        assert backend.query("SELECT count() AS n FROM samples").to_pylist() == [{"n": 1000}]
    finally:
        server.stop(kill=True)


def test_retries_give_up_when_told_and_refusals_are_not_retried(backend: ServerBackend) -> None:
    with pytest.raises(ClickHouseUnavailableError):
        with_retries(lambda: ServerBackend(port=1), Backoff(initial_s=0.01, give_up_after_s=0.05))
    calls = []

    def refused() -> None:
        calls.append(1)
        backend.query("SELECT * FROM missing")

    with pytest.raises(ClickHouseError, match="doesn't exist"):
        with_retries(refused, Backoff(initial_s=0.01))
    assert len(calls) == 1
