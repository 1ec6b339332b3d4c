"""Market data sources and the universe as one configurable resource.

Keys come from the environment through ``dg.EnvVar`` (``PM_ALPHAVANTAGE_KEY``,
``PM_FINNHUB_KEY``), so the UI shows the variable's name, never its value.
"""

from __future__ import annotations

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


class MarketDataResource(dg.ConfigurableResource):
    """Where daily bars come from, in which order, and for which tickers."""

    fallback_order: list[str] = Field(
        default=["bundled"],
        description=f"Sources to ask, in order; per ticker the first that answers wins. Any of {SOURCE_NAMES}.",
    )
    universe_path: str | None = Field(
        default=None, description="Universe YAML file; unset means every bundled ticker."
    )
    parquet_path: str | None = Field(default=None, description="File or folder for the parquet source.")
    csv_path: str | None = Field(default=None, description="File or folder for the csv source.")
    cache_dir: str | None = Field(
        default=None, description="HTTP response cache; default $PM_HOME/cache/http."
    )
    alphavantage_key: str | None = Field(default=None, description="Alpha Vantage API key (use dg.EnvVar).")
    finnhub_key: str | None = Field(default=None, description="Finnhub API key (use dg.EnvVar).")
    alphavantage_url: str = "https://www.alphavantage.co"
    finnhub_url: str = "https://finnhub.io"
    yahoo_url: str | None = Field(default=None, description="Override Yahoo's hosts (tests only).")
    requests_per_minute: dict[str, float] = Field(
        default={}, description="Per-source client-side rate limits, overriding the defaults."
    )
    max_attempts: int = Field(default=4, description="Tries per web request on 429/5xx/timeouts.")

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
            parquet_path=self.parquet_path,
            csv_path=self.csv_path,
            cache_dir=Path(self.cache_dir) if self.cache_dir else http_cache_dir(),
            alphavantage_key=self.alphavantage_key,
            finnhub_key=self.finnhub_key,
            alphavantage_url=self.alphavantage_url,
            finnhub_url=self.finnhub_url,
            yahoo_url=self.yahoo_url,
            policies=policies,
        )

    def universe(self) -> Universe:
        """The configured universe (default: every ticker of the first source that lists them)."""
        settings = self.settings()
        if self.universe_path:
            return load_universe(
                self.universe_path, list_source=lambda name: build_source(name, settings).list_tickers()
            )
        for name in self.fallback_order:
            listed = build_source(name, settings).list_tickers()
            if listed:
                return parse_universe([{"ticker": t, "source": name} for t in listed], origin=name)
        raise dg.Failure(
            "no universe: set universe_path, or put a source that can list its tickers "
            f"(bundled, parquet, csv) in fallback_order (now {self.fallback_order})"
        )

    def chain(self, universe: Universe) -> FallbackChain:
        pins = {m.ticker: m.source for m in universe.members if m.source}
        return build_chain(self.fallback_order, self.settings(), pinned=pins)
