"""Freshness, fit and model age, and the monitoring settings file (model_code/monitoring)."""

import datetime as dt

import polars as pl
import pytest

from model_code.monitoring import DecaySettings, freshness, load_monitoring_settings, ml_age, statistical_age
from model_code.monitoring.settings import DEFAULT_PATH

AS_OF = dt.date(2019, 1, 8)  # Tuesday


def test_freshness_counts_sessions_not_days_and_flags_missing_bars():
    last = pl.DataFrame(
        {
            "ticker": ["NOW", "FRI", "OLD", "NONE"],
            "last_date": [AS_OF, dt.date(2019, 1, 4), dt.date(2018, 12, 24), None],
        }
    )
    out = freshness(last, AS_OF, stale_after_sessions=5)
    got = {r["ticker"]: (r["sessions_behind"], r["stale"]) for r in out.iter_rows(named=True)}
    # 2018-12-24 -> 2019-01-08: 26, 27, 28, 31 Dec, 2, 3, 4, 7, 8 Jan (25 Dec and 1 Jan closed).
    assert got == {"NOW": (0, False), "FRI": (2, False), "OLD": (9, True), "NONE": (None, True)}


def test_statistical_age_without_stored_fits_is_the_nightly_refit():
    predicted = pl.DataFrame({"ticker": ["AAA", "AAA"], "model": ["arima", "garch"]})
    out = statistical_age(predicted, None, AS_OF)
    assert out["source"].to_list() == ["nightly_refit"] * 2 and out["age_sessions"].to_list() == [0, 0]
    assert out["horizon"].to_list() == [0, 0] and out["window_end"].to_list() == [AS_OF, AS_OF]


def test_statistical_age_uses_the_latest_fit_ending_by_as_of():
    predicted = pl.DataFrame({"ticker": ["AAA", "BBB"], "model": ["arima", "arima"]})
    fits = pl.DataFrame(
        {
            "ticker": ["AAA", "AAA", "AAA"],
            "model": ["arima"] * 3,
            "fitted_at": [
                dt.datetime(2019, 1, 2, 22),
                dt.datetime(2019, 1, 4, 22),
                dt.datetime(2019, 1, 9, 22),
            ],
            "window_end": [
                dt.date(2019, 1, 2),
                dt.date(2019, 1, 4),
                dt.date(2019, 1, 9),
            ],  # the last: after as_of
        }
    )
    out = statistical_age(predicted, fits, AS_OF).sort("ticker")
    aaa, bbb = out.row(0, named=True), out.row(1, named=True)
    assert aaa["source"] == "models.fits" and aaa["window_end"] == dt.date(2019, 1, 4)
    assert aaa["age_sessions"] == 2 and aaa["age_days"] == pytest.approx(4 + 2 / 24 - 1 / 86400, abs=1e-6)
    assert bbb["source"] == "no_stored_fit" and bbb["age_sessions"] is None


def test_ml_age_names_the_champion_by_its_prediction_model():
    champions = pl.DataFrame(
        {
            "family": ["lgbm_regressor"],
            "horizon": [5],
            "model_id": ["m1"],
            "trained_at": [dt.datetime(2019, 1, 5, 6)],
            "train_end": [dt.date(2018, 12, 31)],
        }
    )
    row = ml_age(champions, AS_OF).row(0, named=True)
    assert (row["model"], row["ticker"], row["horizon"], row["source"]) == ("lgbm", "*", 5, "models.registry")
    assert row["age_sessions"] == 5  # 2, 3, 4, 7, 8 Jan


def test_shipped_settings_file_holds_the_defaults(tmp_path):
    settings = load_monitoring_settings(DEFAULT_PATH)
    assert settings.decay == DecaySettings() and settings.decay.min_hit_rate == 0.45
    assert (settings.decay.max_rmse_ratio, settings.decay.window_sessions) == (1.1, 63)
    path = tmp_path / "m.yaml"
    path.write_text("decay:\n  min_hit_rate: 0.5\n")
    assert load_monitoring_settings(path).decay.min_hit_rate == 0.5
    path.write_text("decay:\n  min_hit_rat: 0.5\n")
    with pytest.raises(ValueError, match="unknown key"):
        load_monitoring_settings(path)
    path.write_text("decay:\n  window_sessions: 6.5\n")
    with pytest.raises(ValueError, match="window_sessions"):
        load_monitoring_settings(path)
    path.write_text("freshness:\n  stale_after_sessions: -1\n")
    with pytest.raises(ValueError, match="stale_after_sessions"):
        load_monitoring_settings(path)
