"""The DuckDB warehouse: DDL from ``sql/``, transactional upserts, named queries."""

from model_code.warehouse.store import Warehouse, WarehouseError, apply_ddl, read_query

__all__ = ["Warehouse", "WarehouseError", "apply_ddl", "read_query"]
