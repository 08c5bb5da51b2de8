"""The two ways to reach ClickHouse, behind one small interface.

``ChdbBackend`` runs the real ClickHouse engine in-process (chDB) on a local data
directory: the zero-setup default. ``ServerBackend`` talks to a ClickHouse server over
the native protocol (clickhouse-driver) with columnar inserts. Both take the same SQL.
"""

import fcntl
import os
import re
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Protocol

import pyarrow as pa
from clickhouse_driver.errors import NetworkError, SocketTimeoutError


class ClickHouseError(RuntimeError):
    """ClickHouse refused a statement or cannot be reached: ``engine_error`` turns the
    engine's text into one line saying what happened (and, for the usual mistakes, what
    to do); ``name`` is ClickHouse's error name (``READONLY``, ``UNKNOWN_TABLE``, ...)
    when it gave one."""

    def __init__(self, message: str, name: str = "") -> None:
        super().__init__(message)
        self.name = name


_EXCEPTION = re.compile(
    r"(?:Code: (\d+)\. )?DB::Exception: (?P<text>.*?)"
    r"(?: \((?P<name>[A-Z_]+)\))?(?: \(version [^)]*\))?\.?$",
    re.S,
)
_ADVICE = {
    "READONLY": "this command only reads the store; the pipeline and explicit commands "
    "(kubeopera demo, replay, worker, migrate) write it",
    "UNKNOWN_TABLE": "the tables and views are listed in dashboards/README.md; "
    "kubeopera migrate re-creates the views",
    "SYNTAX_ERROR": "kubeopera sql takes one statement in ClickHouse's SQL dialect",
}


def engine_error(where: str, error: Exception | str) -> ClickHouseError:
    """ClickHouse's ``error`` as one line: ``where`` (the store), the engine's own message
    without its code, stack or version, and advice for the usual mistakes."""
    text = " ".join(str(error).split())
    found = _EXCEPTION.search(text)
    name = (found.group("name") or "") if found else ""
    message = found.group("text").strip() if found else text
    message = message.removeprefix("default: ")
    advice = _ADVICE.get(name)
    line = f"{where}: {message}" + (f" ({name})" if name else "")
    return ClickHouseError(f"{line}; {advice}" if advice else line, name)


class ClickHouseUnavailableError(ClickHouseError):
    """The server cannot be reached (down, restarting, network): worth retrying."""


class Backend(Protocol):
    database: str

    def execute(self, sql: str) -> None: ...

    def query(self, sql: str) -> pa.Table: ...

    def insert(self, table: str, data: pa.Table, dedup_token: str | None = None) -> None:
        """One columnar block; a block whose ``dedup_token`` was seen before is skipped."""
        ...

    def read_only(self) -> None:
        """Refuse every later statement that would change the store."""
        ...

    def close(self) -> None: ...

    def describe(self) -> str: ...


def _holder(status: Path) -> str | None:
    """The process that holds the embedded store whose status file is ``status`` (the
    engine keeps an exclusive ``flock`` on it while open), as ``process PID (command)``;
    None when the store is free."""
    try:
        with status.open("rb") as file:
            try:
                fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pass
            else:
                fcntl.flock(file, fcntl.LOCK_UN)
                return None
    except OSError:
        return None  # no store yet, or not readable: opening it will say why
    for fd in Path("/proc").glob("[0-9]*/fd/*"):
        try:
            if fd.resolve() == status.resolve():
                pid = fd.parent.parent.name
                command = (fd.parent.parent / "cmdline").read_bytes().decode(errors="replace")
                words = " ".join(command.replace("\0", " ").split())
                return f"process {pid} ({words[:80]}{'...' if len(words) > 80 else ''})"
        except OSError:
            continue
    return "another process"


@contextmanager
def _engine_stderr() -> Iterator[Callable[[], str]]:
    """Capture what the engine writes to file descriptor 2 meanwhile (C++ code, not
    Python's ``sys.stderr``), so that no stray line reaches the terminal; gives a
    function returning the text captured."""
    with tempfile.TemporaryFile() as captured:
        saved = os.dup(2)
        sys.stderr.flush()
        os.dup2(captured.fileno(), 2)
        try:
            yield lambda: _read(captured)
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _read(file: IO[bytes]) -> str:
    file.seek(0)
    return file.read().decode(errors="replace").strip()


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


