"""Daily per-ticker features over a whole bar panel, as polars window expressions.

Point in time: every feature at (ticker, T) is a function of that ticker's bars dated <= T
only (shifts look back, rolling windows and Wilder recursions run forward), so truncating the
input at T leaves every earlier row unchanged. Warm-up rows are kept with NULL features.

Time is counted in the ticker's own rows (sessions with a bar); a gap makes one step span
several sessions. Prices are adjusted: ``px = coalesce(adj_close, close)`` in USD, and
high/low are scaled by ``adj_close / close`` so splits do not create fake ranges.

Columns (units):

* ``mom_1_20``   ln(px[t-1] / px[t-20]): log return over rows t-20..t-1, skipping the last day.
* ``mom_20_60``  ln(px[t-20] / px[t-60]): log return over rows t-60..t-20.
* ``adx_14``     Wilder's ADX(14), 0..100; NULL where high/low are missing (close-only series).
* ``bb_pos_20``  (px - SMA20(px)) / (2 * std20(px)), population std; +-1 at the bands.
* ``rv_21``      std of the last 21 daily log returns * sqrt(252): annualized log-return vol.
* ``vol_ratio_10_63``  std of the last 10 daily log returns / std of the last 63 (ratio).
* ``hurst_100``  aggregated-variance Hurst exponent over 100 returns (see ``dependence``).
* ``vr_{2,5,10}_126``  Lo-MacKinlay variance ratios over 126 returns (1 = random walk).
* ``volume_z_20``  (ln(1+volume) - mean) / std of ln(1+volume) over the previous 20 rows;
  NULL where volume is missing.
* ``day_of_week``, ``month``, ``is_month_end``, ``sessions_to_month_end`` (NYSE calendar).
"""

from __future__ import annotations

import math

import polars as pl

from model_code.features._panel import BY, KEYS, finite_or_null, prepare_bars
from model_code.features.calendar_features import CALENDAR_COLUMNS, calendar_features
from model_code.features.dependence import (
    HURST_WINDOW,
    VR_LAGS,
    VR_WINDOW,
    dependence_pairs,
    hurst,
    q_sum_columns,
    rolling_sum_columns,
    variance_ratio,
)

ADX_WINDOW = 14
ANNUALIZATION = 252
NUMERIC_FEATURES: tuple[str, ...] = (
    "mom_1_20",
    "mom_20_60",
    f"adx_{ADX_WINDOW}",
    "bb_pos_20",
    "rv_21",
    "vol_ratio_10_63",
    f"hurst_{HURST_WINDOW}",
    *(f"vr_{q}_{VR_WINDOW}" for q in VR_LAGS),
    "volume_z_20",
)
FEATURE_COLUMNS: tuple[str, ...] = (*NUMERIC_FEATURES, *CALENDAR_COLUMNS)


def build_daily_features(bars: pl.DataFrame) -> pl.DataFrame:
    """Features keyed (ticker, date), one row per input bar, sorted by ticker then date.

    ``bars`` follows the canonical OHLCV layout (``ticker``, ``date``, ``close`` required; the
    other price/volume columns may be absent or NULL). See the module docstring for columns.
    """
    frame = prepare_bars(bars)
    frame = _adx(frame, ADX_WINDOW)
    frame = frame.with_columns(q_sum_columns({q for q, _ in dependence_pairs()}))
    frame = frame.with_columns(rolling_sum_columns(dependence_pairs()))
    lp, r, px = pl.col("_lp"), pl.col("_r"), pl.col("_px")
    lv = pl.when(pl.col("volume") >= 0).then(pl.col("volume").log1p())
    frame = frame.with_columns(
        (lp.shift(1) - lp.shift(20)).over(BY).alias("mom_1_20"),
        (lp.shift(20) - lp.shift(60)).over(BY).alias("mom_20_60"),
        ((px - px.rolling_mean(20)) / (2.0 * px.rolling_std(20, ddof=0))).over(BY).alias("bb_pos_20"),
        (r.rolling_std(21) * math.sqrt(ANNUALIZATION)).over(BY).alias("rv_21"),
        (r.rolling_std(10) / r.rolling_std(63)).over(BY).alias("vol_ratio_10_63"),
        hurst().alias(f"hurst_{HURST_WINDOW}"),
        *(variance_ratio(q).alias(f"vr_{q}_{VR_WINDOW}") for q in VR_LAGS),
        ((lv - lv.shift(1).rolling_mean(20)) / lv.shift(1).rolling_std(20)).over(BY).alias("volume_z_20"),
    )
    frame = frame.select(*KEYS, *finite_or_null(NUMERIC_FEATURES))
    cal = calendar_features(frame["date"])
    return frame.join(cal, on="date", how="left", maintain_order="left").select(*KEYS, *FEATURE_COLUMNS)


