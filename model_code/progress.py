"""Progress of long loops: counts, rate and ETA to a logger, and a bar on an interactive terminal.

    for chunk in track(chunks, "backfill runs", log=context.log.info):
        ...

:func:`track` yields the items of an iterable unchanged. Every ``every_seconds`` (and at the
end) it logs one line through ``log`` (a Dagster ``context.log.info``, ``print`` or any
``str -> None``): ``"<label>: 12/40 (30 %), 0.8/s, ETA 35 s"``. When ``bar`` is true and stderr
is a terminal, a tqdm bar shows the same on the command line; in a Dagster run or a pipe there
is no bar, only the log lines. The formatting is :func:`progress_line`, a pure function.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sized
from typing import TypeVar

T = TypeVar("T")


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def progress_line(label: str, done: int, total: int | None, elapsed: float) -> str:
    """One progress line: count, share, rate per second and the ETA at the current rate."""
    rate = done / elapsed if elapsed > 0 else float("nan")
    rate_text = f"{rate:.2f}/s" if rate == rate else "–/s"
    if not total:
        return f"{label}: {done} done, {rate_text}, {_duration(elapsed)} elapsed"
    share = done / total
    if done >= total:
        return f"{label}: {done}/{total} (100 %), {rate_text}, done in {_duration(elapsed)}"
    eta = (total - done) / rate if rate and rate == rate else float("nan")
    eta_text = _duration(eta) if eta == eta else "unknown"
    return f"{label}: {done}/{total} ({share * 100:.0f} %), {rate_text}, ETA {eta_text}"


def track(
    items: Iterable[T],
    label: str,
    *,
    total: int | None = None,
    log: Callable[[str], object] | None = None,
    every_seconds: float = 10.0,
    bar: bool = True,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[T]:
    """Yield ``items``, logging progress every ``every_seconds`` and once at the end."""
    if total is None and isinstance(items, Sized):
        total = len(items)
    shown = None
    if bar and sys.stderr.isatty():
        from tqdm import tqdm

        shown = tqdm(total=total, desc=label, file=sys.stderr, leave=False)
    start = last = clock()
    done = 0
    try:
        for item in items:
            yield item
            done += 1
            if shown is not None:
                shown.update(1)
            now = clock()
            if log is not None and now - last >= every_seconds and (total is None or done < total):
                log(progress_line(label, done, total, now - start))
                last = now
    finally:
        if shown is not None:
            shown.close()
    if log is not None:
        log(progress_line(label, done, total, clock() - start))
