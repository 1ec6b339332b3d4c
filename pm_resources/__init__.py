"""Dagster resources: the DuckDB warehouse, the market data sources, the Ollama LLM server, alerts.

:func:`build_resources` reads the environment once, at definition load:

- ``PM_DUCKDB_PATH`` / ``PM_HOME``: warehouse file (default ``./.pm/warehouse.duckdb``).
- ``PM_DUCKDB_LOCK_TIMEOUT``: seconds to wait while another process holds it (default 60).
- ``PM_SOURCES``: fallback order, comma-separated (default ``bundled``).
- ``PM_UNIVERSE``: universe YAML (default: every ticker of the first listable source).
- ``PM_PARQUET_PATH`` / ``PM_CSV_PATH``: local files for the file sources.
- ``PM_DATE_FORMAT``: format of text dates in those files (e.g. ``%m/%d/%Y``; default ISO 8601).
- ``PM_ALPHAVANTAGE_KEY`` / ``PM_FINNHUB_KEY``: API keys, passed as ``dg.EnvVar``.
- ``OLLAMA_HOST``: the Ollama server for the LLM fallback (default ``127.0.0.1:11434``).
- ``PM_OLLAMA_TOKEN``: bearer token for a remote Ollama behind an auth proxy, passed as ``dg.EnvVar``.
- ``PM_ALERT_WEBHOOK_URL``: where alerts are POSTed besides ``$PM_HOME/alerts/alerts.jsonl``, as ``dg.EnvVar``.

Run config for ``market_data`` and ``ollama`` adds to these: a field it leaves out still takes
its variable (see :mod:`pm_resources.market_data`).
"""

from __future__ import annotations

import os

import dagster as dg

from model_code.settings import duckdb_path, pm_home
from model_code.warehouse import DEFAULT_LOCK_TIMEOUT
from pm_resources.alerts import AlertsResource
from pm_resources.market_data import MarketDataResource
from pm_resources.ollama import OllamaResource
from pm_resources.warehouse import DUCKDB_POOL, WarehouseResource

__all__ = [
    "DUCKDB_POOL",
    "AlertsResource",
    "MarketDataResource",
    "OllamaResource",
    "WarehouseResource",
    "build_resources",
]


def _env_key(name: str) -> dg.EnvVar | None:
    return dg.EnvVar(name) if os.environ.get(name) else None


def build_resources() -> dict[str, dg.ConfigurableResource]:
    """Resources for the current environment (see the module docstring)."""
    order = [s.strip() for s in os.environ.get("PM_SOURCES", "bundled").split(",") if s.strip()]
    return {
        "warehouse": WarehouseResource(
            database=str(duckdb_path()),
            lock_timeout_seconds=float(os.environ.get("PM_DUCKDB_LOCK_TIMEOUT") or DEFAULT_LOCK_TIMEOUT),
        ),
        "market_data": MarketDataResource(
            fallback_order=order,
            universe_path=os.environ.get("PM_UNIVERSE") or None,
            parquet_path=os.environ.get("PM_PARQUET_PATH") or None,
            csv_path=os.environ.get("PM_CSV_PATH") or None,
            date_format=os.environ.get("PM_DATE_FORMAT") or None,
            alphavantage_key=_env_key("PM_ALPHAVANTAGE_KEY"),
            finnhub_key=_env_key("PM_FINNHUB_KEY"),
        ),
        "ollama": OllamaResource(host=_env_key("OLLAMA_HOST"), bearer_token=_env_key("PM_OLLAMA_TOKEN")),
        "alerts": AlertsResource(
            alerts_dir=str(pm_home() / "alerts"), webhook_url=_env_key("PM_ALERT_WEBHOOK_URL")
        ),
    }
