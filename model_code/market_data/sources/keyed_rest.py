"""What the key-authenticated REST sources (Alpha Vantage, Finnhub) share.

The key is held privately, registered with the HTTP client for redaction, and checked at
fetch time (not construction), so a fallback chain without that key still builds and records
the missing key as the source's reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from model_code.market_data.sources.base import SourceConfigError
from model_code.market_data.sources.http import HttpClient, HttpPolicy


class KeyedRestSource:
    """Base of a REST source that needs an API key (subclasses set the three class names)."""

    name: str
    provider: str  # shown to people, e.g. "Alpha Vantage"
    key_env_var: str

    def __init__(
        self,
        api_key: str | None,
        *,
        base_url: str,
        policy: HttpPolicy,
        cache_dir: Path | None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._api_key = api_key or None
        self.base_url = base_url.rstrip("/")
        self.client = HttpClient(
            self.name, policy, cache_dir, [api_key] if api_key else [], sleep=sleep, clock=clock
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    def list_tickers(self) -> None:
        return None

    def require_key(self) -> str:
        """The API key, or :class:`SourceConfigError` naming the variable to set."""
        if not self._api_key:
            raise SourceConfigError(f"{self.provider} API key missing: set {self.key_env_var}")
        return self._api_key
