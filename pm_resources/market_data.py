"""Market data sources and the universe as one configurable resource.

Keys come from the environment through ``dg.EnvVar`` (``PM_ALPHAVANTAGE_KEY``,
``PM_FINNHUB_KEY``), so the UI shows the variable's name, never its value.

Run config adds to the environment, it does not replace it. Dagster builds a resource given
run config from that config alone, dropping what ``build_resources`` read at load: run config
naming only ``fallback_order`` used to lose ``PM_PARQUET_PATH`` and ``PM_UNIVERSE`` and serve
the bundled data instead. So every setting with an environment variable (:data:`ENV_VARS`)
defaults to ``None``, and ``None`` means "that variable's value when the resource is used".
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
from pydantic import Field

from model_code.market_data.sources.fallback import FallbackChain
from model_code.market_data.sources.http import HttpPolicy
from model_code.market_data.sources.registry import (
    DEFAULT_POLICIES,
    SOURCE_NAMES,
    SourceSettings,
    build_chain,
    build_source,
)
from model_code.market_data.universe import Universe, load_universe, parse_universe
from model_code.settings import http_cache_dir

# The environment variable each setting falls back to when the resource's config leaves it unset.
ENV_VARS: dict[str, str] = {
    "fallback_order": "PM_SOURCES",
    "universe_path": "PM_UNIVERSE",
    "parquet_path": "PM_PARQUET_PATH",
    "csv_path": "PM_CSV_PATH",
    "date_format": "PM_DATE_FORMAT",
    "alphavantage_key": "PM_ALPHAVANTAGE_KEY",
    "finnhub_key": "PM_FINNHUB_KEY",
}
DEFAULT_ORDER = ("bundled",)


class MarketDataResource(dg.ConfigurableResource):
    """Where daily bars come from, in which order, and for which tickers.

    A setting left unset takes its environment variable (:data:`ENV_VARS`) when used.
    """

    fallback_order: list[str] | None = Field(
        default=None,
        description="Sources to ask, in order; per ticker the first that answers wins. Any of "
        f"{SOURCE_NAMES}. Unset: PM_SOURCES (comma-separated), else bundled.",
    )
    universe_path: str | None = Field(
        default=None,
        description="Universe YAML file. Unset: PM_UNIVERSE, else every ticker of the first listable source.",
    )
    parquet_path: str | None = Field(
        default=None, description="File or folder for the parquet source. Unset: PM_PARQUET_PATH."
    )
    csv_path: str | None = Field(
        default=None, description="File or folder for the csv source. Unset: PM_CSV_PATH."
    )
    date_format: str | None = Field(
        default=None,
        description="Format of text dates in the parquet/csv files, e.g. %m/%d/%Y. Unset: "
        "PM_DATE_FORMAT, else ISO 8601 YYYY-MM-DD. Dates that do not match are quarantined, never guessed.",
    )
    cache_dir: str | None = Field(
        default=None, description="HTTP response cache; default $PM_HOME/cache/http."
    )
    alphavantage_key: str | None = Field(
        default=None, description="Alpha Vantage API key (use dg.EnvVar). Unset: PM_ALPHAVANTAGE_KEY."
    )
    finnhub_key: str | None = Field(
        default=None, description="Finnhub API key (use dg.EnvVar). Unset: PM_FINNHUB_KEY."
    )
    alphavantage_url: str = "https://www.alphavantage.co"
    finnhub_url: str = "https://finnhub.io"
    yahoo_url: str | None = Field(default=None, description="Override Yahoo's hosts (tests only).")
    requests_per_minute: dict[str, float] = Field(
        default={}, description="Per-source client-side rate limits, overriding the defaults."
    )
    max_attempts: int = Field(default=4, description="Tries per web request on 429/5xx/timeouts.")

    def setting(self, name: str) -> str | None:
        """The configured value of ``name``, else its environment variable's, else ``None``."""
        value = getattr(self, name)
        return value if value else (os.environ.get(ENV_VARS[name]) or None)

    def order(self) -> list[str]:
        """The fallback order: configured, else ``PM_SOURCES``, else ``bundled``."""
        if self.fallback_order:
            return list(self.fallback_order)
        listed = [s.strip() for s in (os.environ.get(ENV_VARS["fallback_order"]) or "").split(",")]
        return [s for s in listed if s] or list(DEFAULT_ORDER)

    def settings(self) -> SourceSettings:
        policies: dict[str, HttpPolicy] = {}
        for name in ("alphavantage", "finnhub", "yfinance"):
            base = DEFAULT_POLICIES.get(name, HttpPolicy())
            rpm = self.requests_per_minute.get(name, base.requests_per_minute)
            policies[name] = HttpPolicy(
                requests_per_minute=rpm,
                max_attempts=self.max_attempts,
                backoff_s=base.backoff_s,
                backoff_max_s=base.backoff_max_s,
                timeout_s=base.timeout_s,
                cache_ttl_s=base.cache_ttl_s,
            )
        return SourceSettings(
            parquet_path=self.setting("parquet_path"),
            csv_path=self.setting("csv_path"),
            date_format=self.setting("date_format"),
            cache_dir=Path(self.cache_dir) if self.cache_dir else http_cache_dir(),
            alphavantage_key=self.setting("alphavantage_key"),
            finnhub_key=self.setting("finnhub_key"),
            alphavantage_url=self.alphavantage_url,
            finnhub_url=self.finnhub_url,
            yahoo_url=self.yahoo_url,
            policies=policies,
        )

    def universe(self) -> Universe:
        """The configured universe (default: every ticker of the first source that lists them)."""
        settings = self.settings()
        universe_path = self.setting("universe_path")
        if universe_path:
            return load_universe(
                universe_path, list_source=lambda name: build_source(name, settings).list_tickers()
            )
        for name in self.order():
            listed = build_source(name, settings).list_tickers()
            if listed:
                return parse_universe([{"ticker": t, "source": name} for t in listed], origin=name)
        raise dg.Failure(
            "no universe: set universe_path, or put a source that can list its tickers "
            f"(bundled, parquet, csv) in fallback_order (now {self.order()})"
        )

    def chain(self, universe: Universe) -> FallbackChain:
        pins = {m.ticker: m.source for m in universe.members if m.source}
        return build_chain(self.order(), self.settings(), pinned=pins)
