"""How past signals did, once their horizon closed: per source and action, net of costs.

A signal made at ``as_of`` for ``horizon`` sessions is scored when its ``target_date`` has
closed and the ticker's realized return closed on that date (``fwd_ret_{h}``, log). Its net
return is ``direction * actual - round_trip_log`` for BUY (+1) and SELL (-1); HOLD rows are
counted but earn nothing. ``always_up_rate`` is, for the same rows, the share of the whole
scored universe that rose on their dates (each row weighted by its date): the hit rate of
buying everything on those days, the baseline a BUY source must beat. (A BUY row's own hit is
"its ticker rose", so comparing with its own rows would be no baseline at all.)
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl

from model_code.costs import TradingCosts
from model_code.forecasting.losses import attach_realized, targets_long

CALIBRATION_BINS = (0.5, 0.55, 0.6, 0.65, 0.7, 0.8, 1.0000001)
SCORE_SCHEMA: dict[str, pl.DataType] = {
    "source": pl.String(),
    "action": pl.String(),
    "n": pl.Int64(),
    "hit_rate": pl.Float64(),
    "hit_rate_se": pl.Float64(),
    "always_up_rate": pl.Float64(),
    "mean_net_return": pl.Float64(),
    "profit_factor": pl.Float64(),
    "mean_confidence": pl.Float64(),
}


def realized_signals(signals: pl.DataFrame, targets: pl.DataFrame, through: dt.date) -> pl.DataFrame:
    """Signals whose target closed on their ``target_date`` by ``through``, with ``actual``."""
    if signals.is_empty():
        return signals.with_columns(actual=pl.lit(None, dtype=pl.Float64))
    horizons = sorted(signals["horizon"].unique().to_list())
    out = attach_realized(signals.rename({"as_of": "origin"}), targets_long(targets, horizons))
    return out.filter((pl.col("target_date") <= through) & pl.col("actual").is_finite())


def scorecard(realized: pl.DataFrame, costs: TradingCosts | None = None) -> pl.DataFrame:
    """Per (source, action): n, hit rate ± s.e., always-up rate, mean net return, profit factor."""
    drag = (costs or TradingCosts()).round_trip_log
    direction = (
        pl.when(pl.col("action") == "BUY").then(1).when(pl.col("action") == "SELL").then(-1).otherwise(0)
    )
    market_up = realized.group_by("origin").agg((pl.col("actual") > 0).mean().alias("_up"))
    scored = (
        realized.join(market_up, on="origin", how="left")
        .with_columns(direction=direction)
        .with_columns(
            hit=(pl.col("direction") * pl.col("actual") > 0).cast(pl.Float64),
            net=pl.when(pl.col("direction") != 0)
            .then(pl.col("direction") * pl.col("actual") - drag)
            .otherwise(0.0),
        )
    )
    rows = []
    for (source, action), block in scored.group_by("source", "action", maintain_order=True):
        n = block.height
        trades = action != "HOLD"
        hit = float(block["hit"].mean()) if trades else None
        gains = float(block.filter(pl.col("net") > 0)["net"].sum())
        losses = -float(block.filter(pl.col("net") < 0)["net"].sum())
        rows.append(
            {
                "source": source,
                "action": action,
                "n": n,
                "hit_rate": hit,
                "hit_rate_se": math.sqrt(hit * (1 - hit) / n) if hit is not None else None,
                "always_up_rate": float(block["_up"].mean()),
                "mean_net_return": float(block["net"].mean()) if trades else None,
                "profit_factor": (gains / losses if losses > 0 else None) if trades else None,
                "mean_confidence": float(block["confidence"].mean()),
            }
        )
    return pl.DataFrame(rows, schema=SCORE_SCHEMA).sort("source", "action")


def calibration_table(realized: pl.DataFrame) -> pl.DataFrame:
    """Per source and confidence bin of BUY/SELL signals: n, mean predicted confidence, realized hit rate."""
    trades = realized.filter(pl.col("action").is_in(["BUY", "SELL"])).with_columns(
        hit=((pl.when(pl.col("action") == "BUY").then(1).otherwise(-1) * pl.col("actual")) > 0).cast(
            pl.Float64
        )
    )
    edges = np.array(CALIBRATION_BINS)
    rows = []
    for (source,), block in trades.group_by("source", maintain_order=True):
        conf = block["confidence"].to_numpy()
        hit = block["hit"].to_numpy()
        which = np.clip(np.searchsorted(edges, conf, side="right") - 1, 0, len(edges) - 2)
        for i in range(len(edges) - 1):
            inside = which == i
            if inside.any():
                rows.append(
                    {
                        "source": source,
                        "bin_low": float(edges[i]),
                        "bin_high": float(min(edges[i + 1], 1.0)),
                        "n": int(inside.sum()),
                        "mean_confidence": float(conf[inside].mean()),
                        "hit_rate": float(hit[inside].mean()),
                    }
                )
    schema = {
        "source": pl.String,
        "bin_low": pl.Float64,
        "bin_high": pl.Float64,
        "n": pl.Int64,
        "mean_confidence": pl.Float64,
        "hit_rate": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema).sort("source", "bin_low")
