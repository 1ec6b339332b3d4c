"""The configured history: the first and last session the platform's partitions cover.

``PM_HISTORY_START`` (default 2018-01-02) is the first session; ``PM_HISTORY_END`` the last. When
``PM_HISTORY_END`` is unset and the only source is the offline bundled data (``PM_SOURCES``
unset or ``bundled``), the history ends at the last bundled bar, so the UI never offers a
session that has no data; with any other source it is open-ended (up to today). Dates are
ISO ``YYYY-MM-DD``; a malformed one is refused with the variable named.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping

from model_code.market_data.sources.bundled import BUNDLED_LAST_DATE

DEFAULT_HISTORY_START = dt.date(2018, 1, 2)


def _date(env: Mapping[str, str], name: str) -> dt.date | None:
    value = (env.get(name) or "").strip()
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{name}={value[:40]!r} is not a date (YYYY-MM-DD)") from None


def _sources(env: Mapping[str, str]) -> list[str]:
    return [s.strip() for s in (env.get("PM_SOURCES") or "bundled").split(",") if s.strip()]


def history_window(env: Mapping[str, str] | None = None) -> tuple[dt.date, dt.date | None]:
    """(first session, last session or None for open-ended) from the environment."""
    env = os.environ if env is None else env
    start = _date(env, "PM_HISTORY_START") or DEFAULT_HISTORY_START
    end = _date(env, "PM_HISTORY_END")
    if end is None and _sources(env) == ["bundled"]:
        end = BUNDLED_LAST_DATE
    if end is not None and end < start:
        raise ValueError(f"PM_HISTORY_END {end} is before PM_HISTORY_START {start}")
    return start, end
