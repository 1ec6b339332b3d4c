"""Other processes for tests: one that holds a DuckDB file, as a user's notebook would, and a fresh
interpreter whose whole stderr (its worker processes' included) a test can read."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

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


def stderr_of_fresh_interpreter(target: str, timeout_s: float = 300.0) -> str:
    """Everything written to file descriptor 2 while a new Python process calls ``target``
    (``"package.module:function"``, no arguments), from the repository root.

    A fresh interpreter, not pytest's capture, because only it sees what production would print:
    worker processes inherit its stderr (a reused pool of the test process would keep writing
    wherever it was started), and warnings follow Python's default filters instead of being
    collected by pytest. The call's own assertions count: a non-zero exit fails here with its
    stderr.
    """
    module, function = target.split(":")
    code = f"import importlib; importlib.import_module({module!r}).{function}()"
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout_s
    )
    assert proc.returncode == 0, f"{target} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}"
    return proc.stderr
