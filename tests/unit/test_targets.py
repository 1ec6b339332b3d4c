"""Forward-return targets: exact values, NULL tails, no leakage of the past or future."""

from __future__ import annotations

import datetime as dt
from functools import cache

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model_code.features import FEATURE_COLUMNS, build_daily_features, build_targets, target_columns
from model_code.features.synthetic import synthetic_bars
from model_code.horizons import HORIZONS

KEYS = ["ticker", "date"]


@cache
def _panel() -> pl.DataFrame:
    """5 tickers x 260 sessions with 5% gaps, the last ticker close-only."""
    return synthetic_bars(5, 260, seed=4, close_only=1, gap_fraction=0.05)


@cache
def _targets() -> pl.DataFrame:
    return build_targets(_panel())


def _ticker(frame: pl.DataFrame, ticker: str) -> pl.DataFrame:
    return frame.filter(pl.col("ticker") == ticker).sort("date")


def test_columns_and_one_row_per_bar() -> None:
    tg = _targets()
    assert tg.columns == [*KEYS, *target_columns(HORIZONS)]
    assert tg.select(KEYS).equals(_panel().select(KEYS).sort(KEYS))
    assert not set(tg.columns) & set(FEATURE_COLUMNS)
    assert not set(build_daily_features(_panel()).columns) & set(target_columns(HORIZONS))


@pytest.mark.parametrize("ticker", ["T000", "T004"])
def test_forward_return_is_the_log_price_ratio_h_rows_ahead(ticker: str) -> None:
    bars, tg = _ticker(_panel(), ticker), _ticker(_targets(), ticker)
    lp, dates, m = np.log(bars["adj_close"].to_numpy()), bars["date"], bars.height
    for h in HORIZONS:
        fwd = tg[f"fwd_ret_{h}"]
        np.testing.assert_allclose(fwd.to_numpy()[: m - h], lp[h:] - lp[: m - h], rtol=1e-12, atol=1e-15)
        assert tg[f"target_date_{h}"][: m - h].equals(dates[h:], check_names=False)
        for col in (f"fwd_ret_{h}", f"fwd_ret_{h}_z", f"sig_move_{h}", f"target_date_{h}"):
            assert tg[col][m - h :].is_null().all(), col  # the future is not known yet


def test_adj_close_falls_back_to_close() -> None:
    bars = _ticker(_panel(), "T001").with_columns(pl.lit(None, dtype=pl.Float64).alias("adj_close"))
    tg = build_targets(bars, horizons=(5,))
    lp = np.log(bars["close"].to_numpy())
    np.testing.assert_allclose(tg["fwd_ret_5"].to_numpy()[:-5], lp[5:] - lp[:-5], rtol=1e-12)


@settings(max_examples=30, deadline=None)
@given(t=st.integers(70, 180), h=st.sampled_from(HORIZONS), scale=st.floats(0.5, 3.0))
def test_forward_return_uses_only_the_anchor_and_the_row_h_ahead(t: int, h: int, scale: float) -> None:
    bars = _ticker(_panel(), "T002")
    base = build_targets(bars, horizons=(h,))[f"fwd_ret_{h}"][t]
    idx = pl.int_range(pl.len())
    keep = (idx == t) | (idx == t + h)
    shaken = bars.with_columns(
        pl.when(keep).then(pl.col(c)).otherwise(pl.col(c) * scale * (1 + idx.cast(pl.Float64) / 1e3)).alias(c)
        for c in ("close", "adj_close")
    )
    assert build_targets(shaken, horizons=(h,))[f"fwd_ret_{h}"][t] == pytest.approx(base, rel=1e-12)


