"""Stored-forecast fixtures for the signal tests: real bundled bars, forecasts with known skill.

The forecasts are made from the bars, not by a model: ``yhat`` is a noisy, shrunk copy of the
realized 5-session return for the ML source (so it has skill, and a calibration finds it) and
pure noise for the time-series source. Real enough to exercise calibration and routing; the
skill is planted so a test can tell a working calibration from a broken one.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from model_code.features import build_targets
from model_code.forecasting.base import Z80
from model_code.forecasting.predictions import target_dates
from model_code.market_data.sources.bundled import bundled_bars

TICKERS = ["AAPL", "MSFT", "JPM", "XOM", "WMT", "KO"]
HORIZON = 5


def bars(start=dt.date(2017, 6, 1), end=dt.date(2019, 6, 28)) -> pl.DataFrame:
    b = bundled_bars().filter(pl.col("ticker").is_in(TICKERS) & pl.col("date").is_between(start, end))
    return b.sort("ticker", "date")


def planted_forecasts(
    bars: pl.DataFrame, origins: list[dt.date], seed: int = 0, *, skill: float = 0.4
) -> pl.DataFrame:
    """``@signal_inputs``-shaped rows for both sources at ``origins`` (needs the bars after them)."""
    t = build_targets(bars, [HORIZON]).filter(pl.col("date").is_in(origins))
    rng = np.random.default_rng(seed)
    actual = t[f"fwd_ret_{HORIZON}"].fill_null(0.0).to_numpy()
    ahead = {d: target_dates(d, [HORIZON])[HORIZON] for d in t["date"].unique().to_list()}
    sd = 0.03
    out = []
    for source, model, yhat in (
        ("ml", "lgbm", skill * actual + rng.normal(0, 0.01, t.height)),
        ("ts", "ensemble", rng.normal(0, 0.004, t.height)),
    ):
        out.append(
            pl.DataFrame(
                {
                    "source": source,
                    "origin": t["date"],
                    "ticker": t["ticker"],
                    "model": model,
                    "target_date": t["date"].replace_strict(ahead, return_dtype=pl.Date),
                    "yhat": yhat,
                    "lower_80": yhat - Z80 * sd,
                    "upper_80": yhat + Z80 * sd,
                }
            )
        )
    return pl.concat(out).sort("source", "origin", "ticker")
