"""Numbered SQL migrations, applied once and in order, recorded in ``schema_migrations``.

Both backends run the same files. A migration that changed after it was applied is
refused: schema history is append-only, so fix forward with a new file. Views hold no
data: each view's latest definition is created again whenever it is missing (someone
dropped it), so ``migrate`` always leaves every view in place.
"""

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources

import pyarrow as pa

from kubeopera.sinks.clickhouse.backends import Backend, ClickHouseError


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    def statements(self) -> list[str]:
        """Statements end with ';' at the end of a line; comment lines are dropped."""
        text = "\n".join(
            line for line in self.sql.splitlines() if not line.lstrip().startswith("--")
        )
        return [s.strip() for s in re.split(r";\s*$", text, flags=re.MULTILINE) if s.strip()]


def _load() -> list[Migration]:
    folder = resources.files("kubeopera.sinks.clickhouse").joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        match = re.fullmatch(r"(\d{3})_(\w+)\.sql", entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    return sorted(found, key=lambda m: m.version)


MIGRATIONS = _load()

_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations
(version UInt32, name String, checksum String, applied_at DateTime64(3, 'UTC'))
ENGINE = MergeTree ORDER BY version
"""


def migrate(backend: Backend, migrations: list[Migration] = MIGRATIONS) -> list[Migration]:
    """Apply what is not yet applied; return what was applied now."""
    backend.execute(_LEDGER)
    ledger = backend.query("SELECT version, checksum FROM schema_migrations").to_pylist()
    applied = {int(row["version"]): row["checksum"] for row in ledger}
    done = []
    for migration in migrations:
        if migration.version in applied:
            if applied[migration.version] != migration.checksum:
                raise ClickHouseError(
                    f"migration {migration.version:03d}_{migration.name} changed after it was "
                    "applied; add a new migration instead of editing an applied one"
                )
            continue
        for statement in migration.statements():
            backend.execute(statement)
        backend.insert(
            "schema_migrations",
            pa.table(
                {
                    "version": pa.array([migration.version], pa.uint32()),
                    "name": [migration.name],
                    "checksum": [migration.checksum],
                    "applied_at": pa.array([datetime.now(UTC)], pa.timestamp("ms", tz="UTC")),
                }
            ),
        )
        done.append(migration)
    existing = {row["name"] for row in backend.query(_TABLES).to_pylist()}
    for name, statement in views(migrations).items():
        if name not in existing:
            backend.execute(statement)
    return done


_TABLES = "SELECT name FROM system.tables WHERE database = currentDatabase()"
_VIEW = re.compile(
    r"CREATE\s+(?:OR\s+REPLACE\s+)?(?:MATERIALIZED\s+)?VIEW\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)",
    re.IGNORECASE,
)


def views(migrations: list[Migration] = MIGRATIONS) -> dict[str, str]:
    """Every view (plain or materialized) by name: the statement of its latest definition."""
    found = {}
    for migration in migrations:
        for statement in migration.statements():
            if match := _VIEW.match(statement):
                found[match[1]] = statement
    return found
