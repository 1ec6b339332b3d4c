import datetime as dt

import polars as pl

from model_code.features.synthetic import synthetic_bars
from model_code.forecasting import catalog
from model_code.forecasting.predictions import (
    ensemble_frame,
    fit_log_frame,
    forecast_as_of,
    predictions_frame,
    return_series,
    target_dates,
)

MODELS = catalog.select(["arima", "garch"])


def _bars():
    return synthetic_bars(3, 400, seed=7)


def test_forecasts_at_t_ignore_everything_after_t():
    bars = _bars()
    as_of = bars["date"].unique().sort()[350]
    full, dates = forecast_as_of(bars, as_of, MODELS, min_history=200, workers=1)
    cut, _ = forecast_as_of(bars.filter(pl.col("date") <= as_of), as_of, MODELS, min_history=200, workers=1)
    a, b = predictions_frame(full, as_of, dates), predictions_frame(cut, as_of, dates)
    assert a.height == 3 * 4 * 4  # tickers x models (2 + 2 baselines) x horizons
    assert a.drop("fit_seconds").equals(b.drop("fit_seconds"))
    assert (a["target_date"] > as_of).all()


def test_target_dates_count_sessions():
    dates = target_dates(dt.date(2019, 12, 20), (1, 5))
    assert dates == {1: dt.date(2019, 12, 23), 5: dt.date(2019, 12, 30)}  # Christmas is skipped


def test_return_series_skips_tickers_without_a_bar_on_as_of():
    bars = _bars()
    as_of = bars["date"].sort()[-1]
    stale = bars.filter((pl.col("ticker") != bars["ticker"][0]) | (pl.col("date") < as_of))
    assert len(return_series(stale, as_of, 100)) == 2


def test_failures_are_logged_and_ensemble_weights_follow_losses():
    bars = _bars()
    as_of = bars["date"].sort()[-1]
    results, dates = forecast_as_of(bars, as_of, catalog.select([]), min_history=10, workers=1)
    log = fit_log_frame(results, as_of)
    assert set(log["status"]) == {"ok"} and log.height == 3 * 2
    preds = predictions_frame(results, as_of, dates)
    equal, w0 = ensemble_frame(
        preds,
        pl.DataFrame(schema={"model": pl.String, "horizon": pl.Int32, "mse": pl.Float64, "n": pl.Int64}),
    )
    assert set(w0["weight"]) == {0.5} and equal.height == 3 * 4
    losses = pl.DataFrame(
        {"model": ["random_walk", "drift"], "horizon": [1, 1], "mse": [1.0, 4.0], "n": [10, 10]}
    )
    _, w1 = ensemble_frame(preds, losses)
    h1 = dict(w1.filter(pl.col("horizon") == 1).select("model", "weight").iter_rows())
    assert h1["random_walk"] > h1["drift"] and abs(sum(h1.values()) - 1) < 1e-12


def test_a_full_forecast_run_writes_no_warning_to_stderr(capfd):
    """Every model, worker processes included: warnings are counted in the fit log, never printed."""
    bars = synthetic_bars(4, 420, seed=11)
    as_of = bars["date"].unique().sort()[-1]
    names = list(catalog.ALL_MODELS)
    results, _ = forecast_as_of(
        bars,
        as_of,
        catalog.select(names),
        min_history=250,
        history=400,
        workers=2,
        panel_models=catalog.select_panel(names),
    )
    log = fit_log_frame(results, as_of)
    assert set(log["model"]) == set(names)
    _, err = capfd.readouterr()
    assert "warning" not in err.lower(), err[-2000:]
