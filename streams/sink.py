"""The sink port: where the engines write a processor's output. ``sinks.clickhouse.Store``
implements it; the engines know no table but the dead-letter table."""

from typing import Protocol

import polars as pl

from kubeopera.streams.frames import deadletters_frame
from kubeopera.streams.processor import Output

DEADLETTER_TABLE = "deadletter"


class Sink(Protocol):
    def insert(self, table: str, frame: pl.DataFrame, deduplicate: bool = False) -> None:
        """Insert ``frame`` as one block; with ``deduplicate``, a block inserted twice
        (the same content) is kept once."""
        ...


def write(sink: Sink, output: Output) -> None:
    """Every block of ``output`` in order, then its dead letters; returns after the sink
    acknowledged them all (offsets may be committed then)."""
    for table, rows in output.rows:
        sink.insert(table.name, rows, deduplicate=table.deduplicate)
    sink.insert(DEADLETTER_TABLE, deadletters_frame(output.dead_letters))
