"""One DuckDB file shared by several processes: short connections, bounded waits for the write lock,
sessions that reuse a connection, transactions, and atomic replacement of a table's rows.

DuckDB lets one process write a file at a time. X-Ray's writers (ingestion, Dagster runs) therefore
open the file only for the moment they need it and wait for another writer's lock instead of failing.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import polars as pl

from xray_core.errors import DataError


class DuckFile:
    def __init__(self, path: Path, schema_sql: str = "", lock_timeout_s: float = 60.0) -> None:
        self.path = Path(path)
        self.lock_timeout_s = lock_timeout_s
        self._schema_sql = schema_sql
        self._initialised = not schema_sql
        self._session: duckdb.DuckDBPyConnection | None = None

    @contextmanager
    def session(self) -> Iterator[None]:
        """Share one connection between the operations inside the block: opening a DuckDB file costs
        ~13 ms, more than most of our queries. Keep sessions short: they hold the file's write lock."""
        if self._session is not None:
            yield
            return
        with self._open(read_only=False) as con:
            self._session = con
            try:
                yield
            finally:
                self._session = None

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """The session's connection, or a short-lived one of its own."""
        if self._session is not None:
            yield self._session
            return
        with self._open(read_only) as con:
            yield con

    @contextmanager
    def transaction(self, **frames: pl.DataFrame) -> Iterator[duckdb.DuckDBPyConnection]:
        """One write transaction with `frames` visible as tables; rolled back on any error."""
        with self.connect() as con:
            for name, frame in frames.items():
                con.register(name, frame.to_arrow())
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
            finally:
                for name in frames:
                    con.unregister(name)

    def frame(self, sql: str, params: list[object] | None = None) -> pl.DataFrame:
        """Run a query on a read connection (or the session's) and return the result as polars."""
        with self.connect(read_only=True) as con:
            return query(con, sql, params)

    def replace(self, table: str, where: str, params: list[object], rows: pl.DataFrame) -> None:
        """Atomically replace the rows of `table` matching `where` by `rows` (same columns, in order)."""
        with self.transaction(new_rows=rows) as con:
            con.execute(f"DELETE FROM {table} WHERE {where}", params)
            con.execute(f"INSERT INTO {table} SELECT * FROM new_rows")

    @contextmanager
    def _open(self, read_only: bool) -> Iterator[duckdb.DuckDBPyConnection]:
        """Open the file, waiting for another process's write lock up to `lock_timeout_s`."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if read_only and not self.path.exists():
            read_only = False  # nothing to read yet: create the file so queries see empty tables
        deadline = time.monotonic() + self.lock_timeout_s
        delay = 0.05
        while True:
            try:
                con = duckdb.connect(str(self.path), read_only=read_only)
                break
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                    raise DataError(
                        f"cannot open {self.path}: {exc}",
                        "stop the other process using it, or set XRAY_DUCKDB_PATH",
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
        try:
            if not read_only and not self._initialised:
                con.execute(self._schema_sql)
                self._initialised = True
            yield con
        finally:
            con.close()


def query(con: duckdb.DuckDBPyConnection, sql: str, params: list[object] | None = None) -> pl.DataFrame:
    return con.sql(sql, params=params or []).pl()
