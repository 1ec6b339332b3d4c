"""Where the platform keeps its files: ``$PM_HOME`` and the DuckDB warehouse path.

``PM_HOME`` defaults to ``./.pm`` (relative to the working directory) and holds the warehouse,
the HTTP response cache and, later, model artifacts. ``PM_DUCKDB_PATH`` overrides the warehouse
file alone.
"""

from __future__ import annotations

import os
from pathlib import Path


def pm_home() -> Path:
    """The platform's home folder (``$PM_HOME``, default ``./.pm``), absolute."""
    return Path(os.environ.get("PM_HOME") or ".pm").expanduser().resolve()


def duckdb_path() -> Path:
    """The DuckDB warehouse file (``$PM_DUCKDB_PATH``, default ``$PM_HOME/warehouse.duckdb``)."""
    override = os.environ.get("PM_DUCKDB_PATH")
    return Path(override).expanduser().resolve() if override else pm_home() / "warehouse.duckdb"


def http_cache_dir() -> Path:
    """On-disk cache of market-data API responses (``$PM_HOME/cache/http``)."""
    return pm_home() / "cache" / "http"
