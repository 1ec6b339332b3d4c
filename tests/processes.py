"""Other processes for tests: one that holds a DuckDB file, as a user's notebook would."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_HOLDER = """
import sys, time, duckdb
conn = duckdb.connect(sys.argv[1])
conn.execute("CREATE TABLE IF NOT EXISTS notebook_scratch AS SELECT 1 AS x")
print("holding", flush=True)
time.sleep(float(sys.argv[2]))
conn.close()
print("released", flush=True)
"""


@contextmanager
def holding_duckdb(path: Path, seconds: float = 120.0) -> Iterator[subprocess.Popen]:
    """Another process opens ``path`` read-write and keeps it for ``seconds`` (killed on exit)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(path), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert line.strip() == "holding", f"the holder did not start: {line!r}"
        yield proc
    finally:
        proc.kill()
        proc.wait(timeout=30)
        if proc.stdout:
            proc.stdout.close()
