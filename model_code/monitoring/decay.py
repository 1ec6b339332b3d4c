"""Rolling accuracy of every stored forecaster as its targets close, and when it has decayed.

Per (model, ticker, horizon) and pooled over tickers (``ticker = '*'``), over the forecasts
whose target closed in the ``window_sessions`` sessions ending at as_of (made before as_of):

* ``hit_rate`` / ``hit_n``: directional hit rate (:func:`model_code.evaluation.accuracy_table`);
* ``up_rate``: the hit rate of a forecaster that always says "up" on the same (origin, ticker,
  horizon) keys, the yardstick a hit rate should beat;
* ``rmse``, ``rmse_rw``, ``rmse_ratio``, ``n``: the model's and the random walk's RMSE and their
  ratio, from :func:`model_code.forecasting.losses.realized_losses`, the one rule for which
  forecasts count (realized on their own target date, by as_of, on keys every model of the
  family forecast), so monitoring judges a model on the losses the ensemble weights use;
* ``coverage_80`` / ``coverage_95``: share of realized targets inside the 80/95 % interval.

Units: forecasts and targets are cumulative log returns over the horizon; RMSE in log return.

Families are judged apart, so a gap in one family's forecasts never thins the other's keys:
``statistical`` (``forecasts.predictions``) and ``ml`` (``forecasts.ml_predictions``, against
the statistical random walk's forecasts of the same keys). The ensemble is not monitored (it is
not fitted, and the loss rule leaves it out); the random walk is the yardstick, not judged.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import polars as pl

from model_code.evaluation.accuracy import accuracy_table
from model_code.evaluation.walk_forward import BENCHMARK
from model_code.forecasting.losses import ENSEMBLE, attach_realized, realized_losses, targets_long
from model_code.horizons import HORIZONS
from model_code.market_data.calendar import TradingCalendar, trading_calendar
from model_code.monitoring.settings import DecaySettings

STATISTICAL = "statistical"
ML = "ml"
FAMILIES = (STATISTICAL, ML)
POOLED = "*"
KEYS = ["as_of", "model", "ticker", "horizon"]
HEALTH_SCHEMA: dict[str, pl.DataType] = {
    "as_of": pl.Date(),
    "model": pl.String(),
    "ticker": pl.String(),
    "horizon": pl.Int32(),
    "family": pl.String(),
    "window_start": pl.Date(),
    "n": pl.Int64(),
    "hit_n": pl.Int64(),
    "hit_rate": pl.Float64(),
    "up_rate": pl.Float64(),
    "rmse": pl.Float64(),
    "rmse_rw": pl.Float64(),
    "rmse_ratio": pl.Float64(),
    "coverage_80": pl.Float64(),
    "coverage_95": pl.Float64(),
    "judged": pl.Boolean(),
    "decayed": pl.Boolean(),
    "crossed": pl.Boolean(),
    "reason": pl.String(),
}
# Per-ticker losses: realized_losses groups by (model, horizon) and finds common keys per
# horizon; a ticker's block id folded into the horizon makes both hold per (ticker, horizon).
_BLOCK = max(HORIZONS) + 1


def realized_forecasts(forecasts: pl.DataFrame, targets: pl.DataFrame) -> pl.DataFrame:
    """``forecasts`` (``as_of`` or ``origin``, ``ticker, model, horizon, target_date, yhat``,
    intervals, ``family``) with ``actual`` from ``features.targets``-shaped ``targets``
    (:func:`attach_realized`: NULL unless realized on the forecast's own target date)."""
    return attach_realized(forecasts, targets_long(targets)).filter(pl.col("model") != ENSEMBLE)


def _losses_per_ticker(history: pl.DataFrame, as_of: dt.date) -> pl.DataFrame:
    blocks = history.select(pl.col("ticker").unique().sort()).with_row_index("_block")
    folded = history.join(blocks, on="ticker").with_columns(
        horizon=(pl.col("_block").cast(pl.Int64) * _BLOCK + pl.col("horizon")).cast(pl.Int32)
    )
    losses = realized_losses(folded.drop("_block"), as_of).with_columns(
        _block=(pl.col("horizon") // _BLOCK).cast(pl.UInt32),
        horizon=(pl.col("horizon") % _BLOCK).cast(pl.Int32),
    )
    return losses.join(blocks, on="_block").drop("_block")


def _up_rates(rows: pl.DataFrame) -> pl.DataFrame:
    keys = rows.filter(pl.col("actual").is_finite() & (pl.col("actual") != 0)).unique(
        ["origin", "ticker", "horizon"]
    )
    up = (pl.col("actual") > 0).mean().alias("up_rate")
    per_ticker = keys.group_by("ticker", "horizon").agg(up)
    pooled = keys.group_by("horizon").agg(up).with_columns(ticker=pl.lit(POOLED))
    return pl.concat([per_ticker, pooled.select(per_ticker.columns)])


def _family_health(rows: pl.DataFrame, as_of: dt.date) -> pl.DataFrame:
    """Health of one family's models; ``rows`` holds them and the random walk's forecasts."""
    losses = pl.concat(
        [
            _losses_per_ticker(rows, as_of).select("model", "ticker", "horizon", "mse", "n"),
            realized_losses(rows, as_of)
            .with_columns(ticker=pl.lit(POOLED))
            .select("model", "ticker", "horizon", "mse", "n"),
        ]
    )
    bench = losses.filter(pl.col("model") == BENCHMARK).select("ticker", "horizon", mse_rw="mse")
    ratio = (
        losses.filter(pl.col("model") != BENCHMARK)
        .join(bench, on=["ticker", "horizon"], how="left")
        .select(
            "model",
            "ticker",
            "horizon",
            "n",
            rmse=pl.col("mse").sqrt(),
            rmse_rw=pl.col("mse_rw").sqrt(),
            rmse_ratio=pl.when(pl.col("mse_rw") > 0).then((pl.col("mse") / pl.col("mse_rw")).sqrt()),
        )
    )
    judged_rows = rows.filter(pl.col("model") != BENCHMARK)
    cols = ["hit_n", "hit_rate", "coverage_80", "coverage_95"]
    acc = pl.concat(
        [
            accuracy_table(judged_rows, by=("model", "ticker", "horizon")).select(
                "model", "ticker", "horizon", *cols
            ),
            accuracy_table(judged_rows, by=("model", "horizon"))
            .with_columns(ticker=pl.lit(POOLED))
            .select("model", "ticker", "horizon", *cols),
        ]
    )
    on = ["model", "ticker", "horizon"]
    return acc.join(ratio, on=on, how="left").join(_up_rates(rows), on=["ticker", "horizon"], how="left")


def judge(health: pl.DataFrame, settings: DecaySettings) -> pl.DataFrame:
    """``health`` with ``judged`` (enough realized forecasts for at least one rule), ``decayed``
    and ``reason`` (which rule fired, with the numbers)."""
    enough_hits = (pl.col("hit_n") >= settings.min_observations) & pl.col("hit_rate").is_not_null()
    enough_losses = (pl.col("n") >= settings.min_observations) & pl.col("rmse_ratio").is_not_null()
    low_hits = enough_hits & (pl.col("hit_rate") < settings.min_hit_rate)
    high_ratio = enough_losses & (pl.col("rmse_ratio") > settings.max_rmse_ratio)
    hit_text = pl.format("hit rate {} < {}", pl.col("hit_rate").round(3), pl.lit(settings.min_hit_rate))
    ratio_text = pl.format(
        "RMSE ratio {} > {}", pl.col("rmse_ratio").round(3), pl.lit(settings.max_rmse_ratio)
    )
    return health.with_columns(
        judged=(enough_hits | enough_losses).fill_null(False),
        decayed=(low_hits | high_ratio).fill_null(False),
        reason=pl.concat_str(
            [pl.when(low_hits).then(hit_text), pl.when(high_ratio).then(ratio_text)],
            separator="; ",
            ignore_nulls=True,
        ),
    ).with_columns(reason=pl.when(pl.col("reason") != "").then(pl.col("reason")))


def health_at(
    realized: pl.DataFrame, as_of: dt.date, settings: DecaySettings, calendar: TradingCalendar | None = None
) -> pl.DataFrame:
    """Judged health of every model at ``as_of`` (``crossed`` left NULL; see :func:`evaluate`)."""
    calendar = calendar or trading_calendar()
    start = calendar.window_start(as_of, settings.window_sessions)
    rows = realized.filter(
        pl.col("target_date").is_between(start, as_of) & (pl.col("origin") < as_of)
    ).with_columns(pl.col("horizon").cast(pl.Int32))
    bench = rows.filter((pl.col("family") == STATISTICAL) & (pl.col("model") == BENCHMARK))
    parts = []
    for family in FAMILIES:
        own = rows.filter(pl.col("family") == family)
        if family != STATISTICAL:
            own = pl.concat([own, bench])
        if own.filter(pl.col("model") != BENCHMARK).is_empty():
            continue
        parts.append(_family_health(own, as_of).with_columns(family=pl.lit(family)))
    if not parts:
        return pl.DataFrame(schema=HEALTH_SCHEMA)
    health = judge(pl.concat(parts, how="diagonal_relaxed"), settings).with_columns(
        as_of=pl.lit(as_of), window_start=pl.lit(start), crossed=pl.lit(None, dtype=pl.Boolean)
    )
    return health.select(list(HEALTH_SCHEMA)).cast(HEALTH_SCHEMA).sort(KEYS)  # type: ignore[arg-type]


def mark_crossed(current: pl.DataFrame, previous: pl.DataFrame | None) -> pl.DataFrame:
    """``crossed``: decayed now and not at the previous evaluation (or none was stored), so a
    pair asks for one refit when it crosses its threshold, not every night it stays below."""
    on = ["model", "ticker", "horizon"]
    if previous is None or previous.is_empty():
        return current.with_columns(crossed=pl.col("decayed"))
    before = previous.select(*on, pl.col("decayed").alias("_was"))
    return (
        current.drop("crossed")
        .join(before, on=on, how="left")
        .with_columns(crossed=pl.col("decayed") & ~pl.col("_was").fill_null(False))
        .drop("_was")
        .select(current.columns)
    )


def evaluate(
    forecasts: pl.DataFrame,
    targets: pl.DataFrame,
    sessions: Sequence[dt.date],
    settings: DecaySettings,
    previous: pl.DataFrame | None = None,
    calendar: TradingCalendar | None = None,
) -> pl.DataFrame:
    """:data:`HEALTH_SCHEMA` rows for every as_of in ``sessions`` (ascending); ``previous`` is
    the stored evaluation of the session before the first (for ``crossed``)."""
    realized = realized_forecasts(forecasts, targets)
    out = []
    for as_of in sorted(sessions):
        current = mark_crossed(health_at(realized, as_of, settings, calendar), previous)
        out.append(current)
        previous = current
    return pl.concat(out) if out else pl.DataFrame(schema=HEALTH_SCHEMA)