def _adx(frame: pl.DataFrame, n: int) -> pl.DataFrame:
    """Add ``adx_{n}``: Wilder's average directional index on split-adjusted high/low/close.

    TR = max(h - l, |h - c[t-1]|, |l - c[t-1]|); +DM = h - h[t-1] if it exceeds both
    l[t-1] - l and 0, else 0 (-DM symmetric); TR, +DM, -DM are Wilder-smoothed (seed = mean of
    the first n values, then y = y[t-1] + (x - y[t-1]) / n); DI = 100 * DM_s / TR_s;
    DX = 100 * |+DI - -DI| / (+DI + -DI); ADX = Wilder smoothing of DX. First value at row 2n-1.
    """
    factor = (
        pl.when(pl.col("adj_close").is_not_null() & (pl.col("close") > 0))
        .then(pl.col("adj_close") / pl.col("close"))
        .otherwise(1.0)
    )
    frame = frame.with_columns(
        (pl.col("high") * factor).alias("_h"),
        (pl.col("low") * factor).alias("_l"),
        (pl.col("close") * factor).alias("_c"),
    )
    h, lo, c = pl.col("_h"), pl.col("_l"), pl.col("_c")
    ph, pl_, pc = h.shift(1).over(BY), lo.shift(1).over(BY), c.shift(1).over(BY)
    ok = pl.all_horizontal(
        h.is_not_null(), lo.is_not_null(), ph.is_not_null(), pl_.is_not_null(), pc.is_not_null()
    )
    up, dn = h - ph, pl_ - lo
    frame = frame.with_columns(
        pl.when(ok).then(pl.max_horizontal(h - lo, (h - pc).abs(), (lo - pc).abs())).alias("_tr"),
        pl.when(ok).then(pl.when((up > dn) & (up > 0)).then(up).otherwise(0.0)).alias("_pdm"),
        pl.when(ok).then(pl.when((dn > up) & (dn > 0)).then(dn).otherwise(0.0)).alias("_mdm"),
    )
    frame = _wilder(frame, ("_tr", "_pdm", "_mdm"), n)
    tr, pdi, mdi = pl.col("_w_tr"), pl.col("_w_pdm"), pl.col("_w_mdm")
    frame = frame.with_columns(
        pl.when(tr > 0)
        .then(pl.when(pdi + mdi > 0).then(100.0 * (pdi - mdi).abs() / (pdi + mdi)).otherwise(0.0))
        .alias("_dx")
    )
    frame = _wilder(frame, ("_dx",), n)
    return frame.rename({"_w_dx": f"adx_{n}"})


def _wilder(frame: pl.DataFrame, cols: tuple[str, ...], n: int) -> pl.DataFrame:
    """Add ``_w{col}``: Wilder's smoothing per ticker, NULL until the n-th non-null value.

    Seeded with the mean of the first n non-null values, then an EWM with alpha = 1/n that
    skips NULL rows (and leaves them NULL), all as window expressions.
    """
    frame = frame.with_columns(
        *(pl.col(c).is_not_null().cum_sum().over(BY).alias(f"_n{c}") for c in cols),
        *(pl.col(c).fill_null(0.0).cum_sum().over(BY).alias(f"_cs{c}") for c in cols),
    )
    seeded = [
        pl.when(pl.col(f"_n{c}") < n)
        .then(None)
        .when((pl.col(f"_n{c}") == n) & pl.col(c).is_not_null())
        .then(pl.col(f"_cs{c}") / n)
        .otherwise(pl.col(c))
        .ewm_mean(alpha=1.0 / n, adjust=False, ignore_nulls=True, min_samples=1)
        .over(BY)
        .alias(f"_w{c}")
        for c in cols
    ]
    return frame.with_columns(seeded)
