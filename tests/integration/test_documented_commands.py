"""The commands the README, the user guide and the runbook show are run, so they stay true.

Every ```bash block of those three files runs as one script (its lines in order, ``set -e``, so
an ``export`` holds for the lines after it) in a copy of the repository (its tracked files, the
real ``.venv`` linked in, ``../shared`` linked beside it), with the documents' own defaults:
``PM_HOME`` and ``DAGSTER_HOME`` unset, so ``.pm`` is the copy's. A command that takes minutes,
serves until stopped, or is the test suite itself is checked instead of run, in a way that still
fails when the document is wrong:

- ``make TARGET`` → ``make -n TARGET`` (the target exists and its recipe expands);
- ``python -m MODULE ...`` of a report, the demo or a server → ``python -m MODULE --help``
  succeeds and lists every ``--option`` the document passes;
- ``pytest FILE`` → the file exists.

Lines with a placeholder (``RUN_ID``) get the same ``--help`` check.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = ["README.md", "docs/user_guide.md", "docs/runbook.md"]
# make targets that are run for real (quick, no server)
RUN_MAKE = {"dagster-home"}
# modules whose documented invocation takes minutes: checked through --help
SLOW_MODULES = {
    "model_code.evaluation.report",
    "model_code.ml.report",
    "model_code.signals.report",
    "model_code.backtest.report",
    "pm_jobs.demo",
}
PLACEHOLDERS = ("RUN_ID",)
BLOCK = re.compile(r"```bash\n(.*?)```", re.S)


def _strip_comment(line: str) -> str:
    """The command without a trailing ``  # comment`` (a ``#`` inside quotes is kept)."""
    out, quote = [], None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            break
        out.append(ch)
    return "".join(out).rstrip()


def documented_blocks() -> list[tuple[str, int, list[str]]]:
    """(document, block number, command lines) of every bash block."""
    blocks = []
    for doc in DOCUMENTS:
        for k, block in enumerate(BLOCK.findall((ROOT / doc).read_text())):
            lines = [_strip_comment(line) for line in block.splitlines()]
            blocks.append((doc, k, [line for line in lines if line]))
    return blocks


def _words(line: str) -> list[str]:
    words = shlex.split(line)
    while words and re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]):  # VAR=value prefixes
        words = words[1:]
    return words


def checked_form(line: str) -> str:
    """The line as the test runs it: itself, or the check that stands in for it."""
    words = _words(line)
    if not words:
        return line
    if words[0] == "make":
        targets = [w for w in words[1:] if not w.startswith("-")]
        if all(t in RUN_MAKE for t in targets):
            return line
        return "make -n " + " ".join(shlex.quote(t) for t in targets) + " >/dev/null"
    if "-m" in words:
        module = words[words.index("-m") + 1]
        if module == "pytest":
            files = [w for w in words[words.index("-m") + 2 :] if not w.startswith("-")]
            return " && ".join(f"test -f {shlex.quote(f)}" for f in files)
        if module in SLOW_MODULES or any(p in line for p in PLACEHOLDERS):
            options = sorted({w.split("=")[0] for w in words if w.startswith("--")})
            python = shlex.quote(words[0])
            checks = [f"{python} -m {module} --help > .help.txt"]
            checks += [f"grep -q -- {shlex.quote(o)} .help.txt" for o in options]
            return " && ".join(checks)
    return line


def test_checked_forms_keep_quick_commands_and_check_slow_ones():
    assert checked_form("make demo") == "make -n demo >/dev/null"
    assert checked_form("make dagster-home") == "make dagster-home"
    assert checked_form("PM_X=1 make dev") == "make -n dev >/dev/null"
    slow = checked_form(".venv/bin/python -m model_code.signals.report --parquet a --out b")
    assert slow.startswith(".venv/bin/python -m model_code.signals.report --help")
    assert "grep -q -- --out" in slow and "grep -q -- --parquet" in slow
    assert (
        checked_form(".venv/bin/python -m pm_jobs.pool_admin status")
        == ".venv/bin/python -m pm_jobs.pool_admin status"
    )
    assert "--help" in checked_form(".venv/bin/python -m pm_jobs.pool_admin free RUN_ID")
    assert checked_form(".venv/bin/python -m pytest tests/x.py -q") == "test -f tests/x.py"
    assert _strip_comment("make test   # runs pytest") == "make test"
    assert _strip_comment("""--tags '{"a#b": 1}'  # x""") == """--tags '{"a#b": 1}'"""


@pytest.fixture(scope="module")
def repo_copy(tmp_path_factory) -> Path:
    """The tracked files in a fresh folder, the real .venv linked in, ../shared beside it."""
    base = tmp_path_factory.mktemp("documented")
    copy = base / "repo"
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, tracked.decode().split("\0")):
        src = ROOT / name
        if src.is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, copy / name)
    (copy / ".venv").symlink_to(ROOT / ".venv")
    shared = ROOT.parent / "shared"
    if shared.exists():
        (base / "shared").symlink_to(shared)
    return copy


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"PM_HOME", "DAGSTER_HOME", "PM_DUCKDB_PATH"}}
    env["VIRTUAL_ENV"] = str(ROOT / ".venv")
    env["PATH"] = f"{ROOT / '.venv' / 'bin'}:{env.get('PATH', '')}"
    return env


@pytest.mark.parametrize("doc", DOCUMENTS)
def test_documented_commands_run(doc, repo_copy):
    blocks = [lines for d, _, lines in documented_blocks() if d == doc]
    assert blocks, f"{doc} has no bash block"
    subprocess.run(["make", "dagster-home"], cwd=repo_copy, env=_env(), check=True, capture_output=True)
    for lines in blocks:
        script = "set -euo pipefail\n" + "\n".join(checked_form(line) for line in lines) + "\n"
        done = subprocess.run(
            ["bash", "-c", script], cwd=repo_copy, env=_env(), capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, (
            f"{doc}:\n{script}\nstdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}"
        )
