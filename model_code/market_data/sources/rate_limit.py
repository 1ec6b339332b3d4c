"""Client-side rate limiting for the web sources.

Free API tiers allow a few requests per minute; spacing requests on our side keeps the sources
under those limits instead of collecting 429s. Each :class:`~.http.HttpClient` owns one
limiter; the yfinance session waits on it too for the requests yfinance sends itself.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RateLimiter:
    """Minimum spacing of ``60 / requests_per_minute`` seconds between calls to :meth:`wait`.

    Each caller reserves the next free slot under a lock and sleeps outside it, so concurrent
    threads get successive slots instead of racing for the same one.
    """

    def __init__(
        self,
        requests_per_minute: float,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval_s = 60.0 / requests_per_minute if requests_per_minute > 0 else 0.0
        self._sleep, self._clock = sleep, clock
        self._next_slot: float | None = None
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = self._clock()
            slot = now if self._next_slot is None else max(now, self._next_slot)
            self._next_slot = slot + self.interval_s
        if slot > now:
            self._sleep(slot - now)
