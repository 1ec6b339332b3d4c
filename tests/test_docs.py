"""The docs describe the code as it is: every table, column, reason and check is documented."""

from pathlib import Path

import duckdb

from model_code.validation import QUARANTINE_REASONS, findings
from model_code.validation.window_checks import CHECKS
from model_code.warehouse import apply_ddl

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_data_model_documents_every_table_and_column():
    text = (DOCS / "data_model.md").read_text()
    conn = duckdb.connect()
    apply_ddl(conn)
    columns = conn.execute(
        "SELECT table_schema || '.' || table_name, column_name FROM information_schema.columns "
        "WHERE table_schema IN ('market', 'features', 'forecasts', 'models')"
    ).fetchall()
    for table, column in columns:
        assert table in text, f"{table} missing from docs/data_model.md"
        assert column in text, f"{table}.{column} missing from docs/data_model.md"


def test_validation_doc_lists_every_reason_finding_and_check():
    text = (DOCS / "validation.md").read_text()
    for reason in QUARANTINE_REASONS:
        assert f"`{reason}`" in text, reason
    findings_code = Path(findings.__file__).read_text()
    for kind in ("calendar_gap", "jump", "adjustment_jump", "split", "zero_volume"):
        assert f'"{kind}"' in findings_code, f"{kind} is no longer a finding kind"
        assert f"`{kind}`" in text, kind
    for check in CHECKS:
        assert f"`{check.name}`" in text, check.name