class ChdbBackend:
    """Embedded ClickHouse (chDB); data persists in ``path`` across runs.

    chDB allows one open session per process, so close it before opening another.
    """

    def __init__(self, path: str | Path, database: str = "kubeopera") -> None:
        from chdb import session  # imported here: it loads the whole engine

        self.path = Path(path).expanduser().absolute()
        self.database = database
        where = f"cannot open the embedded store at {self.path}"
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ClickHouseError(f"{where}: {error.strerror}") from error
        if holder := _holder(self.path / "status"):
            raise ClickHouseError(
                f"{where}: it is open in {holder}, and chDB lets one process open a store at a "
                f"time; stop that process, or read a copy meanwhile (cp -r {self.path} COPY, "
                "then KUBEOPERA_STORAGE__PATH=COPY)"
            )
        with _engine_stderr() as said:  # the engine prints its own errors there too
            try:
                self._session = session.Session(str(self.path))  # type: ignore[no-untyped-call]
            except Exception as error:
                reason = engine_error(where, said() or str(error))
                raise ClickHouseError(str(reason), reason.name) from error
        self.execute(f"CREATE DATABASE IF NOT EXISTS {_quote(database)}")
        self.execute(f"USE {_quote(database)}")

    def execute(self, sql: str) -> None:
        self._run(sql, "CSV")

    def query(self, sql: str) -> pa.Table:
        result = self._run(sql, "ArrowTable")
        return self._with_datetimes(sql, result if isinstance(result, pa.Table) else pa.table({}))

    def _with_datetimes(self, sql: str, table: pa.Table) -> pa.Table:
        """``table`` with its ``DateTime`` columns as UTC timestamps: ClickHouse's Arrow
        output writes ``DateTime`` as uint32 seconds (``DateTime64`` is a timestamp
        already), so the uint32 columns the statement types ``DateTime`` are cast."""
        if not any(pa.types.is_uint32(field.type) for field in table.schema):
            return table
        try:
            described = self._run(f"DESCRIBE TABLE ({sql})", "ArrowTable")
        except ClickHouseError:  # not a SELECT: nothing to describe
            return table
        types = dict(zip(described["name"].to_pylist(), described["type"].to_pylist(), strict=True))
        for i, field in enumerate(table.schema):
            clickhouse_type = types.get(field.name, "").removeprefix("Nullable(")
            if pa.types.is_uint32(field.type) and clickhouse_type.startswith("DateTime"):
                as_time = table.column(i).cast(pa.int64()).cast(pa.timestamp("s", tz="UTC"))
                table = table.set_column(i, field.name, as_time)
        return table

    def insert(self, table: str, data: pa.Table, dedup_token: str | None = None) -> None:
        if data.num_rows == 0:
            return
        columns = ", ".join(_quote(c) for c in data.column_names)
        settings = f" SETTINGS insert_deduplication_token = '{dedup_token}'" if dedup_token else ""
        # chDB's Python() table function reads the Arrow table from this frame's locals.
        self._run(
            f"INSERT INTO {_quote(table)} ({columns}){settings} SELECT {columns} FROM Python(data)",
            "CSV",
        )

    def close(self) -> None:
        self._session.close()  # type: ignore[no-untyped-call]

    def describe(self) -> str:
        return f"embedded ClickHouse (chDB) at {self.path}, database {self.database}"

    def read_only(self) -> None:
        """From now on refuse every statement that writes (ClickHouse's ``readonly = 2``:
        settings may still change, ``readonly`` itself not)."""
        self.execute("SET readonly = 2")

    def _run(self, sql: str, fmt: str) -> Any:
        try:
            return self._session.query(sql, fmt)  # type: ignore[no-untyped-call]
        except Exception as error:
            raise engine_error(f"embedded ClickHouse at {self.path}", error) from error


class ServerBackend:
    """A ClickHouse server through clickhouse-driver (native protocol, columnar inserts)."""

    def __init__(
        self,
        host: str = "localhost",
        port: int = 9000,
        user: str = "default",
        password: str = "",
        database: str = "kubeopera",
        secure: bool = False,
    ) -> None:
        from clickhouse_driver import Client  # imported here: the embedded mode never needs it

        self.database = database
        self._address = f"{host}:{port}"
        self._lock = threading.Lock()
        bootstrap = Client(host=host, port=port, user=user, password=password, secure=secure)
        self._client = Client(
            host=host,
            port=port,
            user=user,
            password=password,
            database=database,
            secure=secure,
            settings={"use_numpy": False},
        )
        self._call(bootstrap.execute, f"CREATE DATABASE IF NOT EXISTS {_quote(database)}")
        bootstrap.disconnect()

    def execute(self, sql: str) -> None:
        self._call(self._client.execute, sql)

    def query(self, sql: str) -> pa.Table:
        result = self._call(self._client.execute, sql, with_column_types=True, columnar=True)
        columns, types = result
        names = [name for name, _ in types]
        return pa.table({n: pa.array(list(c)) for n, c in zip(names, columns, strict=True)})

    def insert(self, table: str, data: pa.Table, dedup_token: str | None = None) -> None:
        if data.num_rows == 0:
            return
        columns = [_python_column(data.column(i)) for i in range(data.num_columns)]
        names = ", ".join(_quote(c) for c in data.column_names)
        self._call(
            self._client.execute,
            f"INSERT INTO {_quote(table)} ({names}) VALUES",
            columns,
            columnar=True,
            settings={"insert_deduplication_token": dedup_token} if dedup_token else None,
        )

    def read_only(self) -> None:
        """From now on send ClickHouse's ``readonly = 2`` with every statement."""
        self._client.settings["readonly"] = 2

    def close(self) -> None:
        self._client.disconnect()

    def describe(self) -> str:
        return f"ClickHouse server {self._address}, database {self.database}"

    def _call(self, method: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            with self._lock:  # one connection: one statement at a time, whatever the thread
                return method(*args, **kwargs)
        except (NetworkError, SocketTimeoutError, EOFError, OSError) as error:
            raise ClickHouseUnavailableError(
                f"ClickHouse server {self._address}: {error}"
            ) from error
        except Exception as error:
            raise engine_error(f"ClickHouse server {self._address}", error) from error


def _python_column(column: pa.ChunkedArray) -> list[Any]:
    """clickhouse-driver takes Python values per column; Map columns as dicts."""
    values: list[Any] = column.to_pylist()
    if pa.types.is_map(column.type):
        return [dict(v) if v is not None else {} for v in values]
    return values