@settings(max_examples=30, deadline=None)
@given(cut=st.integers(0, 259))
def test_vol_scale_is_known_at_t_and_targets_appear_only_when_realized(cut: int) -> None:
    bars, full = _panel(), _targets()
    cut_date = bars["date"].unique().sort()[cut]
    got = build_targets(bars.filter(pl.col("date") <= cut_date))
    want = full.filter(pl.col("date") <= cut_date)
    assert got.select(KEYS).equals(want.select(KEYS))
    assert got["trailing_vol_21"].is_null().equals(want["trailing_vol_21"].is_null())
    np.testing.assert_allclose(
        got["trailing_vol_21"].drop_nulls().to_numpy(),
        want["trailing_vol_21"].drop_nulls().to_numpy(),
        rtol=1e-12,
    )
    for h in HORIZONS:
        realized = want.filter(pl.col(f"target_date_{h}") <= cut_date)
        same = got.filter(pl.col(f"target_date_{h}").is_not_null())
        assert same.height == realized.height
        for col in (f"fwd_ret_{h}", f"fwd_ret_{h}_z", f"sig_move_{h}"):
            a, b = same[col].to_numpy(), realized[col].to_numpy()
            np.testing.assert_allclose(a.astype(float), b.astype(float), rtol=1e-12, equal_nan=True)


def test_vol_scaling_and_significant_move_label() -> None:
    bars, tg = _ticker(_panel(), "T003"), _ticker(_targets(), "T003")
    r = np.diff(np.log(bars["adj_close"].to_numpy()), prepend=np.nan)
    assert tg["trailing_vol_21"][:21].is_null().all()
    for t in (21, 100, 150):
        assert tg["trailing_vol_21"][t] == pytest.approx(r[t - 20 : t + 1].std(ddof=1), rel=1e-10)
    for h in HORIZONS:
        z = tg[f"fwd_ret_{h}"] / (tg["trailing_vol_21"] * np.sqrt(h))
        np.testing.assert_allclose(tg[f"fwd_ret_{h}_z"].to_numpy(), z.to_numpy(), rtol=1e-12)
        known = tg.filter(pl.col(f"fwd_ret_{h}_z").is_not_null())
        want = np.where(np.abs(known[f"fwd_ret_{h}_z"]) > 1.0, np.sign(known[f"fwd_ret_{h}"]), 0)
        assert known[f"sig_move_{h}"].to_list() == want.astype(int).tolist()
        assert set(known[f"sig_move_{h}"].unique().to_list()) <= {-1, 0, 1}
        assert tg.filter(pl.col(f"fwd_ret_{h}_z").is_null())[f"sig_move_{h}"].is_null().all()


def test_threshold_is_a_parameter() -> None:
    loose = build_targets(_panel(), horizons=(5,), threshold=0.0).drop_nulls("sig_move_5")
    assert (loose["sig_move_5"] == loose["fwd_ret_5"].sign().cast(pl.Int8)).all()
    strict = build_targets(_panel(), horizons=(5,), threshold=50.0)
    assert (strict["sig_move_5"].drop_nulls() == 0).all()
    default = _targets().drop_nulls("sig_move_5")
    assert 0.1 < (default["sig_move_5"] != 0).mean() < 0.6  # |N(0,1)| > 1 about a third of the time


def test_invalid_horizons_and_threshold_are_refused() -> None:
    for bad in ((), (0,), (-1, 5), (2.5,)):
        with pytest.raises(ValueError, match="horizons"):
            build_targets(_panel(), horizons=bad)
    with pytest.raises(ValueError, match="threshold"):
        build_targets(_panel(), threshold=-1.0)


def test_gap_days_count_as_the_tickers_own_rows() -> None:
    bars = pl.DataFrame(
        {
            "ticker": "G",
            "date": [dt.date(2019, 1, 2), dt.date(2019, 1, 3), dt.date(2019, 1, 9), dt.date(2019, 1, 10)],
            "close": [10.0, 11.0, 12.0, 13.0],
        }
    )
    tg = build_targets(bars, horizons=(1, 2))
    assert tg["target_date_1"].to_list() == [
        dt.date(2019, 1, 3),
        dt.date(2019, 1, 9),
        dt.date(2019, 1, 10),
        None,
    ]
    assert tg["fwd_ret_2"].to_list()[:2] == pytest.approx([np.log(12 / 10), np.log(13 / 11)])
    assert tg["fwd_ret_2"][2:].is_null().all()
    assert tg["trailing_vol_21"].is_null().all() and tg["sig_move_1"].is_null().all()
