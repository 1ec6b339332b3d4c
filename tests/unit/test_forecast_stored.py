"""Stored fits: a stored fit reproduces its own refit exactly, and applying fits is point in time."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model_code.forecasting import catalog
from model_code.forecasting.arima import Arima
from model_code.forecasting.base import FitState
from model_code.forecasting.mssa_rl import MssaRl, MssaRlTicker
from model_code.forecasting.panel import return_panel
from model_code.forecasting.stored import (
    RETRY_NOTE,
    FitStore,
    dated_return_series,
    failures,
    fits_frame,
    fits_from_frame,
    forecast_as_of_stored,
    load_arrays,
    refit_universe,
    save_artifacts,
)
from model_code.market_data.calendar import trading_calendar
from model_code.market_data.schema import conform_ohlcv

FIELDS = ("yhat", "lower_80", "upper_80", "lower_95", "upper_95", "vol_forecast")


def _garchy_returns(n: int, seed: int) -> np.ndarray:
    """Daily-return-like series: GARCH(1,1) variance, Student-t shocks, a little AR(1) and drift."""
    rng = np.random.default_rng(seed)
    r, var, prev = np.zeros(n), 1e-4, 0.0
    for t in range(n):
        shock = rng.standard_t(6) * np.sqrt(var * 4 / 6)
        r[t] = 3e-4 + 0.05 * prev + shock
        var = 2e-6 + 0.08 * shock**2 + 0.9 * var
        prev = r[t]
    return r


def _bars(tickers: list[str], n: int, seed: int = 0, start: dt.date = dt.date(2015, 1, 2)) -> pl.DataFrame:
    sessions = trading_calendar().sessions_in_range(start, start + dt.timedelta(days=2 * n))[:n]
    rows = []
    for k, ticker in enumerate(tickers):
        px = 50.0 * np.exp(np.cumsum(np.r_[0.0, _garchy_returns(n - 1, seed + k)]))
        for day, close in zip(sessions, px, strict=True):
            rows.append(
                {
                    "ticker": ticker,
                    "date": dt.date.fromisoformat(str(day)),
                    "open": close,
                    "high": close * 1.01,
                    "low": close * 0.99,
                    "close": close,
                    "adj_close": close,
                    "volume": 1e6,
                }
            )
    return conform_ohlcv(pl.DataFrame(rows), source="test", origin="test")


def _through_storage(state: FitState, tmp_path) -> FitState:
    """The state as it comes back from models.fits + its artifact (JSON params, npz arrays)."""
    from model_code.forecasting.stored import StoredFit

    fit = StoredFit(
        "T", state.model, dt.date(2019, 1, 2), dt.date(2019, 12, 31), dt.datetime(2020, 1, 1), state
    )
    back = fits_from_frame(fits_frame(save_artifacts([fit], tmp_path)))[0]
    assert not back.state.arrays
    return load_arrays(back, tmp_path)


def _same(a, b) -> None:
    assert [f.horizon for f in a] == [f.horizon for f in b]
    for fa, fb in zip(a, b, strict=True):
        for name in FIELDS:
            assert getattr(fa, name) == getattr(fb, name), (fa.model, fa.horizon, name)


@pytest.mark.parametrize("name", sorted(catalog.FORECASTERS))
def test_a_stored_fit_reproduces_the_full_refit_exactly_on_its_day(name, tmp_path):
    returns = _garchy_returns(900, seed=7)
    model = catalog.FORECASTERS[name]()
    model.fit(returns)
    want = model.forecast()
    state = _through_storage(model.state(), tmp_path)
    assert json.loads(json.dumps(state.params)) == state.params
    again = catalog.FORECASTERS[name]()
    again.load_state(state)
    again.update(returns, 0)
    _same(again.forecast(), want)


def test_a_stored_mssa_rl_fit_reproduces_the_panel_refit_exactly_for_every_ticker(tmp_path):
    bars = _bars(["A", "B", "C", "D", "E"], 700, seed=3)
    as_of = bars["date"].max()
    returns, tickers, _ = return_panel(bars, as_of, 600)
    model = MssaRl(n_episodes=4)
    model.fit(returns, tickers)
    want = model.forecast()
    states = model.states()
    assert {s.params["action"] for s in states.values()} <= {"keep", "refit_window", "fallback_ssa"}
    for i, ticker in enumerate(tickers):
        one = MssaRlTicker()
        one.load_state(_through_storage(states[ticker], tmp_path))
        one.update(returns[:, i], 0)
        _same(one.forecast(), want[ticker])


def test_arima_update_filters_new_returns_with_fixed_coefficients():
    # An AR fit: after the update the one-step forecast is mu + sum phi_i (y_{T+1-i} - mu) on
    # the *new* last returns, with the fit's coefficients (nothing re-estimated).
    rng = np.random.default_rng(11)
    returns = np.zeros(800)
    for t in range(1, 800):
        returns[t] = 0.002 + 0.35 * (returns[t - 1] - 0.002) + rng.normal(0, 0.01)
    model = Arima(max_q=0)
    model.fit(returns[:-10])
    coef = model.state().params["coef"]
    phis = [v for k, v in coef.items() if k.startswith("ar")]
    mu = coef.get("intercept", 0.0)
    assert phis and mu != 0.0
    stored = Arima()
    stored.load_state(model.state())
    stored.update(returns, 10)
    tail = returns[::-1][: len(phis)]
    expected = mu + sum(p * (y - mu) for p, y in zip(phis, tail, strict=True))
    assert stored.forecast([1])[0].yhat == pytest.approx(expected, abs=1e-14)
    assert model.forecast([1])[0].yhat != pytest.approx(expected, abs=1e-9)  # the update mattered


def test_garch_update_runs_the_variance_recursion_on_new_data_only():
    returns = _garchy_returns(900, seed=5)
    fitted = catalog.FORECASTERS["garch"]()
    fitted.fit(returns[:-5])
    stored = catalog.FORECASTERS["garch"]()
    stored.load_state(fitted.state())
    returns_later = returns.copy()
    returns_later[-1] *= 8.0  # a shock after the fit raises tomorrow's variance
    stored.update(returns_later, 5)
    assert stored.forecast([1])[0].vol_forecast > fitted.forecast([1])[0].vol_forecast
    assert stored.params_ == fitted.params_  # parameters fixed


# --------------------------------------------------------------------------- the policy

MODELS = ["arima", "samossa", "garch"]
BARS = _bars(["AAA", "BBB", "CCC"], 420, seed=21)
DATES = sorted(BARS["date"].unique().to_list())


def _store_every(step: int, first: int) -> FitStore:
    """Fits made every ``step`` sessions from session index ``first`` to the end (also after any T)."""
    store = FitStore()
    for i in range(first, len(DATES), step):
        made, errors = refit_universe(
            BARS,
            DATES[i],
            {m: ["AAA", "BBB", "CCC"] for m in [*catalog.BASELINES, *MODELS, "mssa_rl"]},
            catalog.select(MODELS),
            catalog.select_panel(["mssa_rl"]),
            history=300,
            min_history=252,
            workers=1,
        )
        assert not errors, errors
        for fit in made:
            store.add(fit)
    return store


STORE = _store_every(15, 300)


def _run(bars: pl.DataFrame, as_of: dt.date, store: FitStore, max_age: int = 21):
    return forecast_as_of_stored(
        bars,
        as_of,
        catalog.select(MODELS),
        store,
        home=Path("."),
        panel_models=catalog.select_panel(["mssa_rl"]),
        max_age=max_age,
        history=300,
        min_history=252,
        workers=1,
    )


def _frame(results) -> pl.DataFrame:
    rows = [
        {"ticker": r.ticker, "model": f.model, "horizon": f.horizon, **{k: getattr(f, k) for k in FIELDS}}
        for r in results
        for f in r.forecasts
    ]
    return pl.DataFrame(rows).sort("ticker", "model", "horizon")


@settings(max_examples=12, deadline=None)
@given(st.integers(min_value=300, max_value=len(DATES) - 2))
def test_forecasts_from_stored_fits_are_point_in_time(index):
    as_of = DATES[index]
    results, _, fresh = _run(BARS, as_of, STORE)
    truncated, _, fresh_truncated = _run(BARS.filter(pl.col("date") <= as_of), as_of, STORE)
    assert _frame(results).equals(_frame(truncated))  # bars after as_of change nothing
    assert not fresh and not fresh_truncated  # every fit was usable: none refitted
    for res in results:
        assert not res.errors
        for d in res.diagnostics:
            assert d.params["stored_fit"] is True
            assert dt.date.fromisoformat(d.params["fit_window_end"]) <= as_of  # never a later fit
            assert d.params["fit_age"] < 15


def test_no_fit_or_a_fit_past_its_maximum_age_is_fitted_on_first_sight_and_equals_a_refit():
    as_of = DATES[330]
    empty, _, fresh = _run(BARS, as_of, FitStore())
    assert {(f.ticker, f.model) for f in fresh} == {
        (t, m) for t in ("AAA", "BBB", "CCC") for m in [*catalog.BASELINES, *MODELS, "mssa_rl"]
    }
    assert all(f.window_end == as_of for f in fresh)
    # Applying those fresh fits on their own day gives the same forecasts as fitting them.
    reused, _, again = _run(BARS, as_of, FitStore(fresh))
    assert not again and _frame(reused).equals(_frame(empty))
    # 14 sessions later the store's fit (from DATES[315]) is used; with max_age 10 it is refitted.
    later = DATES[329]
    _, _, none = _run(BARS, later, STORE)
    assert not none
    _, _, refitted = _run(BARS, later, STORE, max_age=10)
    assert {f.window_end for f in refitted} == {later} and len(refitted) == 3 * 6


def test_refit_universe_fits_exactly_what_was_requested():
    as_of = DATES[320]
    made, errors = refit_universe(
        BARS,
        as_of,
        {"arima": ["AAA"], "mssa_rl": ["BBB"], "garch": ["NOPE"]},
        catalog.select(["arima", "garch"]),
        catalog.select_panel(["mssa_rl"]),
        history=300,
        min_history=252,
        workers=1,
    )
    assert sorted((f.ticker, f.model) for f in made) == [("AAA", "arima"), ("BBB", "mssa_rl")]
    assert list(errors) == [("NOPE", "garch")]
    series = dated_return_series(BARS, as_of, 300)
    fit = next(f for f in made if f.model == "arima")
    assert fit.window_end == as_of and fit.window_start == dt.date.fromisoformat(str(series["AAA"][1][0]))


def test_a_recently_failed_fit_is_left_to_the_scheduled_refit_not_retried_nightly():
    as_of = DATES[330]
    failed = {("AAA", "arima"), ("BBB", "mssa_rl")}
    results, _, fresh = _run_failed(as_of, failed)
    by = {r.ticker: r for r in results}
    assert RETRY_NOTE in by["AAA"].errors["arima"] and RETRY_NOTE in by["BBB"].errors["mssa_rl"]
    made = {(f.ticker, f.model) for f in fresh}
    assert ("AAA", "arima") not in made and ("BBB", "mssa_rl") not in made
    assert ("BBB", "arima") in made and ("AAA", "mssa_rl") in made
    assert failures(results) == failed
    # A usable stored fit is applied whatever failed before.
    results, _, _ = _run(BARS, DATES[329], STORE)
    again = forecast_as_of_stored(
        BARS,
        DATES[329],
        catalog.select(MODELS),
        STORE,
        home=Path("."),
        panel_models=catalog.select_panel(["mssa_rl"]),
        history=300,
        min_history=252,
        workers=1,
        failed=failed,
    )[0]
    assert _frame(again).equals(_frame(results))


def _run_failed(as_of, failed):
    return forecast_as_of_stored(
        BARS,
        as_of,
        catalog.select(MODELS),
        FitStore(),
        home=Path("."),
        panel_models=catalog.select_panel(["mssa_rl"]),
        history=300,
        min_history=252,
        workers=1,
        failed=failed,
    )


def test_walk_forward_stored_policy_equals_nightly_refits_on_refit_days_only():
    from model_code.evaluation.walk_forward import run_walk_forward

    cal = trading_calendar()
    ords = cal.session_index(np.array(DATES[300:], dtype="datetime64[D]"))
    on_grid = [d for d, o in zip(DATES[300:], ords, strict=True) if o % 5 == 0][:2]
    off_grid = [d for d, o in zip(DATES[300:], ords, strict=True) if o % 5 == 3][:2]
    kw = {"history": 300, "min_history": 252, "workers": 1, "panel_models": catalog.select_panel(["mssa_rl"])}
    origins = sorted(on_grid + off_grid)
    nightly = run_walk_forward(BARS, catalog.select(MODELS), origins, **kw)
    stored = run_walk_forward(BARS, catalog.select(MODELS), origins, policy="stored", refit_every=5, **kw)
    keys = ["origin", "ticker", "model", "horizon"]
    both = nightly.filter(pl.col("model") != "ensemble").join(
        stored.filter(pl.col("model") != "ensemble"), on=keys, suffix="_s"
    )
    assert both.height == nightly.filter(pl.col("model") != "ensemble").height > 0
    diff = (both["yhat"] - both["yhat_s"]).abs()
    same_day = both["origin"].is_in(on_grid)
    assert diff.filter(same_day).max() == 0.0  # refitted that day: exactly the nightly refit
    assert diff.filter(~same_day).max() > 0.0  # applied a fit from 3 sessions before
