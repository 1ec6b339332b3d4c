"""Daily feature engine: point-in-time property, known values, NULL handling, scale and real data.

Speed is not asserted here: ``python -m benchmarks.features`` (``make bench``) checks it."""

from __future__ import annotations

import datetime as dt
from functools import cache

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model_code.evaluation.clean_bars import load_clean_bars
from model_code.features import FEATURE_COLUMNS, build_daily_features
from model_code.features.daily import NUMERIC_FEATURES
from model_code.features.synthetic import synthetic_bars

KEYS = ["ticker", "date"]


@cache
def _panel() -> pl.DataFrame:
    """6 tickers x 320 sessions, 4% gaps, the last ticker close-only."""
    return synthetic_bars(6, 320, seed=11, close_only=1, gap_fraction=0.04)


@cache
def _panel_features() -> pl.DataFrame:
    return build_daily_features(_panel())


def assert_features_equal(got: pl.DataFrame, want: pl.DataFrame, tol: float = 1e-12) -> None:
    """Same keys, same NULL pattern, numeric values equal to ``tol`` (relative above 1)."""
    assert got.select(KEYS).equals(want.select(KEYS))
    for col in FEATURE_COLUMNS:
        a, b = got[col], want[col]
        assert a.is_null().equals(b.is_null()), f"{col}: NULL pattern differs"
        if col in NUMERIC_FEATURES:
            x, y = a.drop_nulls().to_numpy(), b.drop_nulls().to_numpy()
            assert np.all(np.abs(x - y) <= tol * np.maximum(1.0, np.abs(y))), col
        else:
            assert a.equals(b), col


def _one(bars: pl.DataFrame, ticker: str) -> pl.DataFrame:
    return build_daily_features(bars).filter(pl.col("ticker") == ticker)


# --- point in time -------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(cut=st.integers(0, 330), pick=st.lists(st.integers(0, 5), min_size=1, max_size=6, unique=True))
def test_features_at_t_use_only_bars_up_to_t(cut: int, pick: list[int]) -> None:
    bars, full = _panel(), _panel_features()
    dates = bars["date"].unique().sort()
    cut_date = dates[min(cut, len(dates) - 1)] if cut < len(dates) else dates[-1] + dt.timedelta(days=5)
    tickers = [f"T{i:03d}" for i in pick]
    truncated = bars.filter((pl.col("date") <= cut_date) & pl.col("ticker").is_in(tickers))
    want = full.filter((pl.col("date") <= cut_date) & pl.col("ticker").is_in(tickers))
    assert_features_equal(build_daily_features(truncated), want)


def test_future_bars_do_not_change_the_past_even_when_wild() -> None:
    bars = _panel()
    cut = bars["date"].unique().sort()[200]
    wild = bars.with_columns(
        pl.when(pl.col("date") > cut).then(pl.col(c) * 7.0).otherwise(pl.col(c)).alias(c)
        for c in ("open", "high", "low", "close", "adj_close", "volume")
    )
    got = build_daily_features(wild).filter(pl.col("date") <= cut)
    assert_features_equal(got, _panel_features().filter(pl.col("date") <= cut))


# --- shape and NULLs -----------------------------------------------------------------------


def test_one_sorted_row_per_bar_and_warm_up_rows_kept_null() -> None:
    bars = _panel()
    feats = build_daily_features(bars.sample(fraction=1.0, shuffle=True, seed=3))
    assert feats.columns == [*KEYS, *FEATURE_COLUMNS]
    assert feats.height == bars.height
    assert feats.select(KEYS).equals(bars.select(KEYS).sort(KEYS))
    first = feats.filter(pl.col("ticker") == "T000")
    warm_up = {
        "mom_1_20": 20,
        "mom_20_60": 60,
        "adx_14": 27,
        "bb_pos_20": 19,
        "rv_21": 21,
        "vol_ratio_10_63": 63,
        "hurst_100": 100,
        "vr_10_126": 126,
        "volume_z_20": 20,
    }
    for col, n in warm_up.items():
        assert first[col][:n].is_null().all(), col
        assert first[col][n:].is_not_null().all(), col


def test_close_only_ticker_gets_null_adx_and_volume_z_but_price_features() -> None:
    feats = _panel_features().filter(pl.col("ticker") == "T005")
    assert feats["adx_14"].is_null().all()
    assert feats["volume_z_20"].is_null().all()
    for col in ("mom_1_20", "mom_20_60", "bb_pos_20", "rv_21", "hurst_100", "vr_2_126"):
        assert feats[col][130:].is_not_null().all(), col


def test_bare_ticker_date_close_frame_is_accepted() -> None:
    bars = _panel().filter(pl.col("ticker") == "T000").select("ticker", "date", "close")
    feats = build_daily_features(bars)
    assert feats["adx_14"].is_null().all() and feats["volume_z_20"].is_null().all()
    assert feats["mom_1_20"][25:].is_not_null().all()


