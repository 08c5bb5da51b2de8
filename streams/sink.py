"""The sink port: where the engines write a processor's output. ``sinks.clickhouse.Store``
implements it; the engines know no table but the dead-letter and findings tables."""

from typing import Protocol

import polars as pl

from kubeopera.streams.frames import deadletters_frame, findings_frame
from kubeopera.streams.processor import Output

DEADLETTER_TABLE = "deadletter"
FINDINGS_TABLE = "findings"


class Sink(Protocol):
    def insert(self, table: str, frame: pl.DataFrame, deduplicate: bool = False) -> None:
        """Insert ``frame`` as one block; with ``deduplicate``, a block inserted twice
        (the same content) is kept once."""
        ...

    def describe(self) -> str:
        """Where the rows go, for people (``embedded ClickHouse (chDB) at ...``)."""
        ...


def write(sink: Sink, output: Output) -> None:
    """Every block of ``output`` in order, then its findings and dead letters; returns
    after the sink has acknowledged them all (offsets may be committed then). The blocks of a table
    that is not deduplicated by content go as one insert, at its first block's place
    (ClickHouse wants few, large inserts); a deduplicated table's blocks go as they are,
    since their content is their token."""
    merged: dict[str, list[pl.DataFrame]] = {}
    for table, rows in output.rows:
        if not table.deduplicate and rows.height:
            merged.setdefault(table.name, []).append(rows)
    for table, rows in output.rows:
        if table.deduplicate:
            sink.insert(table.name, rows, deduplicate=True)
        elif table.name in merged:  # at its first block
            sink.insert(table.name, pl.concat(merged.pop(table.name), how="vertical_relaxed"))
    sink.insert(FINDINGS_TABLE, findings_frame(output.findings))
    sink.insert(DEADLETTER_TABLE, deadletters_frame(output.dead_letters))
