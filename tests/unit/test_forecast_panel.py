"""Whole-universe (panel) models inside the per-session forecast: alignment, failures, look-ahead."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from model_code.features.synthetic import synthetic_bars
from model_code.forecasting import catalog
from model_code.forecasting.base import FitFailed
from model_code.forecasting.panel import forecast_panel, merge_results, return_panel
from model_code.forecasting.predictions import fit_log_frame, forecast_as_of, predictions_frame

PANEL = {"mssa_rl": lambda: catalog.PANEL_FORECASTERS["mssa_rl"](n_episodes=3)}


def _bars() -> pl.DataFrame:
    return synthetic_bars(4, 420, seed=3)


def test_return_panel_aligns_dates_and_skips_tickers_with_gaps():
    bars = _bars()
    dates = bars["date"].unique().sort()
    as_of = dates[400]
    gappy = bars["ticker"].unique().sort()[1]
    holed = bars.filter(~((pl.col("ticker") == gappy) & (pl.col("date") == dates[390])))
    panel, tickers, skipped = return_panel(holed, as_of, 250)
    assert panel.shape == (250, 3) and gappy not in tickers and set(skipped) == {gappy}
    assert "every one of the last 250 sessions" in skipped[gappy]
    wide = bars.sort("date").filter(pl.col("ticker") == tickers[0]).filter(pl.col("date") <= as_of)
    expected = np.diff(np.log(wide["adj_close"].to_numpy()))[-250:]
    np.testing.assert_allclose(panel[:, 0], expected)
    empty, none, why = return_panel(bars, dates[100], 250)
    assert empty.size == 0 and not none and all("needs 250" in v for v in why.values())
    shorter, kept, _ = return_panel(bars, dates[150], 250, min_history=120)
    assert shorter.shape == (150, 4) and len(kept) == 4


def test_panel_forecasts_join_the_per_ticker_results_and_ignore_the_future():
    bars = _bars()
    as_of = bars["date"].unique().sort()[400]
    kwargs = {"min_history": 200, "history": 300, "workers": 1, "panel_models": PANEL}
    full, dates = forecast_as_of(bars, as_of, catalog.select([]), **kwargs)
    cut, _ = forecast_as_of(bars.filter(pl.col("date") <= as_of), as_of, catalog.select([]), **kwargs)
    a, b = predictions_frame(full, as_of, dates), predictions_frame(cut, as_of, dates)
    assert set(a["model"]) == {"random_walk", "drift", "mssa_rl"}
    assert a.filter(pl.col("model") == "mssa_rl").height == 4 * 4  # tickers x horizons
    assert a.drop("fit_seconds").equals(b.drop("fit_seconds"))
    log = fit_log_frame(full, as_of).filter(pl.col("model") == "mssa_rl")
    assert log["status"].to_list() == ["ok"] * 4
    assert all('"panel_fit_seconds"' in p and '"action"' in p for p in log["params"])


def test_a_failing_panel_fit_is_recorded_for_every_ticker_and_spares_the_rest():
    class Broken:
        name = "broken"

        def fit(self, returns, tickers):
            raise FitFailed("broken: singular panel")

    out = forecast_panel("broken", Broken, np.zeros((10, 2)), ["A", "B"], {"C": "gap"})
    errors = {r.ticker: r.errors["broken"] for r in out}
    assert errors == {"A": "broken: singular panel", "B": "broken: singular panel", "C": "broken: gap"}
    merged = merge_results(out, out)
    assert [r.ticker for r in merged] == ["A", "B", "C"]


def test_catalog_splits_per_ticker_and_panel_models():
    assert "mssa_rl" in catalog.ALL_MODELS and "mssa_rl" not in catalog.select(["mssa_rl", "arima"])
    assert list(catalog.select_panel(["mssa_rl", "arima"])) == ["mssa_rl"]
    with pytest.raises(ValueError, match="unknown forecaster"):
        catalog.select_panel(["nope"])