def test_duplicate_keys_and_missing_columns_are_refused() -> None:
    bars = _panel()
    with pytest.raises(ValueError, match="more than once"):
        build_daily_features(pl.concat([bars, bars.head(1)]))
    with pytest.raises(ValueError, match="close"):
        build_daily_features(bars.drop("close"))


def test_bars_read_back_from_duckdb_give_the_same_features(warehouse) -> None:
    bars = _panel().with_columns(pl.lit(dt.datetime(2024, 1, 2)).alias("ingested_at"))
    warehouse.upsert("market.ohlcv", bars, KEYS)
    stored = warehouse.query("SELECT * FROM market.ohlcv")
    assert_features_equal(build_daily_features(stored), _panel_features())


# --- known values --------------------------------------------------------------------------


def _px(bars: pl.DataFrame, ticker: str) -> np.ndarray:
    return bars.filter(pl.col("ticker") == ticker).sort("date")["adj_close"].to_numpy()


def test_momentum_counts_the_tickers_own_rows_across_gaps() -> None:
    lp = np.log(_px(_panel(), "T001"))
    feats = _panel_features().filter(pl.col("ticker") == "T001")
    t = np.arange(60, len(lp))
    np.testing.assert_allclose(feats["mom_1_20"].to_numpy()[t], lp[t - 1] - lp[t - 20], rtol=1e-12)
    np.testing.assert_allclose(feats["mom_20_60"].to_numpy()[t], lp[t - 20] - lp[t - 60], rtol=1e-12)


def test_bollinger_volatility_and_volume_z_formulas() -> None:
    bars = _panel().filter(pl.col("ticker") == "T002")
    px, feats = _px(bars, "T002"), _one(bars, "T002")
    r = np.diff(np.log(px), prepend=np.nan)
    lv = np.log1p(bars["volume"].to_numpy())
    for t in (70, 150, len(px) - 1):
        w = px[t - 19 : t + 1]
        assert feats["bb_pos_20"][t] == pytest.approx((px[t] - w.mean()) / (2 * w.std()), rel=1e-10)
        rv = r[t - 20 : t + 1].std(ddof=1) * np.sqrt(252)
        assert feats["rv_21"][t] == pytest.approx(rv, rel=1e-10)
        ratio = r[t - 9 : t + 1].std(ddof=1) / r[t - 62 : t + 1].std(ddof=1)
        assert feats["vol_ratio_10_63"][t] == pytest.approx(ratio, rel=1e-10)
        prev = lv[t - 20 : t]
        assert feats["volume_z_20"][t] == pytest.approx((lv[t] - prev.mean()) / prev.std(ddof=1), rel=1e-10)


def _wilder_adx(h: np.ndarray, lo: np.ndarray, c: np.ndarray, n: int = 14) -> np.ndarray:
    """Textbook Wilder ADX with explicit loops (reference implementation)."""
    m = len(c)
    tr, pdm, mdm = np.full(m, np.nan), np.zeros(m), np.zeros(m)
    for i in range(1, m):
        tr[i] = max(h[i] - lo[i], abs(h[i] - c[i - 1]), abs(lo[i] - c[i - 1]))
        up, dn = h[i] - h[i - 1], lo[i - 1] - lo[i]
        pdm[i] = up if (up > dn and up > 0) else 0.0
        mdm[i] = dn if (dn > up and dn > 0) else 0.0

    def smooth(x: np.ndarray, start: int) -> np.ndarray:
        out = np.full(m, np.nan)
        out[start + n - 1] = x[start : start + n].mean()
        for i in range(start + n, m):
            out[i] = out[i - 1] + (x[i] - out[i - 1]) / n
        return out

    atr, ap, am = smooth(tr, 1), smooth(pdm, 1), smooth(mdm, 1)
    pdi, mdi = 100 * ap / atr, 100 * am / atr
    dx = 100 * np.abs(pdi - mdi) / (pdi + mdi)
    return smooth(dx, n)


def test_adx_matches_a_loop_implementation_of_wilder() -> None:
    bars = synthetic_bars(1, 200, seed=5)
    f = bars["adj_close"] / bars["close"]
    h, lo, c = ((bars[col] * f).to_numpy() for col in ("high", "low", "close"))
    want = _wilder_adx(h, lo, c)
    got = build_daily_features(bars)["adx_14"].to_numpy()
    assert np.isnan(want[:27]).all() and np.isnan(got[:27]).all()
    np.testing.assert_allclose(got[27:], want[27:], rtol=1e-10)


def test_adx_of_a_steady_trend_is_high_and_of_noise_is_low() -> None:
    days = synthetic_bars(1, 120)["date"]
    c = 100.0 + np.arange(120, dtype=float)
    trend = pl.DataFrame({"ticker": "UP", "date": days, "high": c + 0.5, "low": c - 0.5, "close": c})
    adx = build_daily_features(trend)["adx_14"]
    assert adx[27:].min() > 99.0  # +DM every day, -DM never: DX = 100
    noise = build_daily_features(synthetic_bars(20, 400, seed=2))["adx_14"].drop_nulls()
    assert 10 < noise.median() < 30


