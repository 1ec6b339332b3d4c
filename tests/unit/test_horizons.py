"""Horizons are one fact: every SQL block that pivots targets by horizon lists exactly HORIZONS."""

import re

from model_code.horizons import HORIZONS
from model_code.warehouse.store import sql_dir

CASE = re.compile(r"CASE\s+\w+\.horizon(.*?)END", re.S | re.I)
ARM = re.compile(r"WHEN\s+(\d+)\s+THEN\s+\w+\.(?:fwd_ret|target_date)_(\d+)", re.I)


def test_every_sql_horizon_case_lists_exactly_the_defined_horizons():
    blocks = []
    for path in sorted(sql_dir().rglob("*.sql")):
        for block in CASE.findall(path.read_text()):
            arms = ARM.findall(block)
            assert all(a == b for a, b in arms), f"{path.name}: a WHEN arm maps one horizon to another"
            blocks.append((path.name, tuple(int(a) for a, _ in arms)))
    assert blocks, "no horizon CASE block found: the check would prove nothing"
    for name, horizons in blocks:
        assert horizons == HORIZONS, f"{name} pivots horizons {horizons}, HORIZONS is {HORIZONS}"


def test_the_ddl_has_a_target_column_pair_for_every_horizon():
    ddl = (sql_dir() / "ddl" / "020_features.sql").read_text()
    declared = {int(h) for h in re.findall(r"\bfwd_ret_(\d+)\b", ddl)}
    assert declared == set(HORIZONS)
    assert {int(h) for h in re.findall(r"\btarget_date_(\d+)\b", ddl)} == set(HORIZONS)
