"""Idempotent writes and reads over one DuckDB connection.

Writes are upserts keyed by natural keys inside an explicit transaction: either every row of
a batch lands or none does, and re-running the same batch changes nothing. DDL lives in
``sql/ddl/*.sql`` (applied in file-name order, all ``IF NOT EXISTS``), named queries in
``sql/queries/*.sql``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from functools import lru_cache
from pathlib import Path

import duckdb
import polars as pl


class WarehouseError(RuntimeError):
    """A warehouse write failed; the transaction was rolled back and nothing changed."""


def sql_dir() -> Path:
    """The ``sql/`` folder (``$PM_SQL_DIR`` overrides; default: beside the packages)."""
    override = os.environ.get("PM_SQL_DIR")
    return Path(override) if override else Path(__file__).resolve().parents[2] / "sql"


@lru_cache(maxsize=64)
def read_query(name: str) -> str:
    """The text of ``sql/queries/<name>.sql``."""
    path = sql_dir() / "queries" / f"{name}.sql"
    if not path.is_file():
        raise FileNotFoundError(f"no named query {name!r} at {path}")
    return path.read_text()


def apply_ddl(conn: duckdb.DuckDBPyConnection) -> list[str]:
    """Run every ``sql/ddl/*.sql`` file in order; returns the file names applied."""
    files = sorted((sql_dir() / "ddl").glob("*.sql"))
    if not files:
        raise FileNotFoundError(f"no DDL files under {sql_dir() / 'ddl'}")
    for file in files:
        conn.execute(file.read_text()).fetchall()
    return [f.name for f in files]


class Warehouse:
    """Domain-level access to the DuckDB file through one open connection."""

    def __init__(self, conn: duckdb.DuckDBPyConnection) -> None:
        self.conn = conn
        self._depth = 0

    @contextmanager
    def transaction(self) -> Iterator[Warehouse]:
        """All writes inside commit together or not at all (nesting joins the outer one)."""
        if self._depth:
            self._depth += 1
            try:
                yield self
            finally:
                self._depth -= 1
            return
        self.execute("BEGIN TRANSACTION")
        self._depth = 1
        try:
            yield self
        except BaseException:
            self.execute("ROLLBACK")
            raise
        else:
            self.execute("COMMIT")
        finally:
            self._depth = 0

    def upsert(
        self, table: str, frame: pl.DataFrame, keys: Sequence[str], *, keep_known: bool = False
    ) -> int:
        """Insert ``frame`` into ``table``, updating rows whose ``keys`` already exist.

        Columns are matched by name; table columns absent from ``frame`` keep their stored
        value on update (or their default on insert). With ``keep_known``, a NULL in ``frame``
        never replaces a stored value (for facts that only ever become known, like realized
        targets). Returns the number of rows written.

        Raises:
            WarehouseError: the write failed (constraint, type); nothing was changed.
        """
        if frame.height == 0:
            return 0
        dupes = frame.group_by(list(keys)).len().filter(pl.col("len") > 1)
        if dupes.height:
            raise WarehouseError(
                f"{table}: {dupes.height} key(s) appear more than once in one batch, "
                f"e.g. {dupes.row(0, named=True)}; the batch was not written"
            )
        cols = frame.columns
        updates = [c for c in cols if c not in keys]
        new = 'coalesce(excluded."{c}", {t}."{c}")' if keep_known else 'excluded."{c}"'
        short = table.split(".")[-1]
        set_clause = ", ".join(f'"{c}" = ' + new.format(c=c, t=short) for c in updates)
        conflict = f"DO UPDATE SET {set_clause}" if updates else "DO NOTHING"
        col_list = ", ".join(f'"{c}"' for c in cols)
        key_list = ", ".join(f'"{k}"' for k in keys)
        sql = (
            f"INSERT INTO {table} ({col_list}) SELECT {col_list} FROM _pm_batch "
            f"ON CONFLICT ({key_list}) {conflict}"
        )
        self.conn.register("_pm_batch", frame.to_arrow())
        try:
            with self.transaction():
                self.execute(sql)
        except duckdb.Error as exc:
            raise WarehouseError(f"{table}: upsert of {frame.height} rows failed: {exc}") from exc
        finally:
            # Inside an aborted outer transaction DuckDB refuses even this; the view is
            # replaced by the next register() under the same name.
            with suppress(duckdb.TransactionException):
                self.conn.unregister("_pm_batch")
        return frame.height

    def query(self, sql: str, params: Sequence[object] | dict[str, object] | None = None) -> pl.DataFrame:
        """Run SQL (or ``@name`` for ``sql/queries/name.sql``) and return a polars frame."""
        text = read_query(sql[1:]) if sql.startswith("@") else sql
        return self.conn.sql(text, params=params or None).pl()

    def execute(self, sql: str, params: Sequence[object] | dict[str, object] | None = None) -> list[tuple]:
        """Run a statement to completion (DuckDB 2 refuses new work while a result is pending)."""
        return self.conn.execute(sql, params or []).fetchall()

    def count(self, table: str) -> int:
        return int(self.execute(f"SELECT count(*) FROM {table}")[0][0])