def _lo_mackinlay(r: np.ndarray, q: int) -> float:
    """Bias-corrected overlapping variance of q-period sums (loop reference)."""
    n, mu = len(r), r.mean()
    sums = np.array([r[j - q : j].sum() for j in range(q, n + 1)])
    return float(((sums - q * mu) ** 2).sum() / ((n - q + 1) * (1 - q / n)))


def test_variance_ratio_and_hurst_match_the_direct_formula() -> None:
    bars = synthetic_bars(1, 300, seed=8)
    r = np.diff(np.log(bars["adj_close"].to_numpy()))
    feats = build_daily_features(bars)
    t = 250  # row t's window holds returns r[t-n+1 .. t] = np.diff(...)[t-n .. t-1]
    for q in (2, 5, 10):
        w = r[t - 126 : t]
        want = _lo_mackinlay(w, q) / (q * _lo_mackinlay(w, 1))
        assert feats[f"vr_{q}_126"][t] == pytest.approx(want, rel=1e-9)
    w = r[t - 100 : t]
    qs = np.array([1, 2, 4, 8, 16])
    slope = np.polyfit(np.log(qs), np.log([_lo_mackinlay(w, q) for q in qs]), 1)[0]
    assert feats["hurst_100"][t] == pytest.approx(slope / 2, rel=1e-9)


def test_random_walk_has_variance_ratio_one_and_hurst_one_half() -> None:
    feats = build_daily_features(synthetic_bars(40, 1000, seed=21))
    for q in (2, 5, 10):
        assert feats[f"vr_{q}_126"].mean() == pytest.approx(1.0, abs=0.03)
    assert feats["hurst_100"].mean() == pytest.approx(0.5, abs=0.04)


def test_persistent_returns_raise_hurst_and_variance_ratio() -> None:
    trending = build_daily_features(synthetic_bars(40, 1000, seed=22, phi=0.4))
    reverting = build_daily_features(synthetic_bars(40, 1000, seed=23, phi=-0.4))
    assert trending["hurst_100"].mean() > 0.6
    assert reverting["hurst_100"].mean() < 0.4
    assert trending["vr_2_126"].mean() == pytest.approx(1.4, abs=0.05)  # VR(2) = 1 + rho(1)
    assert reverting["vr_2_126"].mean() == pytest.approx(0.6, abs=0.05)


def test_calendar_features_follow_nyse_sessions() -> None:
    days = [
        dt.date(2019, 11, 26),
        dt.date(2019, 11, 27),
        dt.date(2019, 11, 29),
        dt.date(2019, 12, 2),
        dt.date(2019, 12, 31),
    ]
    bars = pl.DataFrame({"ticker": "X", "date": days, "close": [1.0, 1.1, 1.2, 1.3, 1.4]})
    cal = build_daily_features(bars)
    assert cal["day_of_week"].to_list() == [2, 3, 5, 1, 2]
    assert cal["month"].to_list() == [11, 11, 11, 12, 12]
    # 2019-11-28 is Thanksgiving: the 29th is November's last session.
    assert cal["is_month_end"].to_list() == [False, False, True, False, True]
    assert cal["sessions_to_month_end"].to_list() == [2, 1, 0, 20, 0]


# --- scale and real data -------------------------------------------------------------------


def test_400_tickers_by_1250_bars_give_one_row_per_bar() -> None:
    """Full universe scale; its speed target (<= 10 s) is checked by ``benchmarks.features``."""
    bars = synthetic_bars(400, 1250, seed=1, close_only=20)
    feats = build_daily_features(bars)
    assert feats.select(KEYS).sort(KEYS).equals(bars.select(KEYS).sort(KEYS))
    close_only = bars.filter(pl.col("high").is_null())
    assert close_only["ticker"].n_unique() == 20
    on_close_only = feats.filter(pl.col("ticker").is_in(close_only["ticker"].unique().implode()))
    assert on_close_only["adx_14"].null_count() == close_only.height


def test_shared_real_data_is_point_in_time_and_sane(shared_parquet) -> None:
    # The accepted bars, as market.ohlcv would hold them (the raw file repeats a few keys).
    bars = load_clean_bars(shared_parquet).bars
    full = build_daily_features(bars)
    assert full.height == bars.height
    adx = full["adx_14"].drop_nulls()
    assert adx.min() >= 0 and adx.max() <= 100
    for col in NUMERIC_FEATURES:
        assert full[col].is_nan().sum() == 0 and full[col].is_infinite().sum() == 0, col
    cut = dt.date(2017, 6, 30)
    truncated = bars.filter(pl.col("date") <= cut)
    assert_features_equal(build_daily_features(truncated), full.filter(pl.col("date") <= cut))
