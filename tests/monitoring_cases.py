"""Synthetic targets and forecasts whose accuracy is known by construction (monitoring tests)."""

import datetime as dt

import numpy as np
import polars as pl

from model_code.horizons import HORIZONS
from model_code.market_data.calendar import trading_calendar

SESSIONS = trading_calendar().session_dates(dt.date(2019, 1, 2), dt.date(2019, 6, 28))


def targets(tickers, seed=0, sessions=SESSIONS) -> pl.DataFrame:
    """features.targets-shaped rows with 1-session targets only (other horizons NULL)."""
    rng = np.random.default_rng(seed)
    rows = []
    for t in tickers:
        for i, day in enumerate(sessions[:-1]):
            row = {
                "ticker": t,
                "date": day,
                "target_date_1": sessions[i + 1],
                "fwd_ret_1": float(rng.normal(0, 0.01)),
            }
            for h in HORIZONS[1:]:
                row[f"target_date_{h}"], row[f"fwd_ret_{h}"] = None, None
            rows.append(row)
    schema = {"ticker": pl.String, "date": pl.Date}
    for h in HORIZONS:
        schema |= {f"target_date_{h}": pl.Date, f"fwd_ret_{h}": pl.Float64}
    return pl.DataFrame(rows, schema=schema)


def forecasts(
    targets: pl.DataFrame, rules: dict[tuple[str, str], float], family="statistical"
) -> pl.DataFrame:
    """yhat = factor * actual for each (model, ticker) rule, an 80 % band of +-0.01 around yhat;
    columns of the monitoring query (``origin`` ... ``family``)."""
    parts = []
    for (model, ticker), factor in rules.items():
        own = targets.filter(pl.col("ticker") == ticker)
        parts.append(
            own.select(
                pl.col("date").alias("origin"),
                "ticker",
                pl.lit(model).alias("model"),
                pl.lit(1, dtype=pl.Int32).alias("horizon"),
                pl.col("target_date_1").alias("target_date"),
                (pl.col("fwd_ret_1") * factor).alias("yhat"),
                pl.lit(family).alias("family"),
            )
        )
    return pl.concat(parts).with_columns(
        lower_80=pl.col("yhat") - 0.01,
        upper_80=pl.col("yhat") + 0.01,
        lower_95=pl.lit(None, dtype=pl.Float64),
        upper_95=pl.lit(None, dtype=pl.Float64),
    )


def random_walk(targets: pl.DataFrame, tickers) -> pl.DataFrame:
    return forecasts(targets, {("random_walk", t): 0.0 for t in tickers})
