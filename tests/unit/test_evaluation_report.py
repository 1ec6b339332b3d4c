"""The walk-forward report CLI on a tiny synthetic file, and the loader on the shared data set."""

from __future__ import annotations

import datetime as dt
import os

import polars as pl
import pytest

from model_code.evaluation.clean_bars import REPO_ROOT
from model_code.evaluation.report import load_bars, main
from model_code.evaluation.walk_forward import run_walk_forward
from model_code.features.synthetic import synthetic_bars
from model_code.forecasting import catalog


def test_cli_writes_markdown_and_per_origin_parquet(tmp_path) -> None:
    src = tmp_path / "bars.parquet"
    bars = synthetic_bars(3, 400, seed=5).drop("source")
    bars = pl.concat([bars, bars.head(1)])  # an exact duplicate key must not reach the models
    bars.write_parquet(src)
    out = tmp_path / "res" / "wf.md"
    args = ["--parquet", str(src), "--start", "2015-09-01", "--end", "2015-10-31", "--tickers", "2"]
    args += ["--models", "--workers", "1", "--history", "200", "--min-history", "100", "--out", str(out)]
    assert main(args) == 0
    text = out.read_text()
    # The input is named relative to the repository, never by this machine's absolute path.
    assert f"- **data**: {os.path.relpath(src, REPO_ROOT)} (2 tickers after sampling" in text
    assert "2 monthly, 2015-09-01 to 2015-10-01" in text and "2 tickers" in text
    assert "| drift | 63 |" in text and "| random_walk | 1 |" in text and "## Reading" in text
    assert "always-up forecast would have hit h=1:" in text and "95 % interval coverage ranges" in text
    per_origin = pl.read_parquet(tmp_path / "res" / "wf_origins.parquet")
    assert per_origin.height == 2 * 3 * 4  # origins x (2 baselines + ensemble) x horizons
    assert {"origin", "model", "horizon", "n", "mse", "coverage_95"} <= set(per_origin.columns)


@pytest.mark.shared_data
def test_shared_data_loads_clean_and_runs(shared_parquet) -> None:
    bars = load_bars(shared_parquet, tickers=3, seed=1)
    assert bars["ticker"].n_unique() == 3
    assert bars.select(pl.struct("ticker", "date").is_duplicated().any()).item() is False
    assert bars.select(pl.min_horizontal("open", "high", "low", "close", "adj_close").min()).item() >= 0.05
    origins = [dt.date(2019, 6, 3), dt.date(2019, 7, 1)]
    out = run_walk_forward(bars, catalog.select([]), origins, workers=1)
    assert out.height == 2 * 3 * 3 * 4 and out["actual"].null_count() == 0
