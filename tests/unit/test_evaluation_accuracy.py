"""Accuracy table on constructed forecasts with known answers."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from model_code.evaluation.accuracy import METRIC_COLUMNS, accuracy_table


def _frame() -> pl.DataFrame:
    actual = [0.02, -0.01, 0.03, -0.02, 0.00, 0.01, 0.05, -0.04, 0.02, 0.01]
    yhat = [0.01, -0.02, -0.01, 0.00, 0.01, 0.02, 0.04, -0.01, 0.00, -0.01]
    # Intervals: centre = actual, 80 % half-width 0.01 except two rows that miss; 95 % misses one.
    lo80 = [a - 0.01 for a in actual]
    lo80[0], lo80[1] = 0.03, 0.0  # rows 0 and 1 miss (actual below lower)
    lo95 = [a - 0.02 for a in actual]
    lo95[0] = 0.05
    return pl.DataFrame(
        {
            "model": ["m"] * 10,
            "horizon": [1] * 10,
            "yhat": yhat,
            "actual": actual,
            "lower_80": lo80,
            "upper_80": [a + 0.01 for a in actual],
            "lower_95": lo95,
            "upper_95": [a + 0.02 for a in actual],
        }
    )


def test_known_answers() -> None:
    frame = _frame()
    row = accuracy_table(frame).row(0, named=True)
    e = (frame["yhat"] - frame["actual"]).to_numpy()
    assert row["n"] == 10
    assert row["rmse"] == pytest.approx(math.sqrt(np.mean(e**2)))
    assert row["mae"] == pytest.approx(np.mean(np.abs(e)))
    assert row["bias"] == pytest.approx(np.mean(e))
    assert row["tracking_error"] == pytest.approx(np.std(e, ddof=1))
    assert row["coverage_80"] == pytest.approx(0.8)
    assert row["coverage_95"] == pytest.approx(0.9)
    # Direction: rows 3 and 8 (yhat 0) and row 4 (actual 0) are excluded; of the 7 left,
    # rows 0, 1, 5, 6, 7 agree and rows 2, 9 disagree.
    assert row["hit_n"] == 7
    assert row["hit_rate"] == pytest.approx(5 / 7)
    assert row["hit_se"] == pytest.approx(math.sqrt(5 / 7 * 2 / 7 / 7))
    y, f = frame["actual"].to_numpy(), frame["yhat"].to_numpy()
    assert row["smape"] == pytest.approx(np.mean(2 * np.abs(e) / (np.abs(y) + np.abs(f))))


def test_groups_skip_non_finite_rows_and_zero_denominators() -> None:
    frame = pl.concat(
        [
            _frame(),
            _frame().with_columns(pl.lit("z").alias("model"), pl.lit(0.0).alias("yhat")),
            pl.DataFrame({"model": ["m"], "horizon": [1], "yhat": [0.1], "actual": [None]}),
        ],
        how="diagonal_relaxed",
    )
    frame = pl.concat(
        [frame, frame.head(1).with_columns(pl.lit(0.0).alias("actual"), pl.lit(0.0).alias("yhat"))]
    )
    table = accuracy_table(frame)
    assert table.columns == ["model", "horizon", *METRIC_COLUMNS]
    m, z = table.row(0, named=True), table.row(1, named=True)
    assert m["n"] == 11  # the NULL actual is dropped, the 0/0 row kept
    assert m["smape"] == pytest.approx(accuracy_table(_frame())["smape"][0])  # the 0/0 row is skipped
    # A zero forecast: no direction, sMAPE exactly 2 wherever the actual is nonzero.
    assert z["hit_n"] == 0 and z["hit_rate"] is None and z["hit_se"] is None
    assert z["smape"] == pytest.approx(2.0)


def test_coverage_ignores_rows_without_intervals() -> None:
    frame = _frame().with_columns(pl.lit(None, dtype=pl.Float64).alias("lower_95"))
    assert accuracy_table(frame)["coverage_95"][0] is None
    two = accuracy_table(_frame(), by=("model",))
    assert two.columns[0] == "model" and two.height == 1
