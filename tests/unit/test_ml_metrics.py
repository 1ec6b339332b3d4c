"""Per-date out-of-sample metrics: IC, rank IC, their summary, hit rate and quantile spread."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest

from model_code.ml.metrics import (
    daily_ic,
    daily_rank_ic,
    hit_rate,
    ic_summary,
    quantile_spread,
    quantile_spread_by_date,
)


def toy(n_dates: int = 120, n_names: int = 50, *, signal: float = 0.0, seed: int = 0) -> pl.DataFrame:
    """label = signal * pred + noise, per date; pred standard normal."""
    rng = np.random.default_rng(seed)
    dates = np.repeat(np.datetime64("2020-01-01") + np.arange(n_dates), n_names)
    pred = rng.standard_normal(n_dates * n_names)
    label = signal * pred + rng.standard_normal(n_dates * n_names)
    return pl.DataFrame({"date": dates, "pred": pred, "label": label})


def test_ic_of_a_perfect_predictor_is_one() -> None:
    frame = toy().with_columns((pl.col("pred") * 0.01 + 0.002).alias("label"))
    ic = daily_ic(frame, "pred", "label")
    assert ic.columns == ["date", "ic", "n"] and ic.height == 120
    assert np.allclose(ic["ic"].to_numpy(), 1.0)
    assert (ic["n"] == 50).all() and ic["date"].is_sorted()
    assert ic_summary(ic["ic"])["mean"] == pytest.approx(1.0)
    assert np.allclose(daily_rank_ic(frame, "pred", "label")["ic"].to_numpy(), 1.0)


def test_ic_of_noise_is_near_zero() -> None:
    s = ic_summary(daily_ic(toy(250, 100, seed=1), "pred", "label")["ic"])
    # Per-date IC of 100 independent names has s.d. ~ 0.1; the mean over 250 dates ~ 0.0063.
    assert s["n"] == 250 and abs(s["mean"]) < 0.025 and abs(s["t_stat"]) < 4
    assert 0.07 < s["std"] < 0.13
    r = ic_summary(daily_rank_ic(toy(250, 100, seed=2), "pred", "label")["ic"])
    assert abs(r["mean"]) < 0.025


def test_rank_ic_is_invariant_to_monotone_transforms() -> None:
    frame = toy(40, 30, signal=0.3, seed=3).with_columns(
        pl.col("pred").exp().alias("p_exp"), (pl.col("pred") ** 3 * 5 - 2).alias("p_cube")
    )
    base = daily_rank_ic(frame, "pred", "label")["ic"].to_numpy()
    for col in ("p_exp", "p_cube"):
        assert np.allclose(daily_rank_ic(frame, col, "label")["ic"].to_numpy(), base)
    assert not np.allclose(
        daily_ic(frame, "p_cube", "label")["ic"].to_numpy(), daily_ic(frame, "pred", "label")["ic"].to_numpy()
    )
    nonlinear = frame.with_columns(pl.col("pred").exp().alias("label"))
    assert np.allclose(daily_rank_ic(nonlinear, "pred", "label")["ic"].to_numpy(), 1.0)


def test_ic_drops_undefined_dates_and_bad_rows() -> None:
    d1, d2, d3 = dt.date(2020, 1, 1), dt.date(2020, 1, 2), dt.date(2020, 1, 3)
    frame = pl.DataFrame(
        {
            "date": [d1, d1, d1, d1, d2, d2, d2, d3],
            "pred": [1.0, 2.0, 3.0, float("nan"), 1.0, 1.0, 1.0, 5.0],
            "label": [0.1, 0.2, 0.4, 9.0, 0.1, 0.2, 0.3, None],
        }
    )
    ic = daily_ic(frame, "pred", "label")
    assert ic["date"].to_list() == [d1] and ic["n"].to_list() == [3]  # d2 constant pred, d3 one row
    assert ic["ic"][0] == pytest.approx(np.corrcoef([1, 2, 3], [0.1, 0.2, 0.4])[0, 1])


def test_ic_summary_formula() -> None:
    x = np.array([0.05, -0.01, 0.03, 0.02, np.nan, 0.04])
    s = ic_summary(x)
    v = x[~np.isnan(x)]
    assert s["n"] == 5 and s["mean"] == pytest.approx(v.mean()) and s["std"] == pytest.approx(v.std(ddof=1))
    assert s["icir"] == pytest.approx(v.mean() / v.std(ddof=1))
    assert s["t_stat"] == pytest.approx(v.mean() / v.std(ddof=1) * math.sqrt(5))
    one = ic_summary([0.1])
    assert one["n"] == 1 and math.isnan(one["std"]) and math.isnan(one["t_stat"])
    assert math.isnan(ic_summary([0.1, 0.1])["icir"])


def test_hit_rate_and_standard_error() -> None:
    pred = [1.0, -2.0, 0.5, 0.3, -0.1, 2.0, 0.0, 1.0, float("nan")]
    label = [0.2, -0.1, -0.3, 0.0, 0.4, 0.1, 0.2, 1.0, 1.0]
    # Zero label (index 3) and NaN pred (8) are ignored: 7 rows; hits at 0, 1, 5, 7; zero pred misses.
    rate, se = hit_rate(pred, label)
    assert rate == pytest.approx(4 / 7)
    assert se == pytest.approx(math.sqrt(4 / 7 * 3 / 7 / 7))
    rate, se = hit_rate(pl.Series([1.0, 2.0]), pl.Series([3.0, 4.0]))
    assert (rate, se) == (1.0, 0.0)
    assert all(math.isnan(v) for v in hit_rate([1.0], [0.0]))
    with pytest.raises(ValueError, match="shape"):
        hit_rate([1.0, 2.0], [1.0])
    big = toy(100, 100, seed=4)
    rate, se = hit_rate(big["pred"], big["label"])
    assert abs(rate - 0.5) < 4 * se and se == pytest.approx(math.sqrt(rate * (1 - rate) / big.height))


def test_quantile_spread_on_a_toy_panel() -> None:
    d = dt.date(2020, 1, 1)
    frame = pl.DataFrame({"date": [d] * 10, "pred": np.arange(10.0), "label": np.arange(10.0) / 100})
    by_date = quantile_spread_by_date(frame, "pred", "label", q=5)
    assert by_date["spread"].to_list() == pytest.approx([0.085 - 0.005])  # {8, 9} minus {0, 1}
    good = toy(60, 50, signal=0.5, seed=5)
    up = quantile_spread(good, "pred", "label")
    assert up["n_dates"] == 60 and up["mean"] > 0 and up["t_stat"] > 3
    down = quantile_spread(good.with_columns(-pl.col("pred")), "pred", "label")
    assert down["mean"] == pytest.approx(-up["mean"]) and down["t_stat"] < -3


def test_quantile_spread_skips_thin_or_tied_dates() -> None:
    d1, d2, d3 = dt.date(2020, 1, 1), dt.date(2020, 1, 2), dt.date(2020, 1, 3)
    frame = pl.DataFrame(
        {
            "date": [d1] * 3 + [d2] * 6 + [d3] * 5,
            "pred": [1.0, 2.0, 3.0] + [1.0] * 6 + [1.0, 2.0, 3.0, 4.0, 5.0],
            "label": [1.0, 2.0, 3.0] + [1.0] * 6 + [0.0, 0.0, 0.0, 0.0, 1.0],
        }
    )
    by_date = quantile_spread_by_date(frame, "pred", "label", q=5)
    assert by_date["date"].to_list() == [d3] and by_date["spread"].to_list() == [1.0]
    assert quantile_spread(frame, "pred", "label", q=5)["n_dates"] == 1
    with pytest.raises(ValueError, match="q must"):
        quantile_spread(frame, "pred", "label", q=1)
