"""ClickHouse storage: two backends running the same SQL migrations and queries."""

from kubeopera.sinks.clickhouse.backends import (
    Backend,
    ChdbBackend,
    ClickHouseError,
    ClickHouseUnavailableError,
    ServerBackend,
)
from kubeopera.sinks.clickhouse.migrations import MIGRATIONS, migrate
from kubeopera.sinks.clickhouse.retry import Backoff, with_retries
from kubeopera.sinks.clickhouse.store import Store

__all__ = [
    "MIGRATIONS",
    "Backend",
    "Backoff",
    "ChdbBackend",
    "ClickHouseError",
    "ClickHouseUnavailableError",
    "ServerBackend",
    "Store",
    "migrate",
    "with_retries",
]
