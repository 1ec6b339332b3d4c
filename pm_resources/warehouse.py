"""The DuckDB warehouse as a Dagster resource.

Built on dagster-duckdb's ``DuckDBResource`` (its ``database`` and ``connection_config``); adds
the DDL from ``sql/``, the domain-level :class:`Warehouse` API and a bounded wait while another
process holds the file (:func:`model_code.warehouse.connect`). Every asset that uses it must
sit in the ``duckdb`` pool (limit 1, see ``dagster.yaml``) and hold it open only to read its
inputs and to write its outputs, never while it fetches or fits.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource
from pydantic import Field

from model_code.warehouse import DEFAULT_LOCK_TIMEOUT, Warehouse, apply_ddl, connect

DUCKDB_POOL = "duckdb"


class WarehouseResource(DuckDBResource):
    """One DuckDB file holding every layer (``market``, ``features``, ``forecasts`` ...)."""

    lock_timeout_seconds: float = Field(
        default=DEFAULT_LOCK_TIMEOUT,
        description="How long to wait while another process holds the file before failing (seconds).",
    )

    @contextmanager
    def open(self) -> Iterator[Warehouse]:
        """A :class:`Warehouse` on a fresh connection, with the DDL applied; closed on exit.

        Raises:
            model_code.warehouse.WarehouseLocked: another process held the file for longer
                than ``lock_timeout_seconds``; the message names it.
        """
        if self.database != ":memory:":
            Path(self.database).parent.mkdir(parents=True, exist_ok=True)
        conn = connect(
            self.database,
            config={"custom_user_agent": "dagster", **self.connection_config},
            timeout=self.lock_timeout_seconds,
            on_wait=dg.get_dagster_logger().warning,
        )
        try:
            apply_ddl(conn)
            yield Warehouse(conn)
        finally:
            # Close on errors too so the file lock is released before the next step opens it.
            conn.close()
