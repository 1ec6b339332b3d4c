"""Rolling accuracy and decay (model_code/monitoring): hand-checkable synthetic forecasts."""


import numpy as np
import polars as pl
import pytest

from model_code.market_data.calendar import trading_calendar
from model_code.monitoring import (
    POOLED,
    DecaySettings,
    evaluate,
    listed_pairs,
    merge_requests,
    pairs_markdown,
    pairs_records,
    refit_request,
)
from tests import monitoring_cases

CAL = trading_calendar()
SESSIONS = monitoring_cases.SESSIONS
AS_OF = SESSIONS[-1]


_targets, _forecasts = monitoring_cases.targets, monitoring_cases.forecasts
_rw = monitoring_cases.random_walk


def _row(health, model, ticker, as_of=AS_OF):
    return health.filter(
        (pl.col("model") == model) & (pl.col("ticker") == ticker) & (pl.col("as_of") == as_of)
    ).row(0, named=True)


def test_a_wrong_way_model_decays_on_its_ticker_only_with_exact_ratios():
    targets = _targets(["AAA", "BBB"])
    forecasts = pl.concat(
        [_rw(targets, ["AAA", "BBB"]), _forecasts(targets, {("arima", "AAA"): -1.0, ("arima", "BBB"): 0.5})]
    )
    health = evaluate(forecasts, targets, [AS_OF], DecaySettings())
    bad, good = _row(health, "arima", "AAA"), _row(health, "arima", "BBB")
    assert bad["n"] == 63 and bad["window_start"] == CAL.window_start(AS_OF, 63)
    assert bad["hit_rate"] == 0.0 and bad["rmse_ratio"] == pytest.approx(2.0)
    assert good["hit_rate"] == 1.0 and good["rmse_ratio"] == pytest.approx(0.5)
    assert bad["decayed"] and bad["crossed"] and "hit rate 0.0 < 0.45" in bad["reason"]
    assert "RMSE ratio 2.0 > 1.1" in bad["reason"]
    assert not good["decayed"] and good["reason"] is None
    # The always-up rate is the share of rising targets in the window.
    window = targets.filter(
        (pl.col("ticker") == "AAA") & pl.col("target_date_1").is_between(bad["window_start"], AS_OF)
    )
    assert bad["up_rate"] == pytest.approx(float((window["fwd_ret_1"] > 0).mean()))
    # 80 % band of +-0.01 around yhat: arima on BBB misses by |0.5 actual|.
    in_window = pl.col("target_date_1").is_between(bad["window_start"], AS_OF)
    b = targets.filter((pl.col("ticker") == "BBB") & in_window)["fwd_ret_1"]
    assert good["coverage_80"] == pytest.approx(float(((0.5 * b).abs() <= 0.01).mean()))
    assert good["coverage_95"] is None
    a2, b2 = float((window["fwd_ret_1"] ** 2).sum()), float((b**2).sum())
    pooled = _row(health, "arima", POOLED)
    assert pooled["n"] == 126 and pooled["rmse_ratio"] == pytest.approx(
        np.sqrt((4 * a2 + 0.25 * b2) / (a2 + b2))
    )
    assert set(health["model"]) == {"arima"}  # the random walk is the yardstick, not judged
    assert refit_request(health) == {"statistical": {"arima": ["AAA"]}}


def test_too_few_observations_are_not_judged():
    targets = _targets(["AAA"])
    forecasts = pl.concat([_rw(targets, ["AAA"]), _forecasts(targets, {("arima", "AAA"): -1.0})])
    health = evaluate(forecasts, targets, [AS_OF], DecaySettings(window_sessions=10, min_observations=20))
    row = _row(health, "arima", "AAA")
    assert row["n"] == 10 and not row["judged"] and not row["decayed"]
    assert refit_request(health) == {}


def test_forecasts_not_realized_on_their_own_target_date_or_after_as_of_do_not_count():
    targets = _targets(["AAA"])
    forecasts = pl.concat([_rw(targets, ["AAA"]), _forecasts(targets, {("arima", "AAA"): 0.5})])
    as_of = SESSIONS[-10]
    health = evaluate(forecasts, targets, [as_of], DecaySettings())
    assert _row(health, "arima", "AAA", as_of)["n"] == 63  # targets after as_of are not seen
    # A forecast claiming a target date other than the realized one is not the quantity forecast.
    moved = forecasts.with_columns(
        target_date=pl.when(pl.col("origin") == SESSIONS[-20])
        .then(pl.lit(SESSIONS[-18]))
        .otherwise("target_date")
    )
    assert _row(evaluate(moved, targets, [as_of], DecaySettings()), "arima", "AAA", as_of)["n"] == 62


def test_a_pair_that_stays_decayed_crosses_once():
    targets = _targets(["AAA"])
    forecasts = pl.concat([_rw(targets, ["AAA"]), _forecasts(targets, {("arima", "AAA"): -1.0})])
    health = evaluate(forecasts, targets, SESSIONS[-3:], DecaySettings())
    arima = health.filter((pl.col("model") == "arima") & (pl.col("ticker") == "AAA")).sort("as_of")
    assert arima["decayed"].to_list() == [True, True, True]
    assert arima["crossed"].to_list() == [True, False, False]
    stored = health.filter(pl.col("as_of") == SESSIONS[-3]).select("model", "ticker", "horizon", "decayed")
    again = evaluate(forecasts, targets, SESSIONS[-2:-1], DecaySettings(), previous=stored)
    assert not _row(again, "arima", "AAA", SESSIONS[-2])["crossed"]
    assert refit_request(again) == {} and refit_request(again, crossed_only=False) == {
        "statistical": {"arima": ["AAA"]}
    }


def test_ml_models_are_judged_pooled_against_the_random_walk_and_apart_from_statistical_gaps():
    targets = _targets(["AAA", "BBB"])
    ml = _forecasts(targets, {("lgbm", "AAA"): -1.0, ("lgbm", "BBB"): -1.0}, family="ml")
    forecasts = pl.concat(
        [
            _rw(targets, ["AAA", "BBB"]),
            # arima forecast only half the sessions: that must not thin the ML keys.
            _forecasts(targets, {("arima", "AAA"): 0.5}).filter(pl.col("origin").dt.day() % 2 == 0),
            ml,
        ]
    )
    health = evaluate(forecasts, targets, [AS_OF], DecaySettings())
    lgbm = _row(health, "lgbm", POOLED)
    assert lgbm["family"] == "ml" and lgbm["n"] == 126 and lgbm["rmse_ratio"] == pytest.approx(2.0)
    listed = listed_pairs(health)
    assert listed.select("family", "model", "ticker").rows() == [("ml", "lgbm", POOLED)]
    assert refit_request(health) == {"ml": {"lgbm": [1]}}
    records = pairs_records(listed)
    assert records[0]["model"] == "lgbm" and records[0]["rmse_ratio"] == 2.0
    assert "| ml | lgbm | * | 1 |" in pairs_markdown(listed)
    assert pairs_markdown(listed.clear()) == "no model has decayed"


def test_refit_requests_merge_without_duplicates():
    merged = merge_requests(
        [
            {"statistical": {"arima": ["B", "A"]}},
            {"statistical": {"arima": ["A"], "garch": ["C"]}, "ml": {"lgbm": [5]}},
        ]
    )
    assert merged == {"ml": {"lgbm": [5]}, "statistical": {"arima": ["A", "B"], "garch": ["C"]}}
