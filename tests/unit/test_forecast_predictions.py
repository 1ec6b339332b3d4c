import datetime as dt
import os
import sys
import warnings
from functools import partial

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from model_code.features.synthetic import synthetic_bars
from model_code.forecasting import catalog
from model_code.forecasting.base import FitDiagnostics, FitFailed, gaussian_forecast
from model_code.forecasting.batch import forecast_universe
from model_code.forecasting.predictions import (
    ensemble_frame,
    fit_log_frame,
    forecast_as_of,
    predictions_frame,
    return_series,
    target_dates,
)
from tests.processes import stderr_of_fresh_interpreter

MODELS = catalog.select(["arima", "garch"])


class RefusingModel:
    """A model whose every fit fails with a reason; module-level so worker processes unpickle it."""

    name = "refuses"

    def fit(self, returns):
        raise FitFailed(f"refuses: will not fit {len(returns)} returns")

    def forecast(self, horizons=(1,)):  # pragma: no cover - never reached
        return []


class NoisyModel:
    """Fits (the sample std as a flat forecast) while warning and writing to stderr, as a careless
    library would, and records the process it ran in."""

    name = "noisy"

    def fit(self, returns):
        warnings.warn(f"noisy: planted warning from worker pid {os.getpid()}", UserWarning, stacklevel=1)
        print(f"noisy: planted line from worker pid {os.getpid()}", file=sys.stderr, flush=True)
        self.sd = float(np.std(returns))
        return FitDiagnostics(model=self.name, n_obs=len(returns), params={"pid": os.getpid()})

    def forecast(self, horizons=(1,)):
        return [gaussian_forecast(self.name, h, 0.0, self.sd * np.sqrt(h)) for h in horizons]


def _bars():
    return synthetic_bars(3, 400, seed=7)


FULL_BARS = synthetic_bars(4, 400, seed=7)
EVERY_MODEL = catalog.select(list(catalog.ALL_MODELS))
PANEL_MODELS = {"mssa_rl": partial(catalog.PANEL_FORECASTERS["mssa_rl"], n_episodes=3)}


@settings(max_examples=6, deadline=None)
@given(
    t_index=st.integers(320, 398),
    cut_tickers=st.lists(st.integers(0, 3), min_size=1, max_size=4, unique=True),
    drop_after=st.integers(0, 60),
)
def test_forecasts_at_t_ignore_everything_after_t(t_index, cut_tickers, drop_after):
    """Property: for a random as_of T, removing any later bars (of some or all tickers) leaves
    every model's forecast made at T, the panel model's included, exactly unchanged."""
    dates = FULL_BARS["date"].unique().sort()
    as_of = dates[t_index]
    names = FULL_BARS["ticker"].unique().sort()
    cut = [names[i] for i in cut_tickers]
    last_kept = dates[min(t_index + drop_after, dates.len() - 1)] if drop_after else as_of
    truncated = FULL_BARS.filter(~pl.col("ticker").is_in(cut) | (pl.col("date") <= last_kept))
    kwargs = {"min_history": 250, "history": 300, "workers": 1, "panel_models": PANEL_MODELS}
    full, dates_h = forecast_as_of(FULL_BARS, as_of, EVERY_MODEL, **kwargs)
    part, _ = forecast_as_of(truncated, as_of, EVERY_MODEL, **kwargs)
    a, b = predictions_frame(full, as_of, dates_h), predictions_frame(part, as_of, dates_h)
    assert set(a["model"]) == set(catalog.ALL_MODELS) and a["ticker"].n_unique() == 4
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
    models = {**catalog.select([]), "refuses": RefusingModel}
    results, dates = forecast_as_of(bars, as_of, models, min_history=10, history=300, workers=2)
    log = fit_log_frame(results, as_of)
    assert log.height == 3 * 3 and log["ticker"].n_unique() == 3
    failed = log.filter(pl.col("status") == "failed")
    assert failed["model"].to_list() == ["refuses"] * 3
    assert set(failed["error"]) == {"refuses: will not fit 300 returns"}
    assert failed.select("n_obs", "warnings", "fit_seconds", "params").null_count().row(0) == (3, 3, 3, 3)
    ok = log.filter(pl.col("status") == "ok")
    assert set(ok["model"]) == {"random_walk", "drift"} and ok["error"].null_count() == ok.height
    preds = predictions_frame(results, as_of, dates)
    assert set(preds["model"]) == {"random_walk", "drift"}  # a failed fit forecasts nothing
    equal, w0 = ensemble_frame(
        preds,
        pl.DataFrame(schema={"model": pl.String, "horizon": pl.Int32, "mse": pl.Float64, "n": pl.Int64}),
    )
    assert set(w0["weight"]) == {0.5} and set(w0["model"]) == {"random_walk", "drift"}
    assert equal.height == 3 * 4
    losses = pl.DataFrame(
        {"model": ["random_walk", "drift"], "horizon": [1, 1], "mse": [1.0, 4.0], "n": [10, 10]}
    )
    _, w1 = ensemble_frame(preds, losses)
    h1 = dict(w1.filter(pl.col("horizon") == 1).select("model", "weight").iter_rows())
    assert h1["random_walk"] > h1["drift"] and abs(sum(h1.values()) - 1) < 1e-12


def forecast_every_model() -> None:
    """Every model, worker processes included, on synthetic bars (run in a fresh interpreter)."""
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
    assert set(log["model"]) == set(names), log


def forecast_with_a_noisy_worker() -> None:
    """:class:`NoisyModel` fitted in worker processes only (run in a fresh interpreter)."""
    series = {f"T{i}": np.random.default_rng(i).normal(0, 0.01, 50) for i in range(4)}
    results = forecast_universe(series, {"noisy": NoisyModel}, (1,), workers=2)
    fitted_in = {d.params["pid"] for r in results for d in r.diagnostics}
    assert fitted_in and os.getpid() not in fitted_in, fitted_in


def test_a_full_forecast_run_writes_nothing_to_stderr():
    """Warnings are counted in the fit log, never printed: not by the main process, not by a worker."""
    err = stderr_of_fresh_interpreter(f"{__name__}:forecast_every_model")
    assert err == "", err[-2000:]


def test_the_stderr_check_sees_what_a_worker_prints():
    """The check above can fail: a worker's warning and its raw stderr line both reach it."""
    err = stderr_of_fresh_interpreter(f"{__name__}:forecast_with_a_noisy_worker")
    assert "UserWarning: noisy: planted warning from worker pid" in err, err
    assert "noisy: planted line from worker pid" in err, err
