"""On-disk cache of successful web-source responses.

Free API tiers allow few requests per day, and the same window is often asked for again (a
re-run, a backfill that overlaps). Parsed payloads are kept as JSON files for a while so those
repeats cost no request. Only successful responses are stored; the HTTP client decides what is
cached and builds keys without secrets.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class ResponseCache:
    """Successful payloads as JSON files ``<root>/<key>.json``, reused for ``ttl_s`` seconds.

    Best effort: a file that cannot be read or written is treated as a miss, never an error.
    """

    def __init__(self, root: Path, ttl_s: float, *, now: Callable[[], float] = time.time) -> None:
        self.root, self.ttl_s, self._now = Path(root), ttl_s, now

    @staticmethod
    def key(*parts: Any) -> str:
        """A stable file name for a request described by JSON-serialisable ``parts``."""
        blob = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    def path(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def load(self, key: str) -> Any | None:
        """The cached payload, or ``None`` when absent, expired or unreadable."""
        try:
            entry = json.loads(self.path(key).read_text())
            fresh = self._now() - float(entry["stored_at"]) <= self.ttl_s
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring unreadable cache file %s: %s", self.path(key), exc)
            return None
        return entry["payload"] if fresh else None

    def store(self, key: str, payload: Any, *, request: str) -> None:
        """Write atomically; ``request`` (already redacted) is kept for people reading the file."""
        entry = {"stored_at": self._now(), "request": request, "payload": payload}
        target = self.path(key)
        tmp = target.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(entry))
            os.replace(tmp, target)
        except OSError as exc:
            log.warning("could not write cache file %s: %s", target, exc)
            tmp.unlink(missing_ok=True)
