"""Opening the DuckDB file while another process may hold it.

DuckDB lets one process hold a file for writing and refuses every other process, readers
included, with "Could not set lock on file ...". A user's notebook or BI tool that keeps the
file open would otherwise fail the nightly run with that raw message. :func:`connect` retries
with exponential backoff for up to ``timeout`` seconds (Ctrl-C interrupts the wait at once),
then raises :class:`WarehouseLocked` naming the process that holds the file and what to do.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import duckdb

DEFAULT_LOCK_TIMEOUT = 60.0  # seconds
_FIRST_DELAY = 0.05  # seconds
_MAX_DELAY = 2.0  # seconds
_LOCK_TEXT = "Could not set lock on file"
_PID = re.compile(r"\(PID (\d+)\)")


class WarehouseLocked(RuntimeError):
    """Another process held the DuckDB file for longer than the configured wait."""

    def __init__(self, message: str, *, pid: int | None) -> None:
        super().__init__(message)
        self.pid = pid


def holder_of(error: BaseException) -> tuple[int | None, str]:
    """The PID DuckDB names in a lock error and, where ``/proc`` shows it, its command line."""
    match = _PID.search(str(error))
    if not match:
        return None, "an unknown process"
    pid = int(match.group(1))
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return pid, f"PID {pid}"
    command = " ".join(part.decode(errors="replace") for part in raw.split(b"\0") if part)
    if len(command) > 200:
        command = command[:197] + "..."
    return pid, f"PID {pid} ({command})" if command else f"PID {pid}"


def is_lock_error(error: BaseException) -> bool:
    """Whether ``error`` is DuckDB refusing the file because another process holds it."""
    return isinstance(error, duckdb.IOException) and _LOCK_TEXT in str(error)


def connect(
    database: str,
    *,
    read_only: bool = False,
    config: Mapping[str, Any] | None = None,
    timeout: float = DEFAULT_LOCK_TIMEOUT,
    on_wait: Callable[[str], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> duckdb.DuckDBPyConnection:
    """Open ``database``, waiting up to ``timeout`` seconds while another process holds it.

    Only the lock conflict is retried (delays 0.05 s doubling to 2 s); any other error is
    raised at once. ``on_wait`` is told once, when the first attempt is refused.

    Raises:
        WarehouseLocked: the file was still held after ``timeout`` seconds.
    """
    began = clock()
    delay = _FIRST_DELAY
    told = False
    while True:
        try:
            return duckdb.connect(database=database, read_only=read_only, config=dict(config or {}))
        except duckdb.IOException as exc:
            if not is_lock_error(exc):
                raise
            pid, who = holder_of(exc)
            waited = clock() - began
            if waited >= timeout:
                raise WarehouseLocked(
                    f"the warehouse {database} is held by another process, {who}, and was still "
                    f"held after waiting {waited:.0f} s (limit {timeout:.0f} s). DuckDB lets one "
                    "process hold the file and refuses every other one. Close that process's "
                    "connection (in a notebook: con.close()) or stop it, then run again; open the "
                    "warehouse from notebooks only between runs, or raise the wait with the "
                    "warehouse resource's lock_timeout_seconds (PM_DUCKDB_LOCK_TIMEOUT).",
                    pid=pid,
                ) from None
            if not told and on_wait is not None:
                on_wait(f"the warehouse {database} is held by {who}; waiting up to {timeout:.0f} s")
                told = True
            sleep(min(delay, max(0.0, timeout - waited)))
            delay = min(2 * delay, _MAX_DELAY)
