"""The DuckDB warehouse: DDL from ``sql/``, transactional upserts, named queries."""

from model_code.warehouse.connection import DEFAULT_LOCK_TIMEOUT, WarehouseLocked, connect
from model_code.warehouse.store import Warehouse, WarehouseError, apply_ddl, read_query

__all__ = [
    "DEFAULT_LOCK_TIMEOUT",
    "Warehouse",
    "WarehouseError",
    "WarehouseLocked",
    "apply_ddl",
    "connect",
    "read_query",
]
