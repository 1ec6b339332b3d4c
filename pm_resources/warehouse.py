"""The DuckDB warehouse as a Dagster resource.

Built on dagster-duckdb's ``DuckDBResource`` (connection retries while another process holds
the file); adds the DDL from ``sql/`` and the domain-level :class:`Warehouse` API. Every asset
that uses it must sit in the ``duckdb`` pool (limit 1, see ``dagster.yaml``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dagster_duckdb import DuckDBResource

from model_code.warehouse import Warehouse, apply_ddl

DUCKDB_POOL = "duckdb"


class WarehouseResource(DuckDBResource):
    """One DuckDB file holding every layer (``market``, ``features``, ``forecasts`` ...)."""

    @contextmanager
    def open(self) -> Iterator[Warehouse]:
        """A :class:`Warehouse` on a fresh connection, with the DDL applied."""
        if self.database != ":memory:":
            Path(self.database).parent.mkdir(parents=True, exist_ok=True)
        with self.get_connection() as conn:
            try:
                apply_ddl(conn)
                yield Warehouse(conn)
            finally:
                # DuckDBResource closes only on a clean exit; close on errors too so the file
                # lock is released before the next step opens it.
                conn.close()
