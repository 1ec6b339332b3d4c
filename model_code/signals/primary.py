"""The router's ``primary: governance``: whether the ML champion or the time-series ensemble is
asked first, decided by the governance gate (:mod:`model_code.governance`) on their records.

At an as_of close, each source's record is built from its stored forecasts at the trading
horizon whose targets are realized by then (``target_date <= as_of``), on the origins and
tickers both sources forecast:

* the **loss** of an origin is the mean squared error of ``yhat`` against the realized h-session
  log return ``fwd_ret_h`` over the tickers both forecast (log return squared);
* the **strategy** is long the top quintile of ``yhat``, equal weight, daily, on the next
  session's simple return (:func:`~model_code.governance.top_quantile_returns`); the DSR of each
  counts the two sources as the trials.

``ts`` is the incumbent. Unless ML is primary already, ML must clear the promotion gate against
ts (``promote``: ML becomes primary; ``refuse``: ts stays). When ML is primary (the latest
router decision left it so) it is checked for reversion against ts (``revert`` to ts, or
``keep``). Without realized ML forecasts to judge the router ``abstain``s and ts stays. The
decision is logged to ``models.decisions`` with family ``router``. No Dagster imports here.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import polars as pl

from model_code.governance import (
    Decision,
    GateSettings,
    build_record,
    promotion,
    record_summary,
    reversion,
    strategy_sharpe,
    top_quantile_returns,
)

CHALLENGER, INCUMBENT = "ml", "ts"


def source_tracks(inputs: pl.DataFrame, targets: pl.DataFrame, horizon: int, as_of: dt.date) -> pl.DataFrame:
    """``(origin, source, loss, ret)``: each source's per-origin loss and strategy return on the
    origins and tickers both forecast, realized by ``as_of`` (see module docs).

    ``inputs``: ``@signal_inputs`` rows (``source, origin, ticker, yhat, target_date``);
    ``targets``: ``features.targets`` rows with ``fwd_ret_{horizon}`` (and ``fwd_ret_1``).
    """
    y = f"fwd_ret_{horizon}"
    nxt = pl.col("fwd_ret_1") if "fwd_ret_1" in targets.columns else pl.col(y) / horizon
    realized = targets.select(
        "ticker",
        pl.col("date").cast(pl.Date).alias("origin"),
        pl.col(y).alias("actual"),
        (nxt.exp() - 1.0).alias("ret"),
    )
    rows = (
        inputs.filter(
            pl.col("source").is_in([CHALLENGER, INCUMBENT])
            & (pl.col("target_date") <= as_of)
            & (pl.col("origin") < as_of)
        )
        .select("source", pl.col("origin").cast(pl.Date), "ticker", "yhat")
        .join(realized, on=["origin", "ticker"], how="inner")
        .filter(pl.col("actual").is_finite() & pl.col("ret").is_finite() & pl.col("yhat").is_finite())
    )
    both = rows.filter(pl.col("source").n_unique().over("origin", "ticker") == 2)
    empty = pl.DataFrame(
        schema={"origin": pl.Date, "source": pl.String, "loss": pl.Float64, "ret": pl.Float64}
    )
    if both.height == 0:
        return empty
    loss = both.group_by("origin", "source").agg(
        ((pl.col("yhat") - pl.col("actual")) ** 2).mean().alias("loss")
    )
    strat = []
    for (source,), part in both.group_by("source"):
        strat.append(
            top_quantile_returns(part.rename({"origin": "date"}), score="yhat", ret="ret")
            .rename({"date": "origin"})
            .with_columns(source=pl.lit(source))
        )
    return loss.join(pl.concat(strat), on=["origin", "source"], how="left").sort("origin", "source")


def decide_primary(
    inputs: pl.DataFrame,
    targets: pl.DataFrame,
    horizon: int,
    as_of: dt.date,
    *,
    ml_is_primary: bool = False,
    settings: GateSettings | None = None,
) -> tuple[Decision, dict[str, Any]]:
    """The router decision at the close of ``as_of`` and the context logged with its evidence."""
    tracks = source_tracks(inputs, targets, horizon, as_of)
    origins = sorted(set(tracks["origin"].to_list()))
    context: dict[str, Any] = {
        "as_of": as_of,
        "origins": len(origins),
        "window_start": origins[0] if origins else None,
        "window_end": origins[-1] if origins else None,
    }
    if not origins:
        why = "no realized ml forecasts beside ts ones to judge ml by"
        action = "keep" if ml_is_primary else "abstain"
        subject = CHALLENGER if ml_is_primary else "none"
        return Decision(action, subject, INCUMBENT, (why,)), context
    grid = pl.DataFrame({"origin": origins}, schema={"origin": pl.Date})
    per = {
        s: grid.join(tracks.filter(pl.col("source") == s), on="origin", how="left")
        for s in (CHALLENGER, INCUMBENT)
    }
    sharpes = [strategy_sharpe(per[s]["ret"].drop_nulls().to_numpy()) for s in per]
    recs = {
        s: build_record(
            s,
            per[s]["loss"].fill_null(np.nan).to_numpy(),
            per[s]["ret"].fill_null(np.nan).to_numpy(),
            trial_sharpes=[x for x, other in zip(sharpes, per, strict=True) if other != s],
            horizon_steps=horizon,
        )
        for s in per
    }
    for s, rec in recs.items():
        context |= {f"{s}_{k}": v for k, v in record_summary(rec).items()}
    if ml_is_primary:
        return reversion(recs[CHALLENGER], recs[INCUMBENT], settings), context
    return promotion(recs[CHALLENGER], recs[INCUMBENT], settings), context
