"""Build sources by name from one settings object, and chain them in a fallback order."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from model_code.market_data.echo import echo
from model_code.market_data.sources.base import OhlcvSource, SourceConfigError
from model_code.market_data.sources.fallback import FallbackChain
from model_code.market_data.sources.http import HttpPolicy

SOURCE_NAMES = ("bundled", "parquet", "csv", "yfinance", "alphavantage", "finnhub")

DEFAULT_POLICIES: dict[str, HttpPolicy] = {
    # Free tiers: Alpha Vantage 5/min (25/day), Finnhub 60/min; Yahoo has no published limit.
    "alphavantage": HttpPolicy(requests_per_minute=5.0),
    "finnhub": HttpPolicy(requests_per_minute=30.0),
    "yfinance": HttpPolicy(requests_per_minute=60.0),
}


@dataclass(frozen=True)
class SourceSettings:
    """Everything needed to build any source. Keys are held here only in memory.

    Attributes:
        parquet_path / csv_path: file or folder for the local file sources.
        date_format: format of text dates in those files (chrono/strftime, e.g. ``%m/%d/%Y``);
            ``None`` means ISO 8601 ``YYYY-MM-DD``. A date that does not match is never guessed:
            its row is quarantined (``unparseable_date``).
        cache_dir: on-disk HTTP response cache (``None`` disables caching).
        alphavantage_key / finnhub_key: API keys (from ``PM_ALPHAVANTAGE_KEY`` /
            ``PM_FINNHUB_KEY``); never logged, stored or put in error messages.
        alphavantage_url / finnhub_url / yahoo_url: API roots; tests point them at a local
            server. ``yahoo_url=None`` means Yahoo's real hosts.
        policies: per web source rate limit / retry / cache policy.
    """

    parquet_path: str | None = None
    csv_path: str | None = None
    date_format: str | None = None
    cache_dir: Path | None = None
    alphavantage_key: str | None = field(default=None, repr=False)
    finnhub_key: str | None = field(default=None, repr=False)
    alphavantage_url: str = "https://www.alphavantage.co"
    finnhub_url: str = "https://finnhub.io"
    yahoo_url: str | None = None
    policies: Mapping[str, HttpPolicy] = field(default_factory=lambda: dict(DEFAULT_POLICIES))

    def policy(self, source: str) -> HttpPolicy:
        return self.policies.get(source, DEFAULT_POLICIES.get(source, HttpPolicy()))


def build_source(name: str, settings: SourceSettings) -> OhlcvSource:
    """One source by name; raises :class:`SourceConfigError` naming what is missing."""
    if name == "bundled":
        from model_code.market_data.sources.bundled import BundledSource

        return BundledSource()
    if name in ("parquet", "csv"):
        from model_code.market_data.sources.files import CsvSource, ParquetSource

        path = settings.parquet_path if name == "parquet" else settings.csv_path
        if not path:
            raise SourceConfigError(f"source {name!r} needs a path ({name}_path) in the market data config")
        cls = ParquetSource if name == "parquet" else CsvSource
        return cls(path, date_format=settings.date_format)
    if name == "alphavantage":
        from model_code.market_data.sources.alphavantage import AlphaVantageSource

        return AlphaVantageSource(
            settings.alphavantage_key,
            base_url=settings.alphavantage_url,
            policy=settings.policy(name),
            cache_dir=settings.cache_dir,
        )
    if name == "finnhub":
        from model_code.market_data.sources.finnhub import FinnhubSource

        return FinnhubSource(
            settings.finnhub_key,
            base_url=settings.finnhub_url,
            policy=settings.policy(name),
            cache_dir=settings.cache_dir,
        )
    if name == "yfinance":
        from model_code.market_data.sources.yahoo import YFinanceSource

        return YFinanceSource(
            base_url=settings.yahoo_url, policy=settings.policy(name), cache_dir=settings.cache_dir
        )
    raise SourceConfigError(f"unknown market data source {echo(name)}; choose from {', '.join(SOURCE_NAMES)}")


def build_chain(
    order: Sequence[str], settings: SourceSettings, pinned: Mapping[str, str] | None = None
) -> FallbackChain:
    """A :class:`FallbackChain` over ``order`` (e.g. ``["yfinance", "alphavantage", "bundled"]``)."""
    return FallbackChain([build_source(n, settings) for n in order], pinned=pinned)
