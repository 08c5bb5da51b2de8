"""``kubeopera`` with a ClickHouse that is away while the file ``$OUTAGE_FLAG`` exists.

No ClickHouse server that runs the schema can be installed here, and chDB runs inside
the worker, so it cannot go away by itself. While the flag exists every insert fails
the way the server backend fails when its server is down or restarting: with
``ClickHouseUnavailableError`` (the server backend's mapping of refused connections is
tested against a real server killed and restarted mid-insert in
test_server_backend). Each
refused insert appends its table to ``$OUTAGE_FLAG.refused``. Everything else is the
real worker: the real chDB writes once the flag is gone.
"""

import os
import sys
from pathlib import Path

import pyarrow as pa

from kubeopera.cli.main import main
from kubeopera.sinks.clickhouse.backends import ChdbBackend, ClickHouseUnavailableError

FLAG = Path(os.environ["OUTAGE_FLAG"])
real_insert = ChdbBackend.insert


def insert(self: ChdbBackend, table: str, data: pa.Table, dedup_token: str | None = None) -> None:
    if FLAG.exists():
        with FLAG.with_suffix(".refused").open("a") as refused:
            refused.write(f"{table}\n")
        raise ClickHouseUnavailableError("ClickHouse server 127.0.0.1:9000: Connection refused")
    real_insert(self, table, data, dedup_token)


ChdbBackend.insert = insert  # type: ignore[method-assign]
sys.argv[0] = "kubeopera"
main()
