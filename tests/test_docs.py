"""The docs describe the code as it is: their tables list exactly the warehouse's columns, the
validator's reasons, findings and checks; they name no machine's absolute paths; the README's
sensor claim matches the sensors that exist."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import polars as pl
import pytest

from model_code.forecasting import catalog
from model_code.validation import QUARANTINE_REASONS, findings
from model_code.validation.window_checks import CHECKS
from model_code.warehouse import apply_ddl
from pm_sensors import all_sensors

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
DOCUMENTED_SCHEMAS = (
    "market",
    "features",
    "forecasts",
    "models",
    "signals",
    "portfolio",
    "backtest",
    "paper",
    "monitoring",
)
# A path from a filesystem root where machines keep their files (home and work folders, temp,
# mounts), not inside a relative path or URL ("../shared/x", "pm_assets/x", "http://host/x" and
# API routes such as "/api/v1/stock/candle" are fine); or a Windows drive.
ROOTS = "work|home|root|tmp|Users|var|opt|mnt|media|srv|usr|etc|private|scratch|data|nfs"
ABSOLUTE_PATH = re.compile(rf"(?<![\w.~:/$-])/(?:{ROOTS})/[\w.-]+|\b[A-Za-z]:\\")
CELL_SPLIT = re.compile(r"(?<!\\)\|")  # "\|" inside a cell is a literal bar


def markdown_tables(text: str) -> dict[str, list[list[dict[str, str]]]]:
    """Per ``## `` section title (the text before an em dash), its tables as lists of rows, each
    row a {header: cell} dict with backticks stripped."""
    sections: dict[str, list[list[dict[str, str]]]] = {}
    title, table, header = None, None, None
    for line in text.splitlines():
        if line.startswith("## "):
            title, table = line[3:].split(" — ")[0].replace("`", "").strip(), None
            sections[title] = []
        elif line.startswith("|") and title is not None:
            cells = [c.strip().replace("`", "") for c in CELL_SPLIT.split(line.strip())[1:-1]]
            if table is None:
                table, header = [], cells
                sections[title].append(table)
            elif not set("".join(cells)) <= set("-: "):
                table.append(dict(zip(header, cells, strict=True)))
        else:
            table = None
    return sections


def _names(cell: str) -> list[str]:
    return [n.strip() for n in cell.split(",") if n.strip()]


def documented_columns(text: str) -> dict[str, set[str]]:
    """{``schema.table``: columns named in the first cell of its section's ``column`` tables}."""
    out = {}
    for title, tables in markdown_tables(text).items():
        if re.fullmatch(rf"({'|'.join(DOCUMENTED_SCHEMAS)})\.\w+", title):
            out[title] = {n for t in tables for row in t if "column" in row for n in _names(row["column"])}
    return out


def ddl_columns() -> dict[str, set[str]]:
    conn = duckdb.connect()
    apply_ddl(conn)
    rows = conn.execute(
        "SELECT table_schema || '.' || table_name, column_name FROM information_schema.columns "
        f"WHERE table_schema IN {DOCUMENTED_SCHEMAS}"
    ).fetchall()
    out: dict[str, set[str]] = {}
    for table, column in rows:
        out.setdefault(table, set()).add(column)
    return out


def test_markdown_tables_are_read_per_section_with_escaped_bars():
    text = "\n".join(
        ["## `market.b` — x", "", "| column | meaning |", "| --- | --- |", "| p, `q` | \\|x\\| |", ""]
        + ["prose", "", "## c", "| k |", "|---|"]
    )
    assert markdown_tables(text) == {"market.b": [[{"column": "p, q", "meaning": "\\|x\\|"}]], "c": [[]]}
    assert documented_columns(text) == {"market.b": {"p", "q"}}


def test_data_model_tables_list_exactly_the_ddl_columns():
    documented, actual = documented_columns((DOCS / "data_model.md").read_text()), ddl_columns()
    assert sorted(documented) == sorted(actual), "tables documented vs in the DDL"
    for table, columns in actual.items():
        assert documented[table] - columns == set(), f"{table}: documented but not in the DDL"
        assert columns - documented[table] == set(), f"{table}: in the DDL but not documented"


def test_data_model_names_every_forecast_model():
    tables = markdown_tables((DOCS / "data_model.md").read_text())["forecasts.predictions"]
    cell = next(r["meaning"] for t in tables for r in t if r["column"] == "ticker, model, horizon")
    named = re.search(r"model: ([\w, ]+);", cell)
    assert named and _names(named.group(1)) == [*catalog.ALL_MODELS, "ensemble"], cell


def test_validation_doc_tables_match_reasons_findings_and_checks():
    sections = markdown_tables((DOCS / "validation.md").read_text())
    (rules,) = sections["Row rules → market.quarantine"]
    assert [r["reason"] for r in rules] == list(QUARANTINE_REASONS)  # the order decides the reason
    (kinds,) = sections["Series findings → market.data_quality"]
    code_kinds = dict(re.findall(r'\(\s*"(\w+)",\s*"(warn|info)",', Path(findings.__file__).read_text()))
    assert len(code_kinds) == 5, code_kinds  # the pattern still reads findings.py
    assert {r["kind"]: r["severity"] for r in kinds} == code_kinds
    (checks,) = sections["Asset checks on market/ohlcv"]
    assert {r["check"]: r["blocking"] for r in checks} == {
        c.name: "yes" if c.blocking else "no" for c in CHECKS
    }
    (shared,) = sections["On the shared data set"]
    assert {r["reason"] for r in shared} <= set(QUARANTINE_REASONS)


def _doc_files() -> list[Path]:
    return sorted(p for p in DOCS.rglob("*") if p.is_file())


def _texts(path: Path) -> list[str]:
    """The prose of a doc file: a text file whole, a parquet file's string cells and names."""
    if path.suffix == ".parquet":
        frame = pl.read_parquet(path)
        cells = [v for c in frame.select(pl.col(pl.String)).columns for v in frame[c].drop_nulls().unique()]
        return [*frame.columns, *cells]
    return [path.read_text()]


def test_absolute_path_pattern_tells_paths_from_relative_names_and_urls():
    for bad in (
        "/work/shared/x.parquet",
        "from /home/me/data",
        "(/tmp/pm/x)",
        "`/Users/me/x`",
        "C:\\data\\x",
    ):
        assert ABSOLUTE_PATH.search(bad), bad
    for fine in ("../shared/data/x.parquet", "pm_assets/market/ohlcv.py", "http://127.0.0.1:3000/x/y"):
        assert not ABSOLUTE_PATH.search(fine), fine
    for fine in ("$PM_HOME/models/x", "1/5/21/63", "(px − SMA20) / (2·std20)", "`/proc`", "`/api/v1/x`"):
        assert not ABSOLUTE_PATH.search(fine), fine


@pytest.mark.parametrize("path", _doc_files(), ids=lambda p: str(p.relative_to(DOCS)))
def test_docs_name_no_absolute_filesystem_path(path):
    assert path.suffix in (".md", ".parquet"), f"{path}: unknown doc file type, teach this test to read it"
    hits = [m.group(0) for text in _texts(path) for m in ABSOLUTE_PATH.finditer(text)]
    assert hits == [], f"{path.relative_to(ROOT)} names absolute paths: {hits[:5]}"


def test_readme_sensor_claim_matches_the_sensors_that_exist():
    row = next(line for line in (ROOT / "README.md").read_text().splitlines() if "`pm_sensors/`" in line)
    if all_sensors:
        assert "none yet" not in row, row
    else:
        assert "none yet" in row, row


def test_reliability_doc_names_only_tests_that_exist():
    root = DOCS.parent
    text = (DOCS / "reliability.md").read_text()
    node_ids = re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", text)
    assert len(node_ids) >= 30, "the reliability table lost its rows"
    for path, name in node_ids:
        source = (root / path).read_text()
        assert re.search(rf"^def {name}\(", source, re.M), (
            f"docs/reliability.md names {path}::{name}, which does not exist"
        )
