"""Forward-looking targets (labels), kept apart from features so none can leak into them.

For each horizon h (counted in the ticker's own rows/sessions with a bar):

* ``target_date_{h}``  date of row t+h (the day the target becomes known).
* ``fwd_ret_{h}``      ln(px[t+h] / px[t]), px = coalesce(adj_close, close): a log return.
  Uses only the anchor price px[t] from rows <= t.
* ``fwd_ret_{h}_z``    fwd_ret_{h} / (trailing_vol_21 * sqrt(h)): forward return in units of
  its expected standard deviation, where the scale is known at t.
* ``sig_move_{h}``     Int8 in {-1, 0, 1}: sign(fwd_ret_{h}) if |fwd_ret_{h}_z| > threshold
  else 0.

``trailing_vol_21`` is the sample std of the last 21 daily log returns (rows t-20..t), not
annualized. Rows whose future (row t+h) does not exist yet have NULL targets.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from model_code.features._panel import BY, KEYS, finite_or_null, prepare_bars
from model_code.horizons import HORIZONS

VOL_WINDOW = 21
SCALE_COLUMN = f"trailing_vol_{VOL_WINDOW}"


def target_columns(horizons: Sequence[int] = HORIZONS) -> tuple[str, ...]:
    """Output columns of :func:`build_targets` after the (ticker, date) key, in order."""
    cols: list[str] = [SCALE_COLUMN]
    for h in horizons:
        cols += [f"target_date_{h}", f"fwd_ret_{h}", f"fwd_ret_{h}_z", f"sig_move_{h}"]
    return tuple(cols)


def build_targets(
    bars: pl.DataFrame,
    horizons: Sequence[int] = HORIZONS,
    *,
    threshold: float = 1.0,
) -> pl.DataFrame:
    """Targets keyed (ticker, date), one row per input bar, sorted by ticker then date.

    Args:
        bars: canonical OHLCV bars (``ticker``, ``date``, ``close`` required).
        horizons: positive forward horizons in rows of the ticker.
        threshold: |z| above which a move counts as significant for ``sig_move_{h}``.
    """
    if not horizons or any(int(h) != h or h < 1 for h in horizons):
        raise ValueError(f"horizons must be positive integers, got {horizons!r}")
    if threshold < 0:
        raise ValueError(f"threshold must be >= 0, got {threshold}")
    frame = prepare_bars(bars)
    lp = pl.col("_lp")
    vol = pl.col("_r").rolling_std(VOL_WINDOW).over(BY)
    frame = frame.with_columns(pl.when(vol > 0).then(vol).alias(SCALE_COLUMN))
    frame = frame.with_columns(
        *(pl.col("date").shift(-h).over(BY).alias(f"target_date_{h}") for h in horizons),
        *((lp.shift(-h).over(BY) - lp).alias(f"fwd_ret_{h}") for h in horizons),
    )
    frame = frame.with_columns(finite_or_null([f"fwd_ret_{h}" for h in horizons]))
    frame = frame.with_columns(
        (pl.col(f"fwd_ret_{h}") / (pl.col(SCALE_COLUMN) * h**0.5)).alias(f"fwd_ret_{h}_z") for h in horizons
    )
    frame = frame.with_columns(
        pl.when(pl.col(f"fwd_ret_{h}_z").abs() > threshold)
        .then(pl.col(f"fwd_ret_{h}").sign())
        .otherwise(0)
        .cast(pl.Int8)
        .alias(f"sig_move_{h}")
        for h in horizons
    )
    # .otherwise(0) turned unknown z into 0; put NULL back where the target is not known.
    frame = frame.with_columns(
        pl.when(pl.col(f"fwd_ret_{h}_z").is_not_null()).then(pl.col(f"sig_move_{h}")).alias(f"sig_move_{h}")
        for h in horizons
    )
    return frame.select(*KEYS, *target_columns(horizons))


def targets_resolved_in(targets: pl.DataFrame, start, end) -> pl.DataFrame:
    """Rows of ``targets`` dated in ``[start, end]`` or with a horizon that closed in it.

    A partition covering ``[start, end]`` writes exactly these: new rows (targets still NULL)
    and older rows whose ``fwd_ret_{h}`` became known inside the window.
    """
    horizons = [int(c.removeprefix("target_date_")) for c in targets.columns if c.startswith("target_date_")]
    closed = [pl.col(f"target_date_{h}").is_between(start, end) for h in horizons]
    return targets.filter(pl.col("date").is_between(start, end) | pl.any_horizontal(closed))
