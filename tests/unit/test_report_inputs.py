"""The ML report, run on a small synthetic file, names its inputs relative to the repository and
counts the rows the shared loader rejected (the walk-forward report's CLI test does the same)."""

from __future__ import annotations

import os

import polars as pl

from model_code.evaluation.clean_bars import REPO_ROOT
from model_code.features.synthetic import synthetic_bars
from model_code.ml import report


def test_ml_report_header_names_inputs_relative_to_the_repository(tmp_path) -> None:
    bars = synthetic_bars(6, 1300, seed=3).drop("source")
    bars = pl.concat([bars, bars.head(1).with_columns(pl.col("low") * 0.5)])  # a conflicting duplicate
    src, stat = tmp_path / "bars.parquet", tmp_path / "stat.parquet"
    bars.write_parquet(src)
    test_rows = bars.filter(pl.col("date").is_between(*report.TEST)).unique(["ticker", "date"])
    test_rows.select(
        "ticker",
        pl.col("date").alias("as_of"),
        model=pl.lit("ensemble"),
        horizon=pl.lit(1),
        yhat=pl.lit(0.001),
    ).write_parquet(stat)
    out = tmp_path / "ml.md"
    result = report.run_report(src, out, seeds=1, search=False, stat_predictions=stat, horizons=(1,))
    text = out.read_text()
    rel_src, rel_stat = os.path.relpath(src, REPO_ROOT), os.path.relpath(stat, REPO_ROOT)
    assert f"--parquet {rel_src} --seeds 1 --no-search --stat-predictions {rel_stat}`" in text
    assert f"scored from `{rel_stat}`" in text
    assert result["data"]["raw_rows"] == bars.height and result["data"]["rows"] == bars.height - 2
    assert "Quarantined rows by reason: {'conflicting_duplicate': 2}" in text
