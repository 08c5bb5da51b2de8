"""ClickHouse storage: two backends running the same SQL migrations and queries."""

from kubeopera.sinks.clickhouse.backends import (
    Backend,
    ChdbBackend,
    ClickHouseError,
    ServerBackend,
)
from kubeopera.sinks.clickhouse.migrations import MIGRATIONS, migrate
from kubeopera.sinks.clickhouse.store import Store

__all__ = [
    "MIGRATIONS",
    "Backend",
    "ChdbBackend",
    "ClickHouseError",
    "ServerBackend",
    "Store",
    "migrate",
]
