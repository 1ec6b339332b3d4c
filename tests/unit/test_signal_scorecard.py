"""The scorecard: net of costs, beside the universe's always-up rate of the same dates."""

import datetime as dt

import polars as pl
import pytest

from model_code.costs import TradingCosts
from model_code.signals.scorecard import calibration_table, scorecard

D1, D2 = dt.date(2019, 1, 2), dt.date(2019, 1, 3)


def _realized() -> pl.DataFrame:
    # D1: 4 tickers, 1 up; D2: 4 tickers, 3 up. The source buys one riser on each date.
    rows = [
        (D1, "A", "BUY", 0.6, 0.02),
        (D1, "B", "HOLD", 0.5, -0.01),
        (D1, "C", "HOLD", 0.5, -0.01),
        (D1, "D", "SELL", 0.7, -0.03),
        (D2, "A", "BUY", 0.6, 0.01),
        (D2, "B", "HOLD", 0.5, 0.01),
        (D2, "C", "HOLD", 0.5, 0.02),
        (D2, "D", "SELL", 0.7, -0.02),
    ]
    frame = pl.DataFrame(rows, schema=["origin", "ticker", "action", "confidence", "actual"], orient="row")
    return frame.with_columns(
        source=pl.when(pl.col("action") == "HOLD").then(pl.lit("none")).otherwise(pl.lit("ml"))
    )


def test_hit_rate_net_return_and_the_universe_baseline():
    card = scorecard(_realized()).filter(pl.col("source") == "ml")
    buy = card.filter(pl.col("action") == "BUY").row(0, named=True)
    drag = TradingCosts().round_trip_log
    assert buy["n"] == 2 and buy["hit_rate"] == 1.0 and buy["hit_rate_se"] == 0.0
    # the baseline is the universe on those dates (1/4 and 3/4 rose), not the BUY rows (all rose)
    assert buy["always_up_rate"] == pytest.approx(0.5)
    assert buy["mean_net_return"] == pytest.approx((0.02 + 0.01) / 2 - drag)
    assert buy["profit_factor"] is None  # no losing trade
    sell = card.filter(pl.col("action") == "SELL").row(0, named=True)
    assert sell["hit_rate"] == 1.0 and sell["mean_net_return"] == pytest.approx((0.03 + 0.02) / 2 - drag)


def test_costs_can_turn_a_right_call_into_a_loss_and_the_profit_factor_counts_it():
    frame = pl.DataFrame(
        {
            "origin": [D1, D1],
            "ticker": ["A", "B"],
            "action": ["BUY", "BUY"],
            "confidence": [0.6, 0.6],
            "actual": [0.001, -0.01],
            "source": ["ts", "ts"],
        }
    )
    row = scorecard(frame).row(0, named=True)
    assert row["hit_rate"] == 0.5 and row["mean_net_return"] < 0
    drag = TradingCosts().round_trip_log
    assert row["profit_factor"] == 0.0  # no trade made money after costs
    assert (0.001 - drag) < 0  # the right call lost money after costs


def test_calibration_bins_compare_predicted_and_realized():
    table = calibration_table(_realized())
    assert table.filter(pl.col("source") == "ml").select("bin_low", "n", "hit_rate").rows() == [
        (0.6, 2, 1.0),
        (0.7, 2, 1.0),
    ]
