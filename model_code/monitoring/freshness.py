"""Data freshness and fit / model age at an as_of session, in sessions (never calendar days).

* Freshness: each active ticker's last stored bar against as_of
  (:func:`model_code.validation.staleness.sessions_behind`; NULL and stale with no bar at all).
* Statistical fit age: the latest stored fit per (ticker, model) whose data window ends on or
  before as_of (``models.fits``: ``window_end``, ``fitted_at``); sessions from ``window_end``
  to as_of. Without a ``models.fits`` table every statistical model is refitted each night on
  the bars up to as_of, so its age is 0 (``source = 'nightly_refit'``).
* ML model age: each champion in ``models.registry``: sessions from ``train_end`` (the last
  label date it learned from) to as_of, and days since ``trained_at``.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from model_code.market_data.calendar import TradingCalendar, trading_calendar
from model_code.ml.lifecycle import MODEL_NAMES
from model_code.monitoring.decay import ML, POOLED, STATISTICAL
from model_code.validation.staleness import sessions_behind

FRESHNESS_SCHEMA: dict[str, pl.DataType] = {
    "as_of": pl.Date(),
    "ticker": pl.String(),
    "last_bar": pl.Date(),
    "sessions_behind": pl.Int32(),
    "stale": pl.Boolean(),
}
AGE_SCHEMA: dict[str, pl.DataType] = {
    "as_of": pl.Date(),
    "model": pl.String(),
    "ticker": pl.String(),
    "horizon": pl.Int32(),
    "family": pl.String(),
    "source": pl.String(),
    "model_id": pl.String(),
    "fitted_at": pl.Datetime("us"),
    "window_end": pl.Date(),
    "age_sessions": pl.Int32(),
    "age_days": pl.Float64(),
}
ALL_HORIZONS = 0  # a statistical fit serves every horizon


def freshness(
    last_dates: pl.DataFrame,
    as_of: dt.date,
    stale_after_sessions: int,
    calendar: TradingCalendar | None = None,
) -> pl.DataFrame:
    """:data:`FRESHNESS_SCHEMA` rows from ``last_dates`` (``ticker, last_date``)."""
    calendar = calendar or trading_calendar()
    rows = []
    for ticker, last in last_dates.select("ticker", "last_date").iter_rows():
        behind = None if last is None else sessions_behind(last, as_of, calendar)
        stale = behind is None or behind > stale_after_sessions
        rows.append((as_of, ticker, last, behind, stale))
    return pl.DataFrame(rows, schema=FRESHNESS_SCHEMA, orient="row")


def _days(as_of: dt.date, stamp: pl.Expr) -> pl.Expr:
    close = dt.datetime.combine(as_of, dt.time(23, 59, 59))
    return ((pl.lit(close) - stamp).dt.total_seconds() / 86400.0).clip(lower_bound=0.0)


def _sessions_since(frame: pl.DataFrame, as_of: dt.date, calendar: TradingCalendar) -> list[int | None]:
    return [None if d is None else sessions_behind(d, as_of, calendar) for d in frame["window_end"].to_list()]


def statistical_age(
    predicted: pl.DataFrame,
    fits: pl.DataFrame | None,
    as_of: dt.date,
    calendar: TradingCalendar | None = None,
) -> pl.DataFrame:
    """Age of the fit behind each (ticker, model) in ``predicted`` (the pairs forecast at as_of).

    ``fits``: ``models.fits`` rows (``ticker, model, fitted_at, window_end``) or None when the
    table does not exist. A pair without a usable stored fit gets ``source = 'no_stored_fit'``.
    """
    calendar = calendar or trading_calendar()
    pairs = predicted.select("ticker", "model").unique().sort("ticker", "model")
    if fits is None:
        table = pairs.with_columns(
            source=pl.lit("nightly_refit"),
            fitted_at=pl.lit(None, dtype=pl.Datetime("us")),
            window_end=pl.lit(as_of),
            age_sessions=pl.lit(0, dtype=pl.Int32),
            age_days=pl.lit(0.0),
        )
    else:
        latest = (
            fits.filter(pl.col("window_end") <= as_of)
            .sort("window_end", "fitted_at")
            .group_by("ticker", "model")
            .last()
            .select("ticker", "model", pl.col("fitted_at").cast(pl.Datetime("us")), "window_end")
        )
        table = pairs.join(latest, on=["ticker", "model"], how="left")
        table = table.with_columns(
            source=pl.when(pl.col("window_end").is_null())
            .then(pl.lit("no_stored_fit"))
            .otherwise(pl.lit("models.fits")),
            age_sessions=pl.Series(_sessions_since(table, as_of, calendar), dtype=pl.Int32),
            age_days=_days(as_of, pl.col("fitted_at")),
        )
    return (
        table.with_columns(
            as_of=pl.lit(as_of),
            horizon=pl.lit(ALL_HORIZONS, dtype=pl.Int32),
            family=pl.lit(STATISTICAL),
            model_id=pl.lit(None, dtype=pl.String),
        )
        .select(list(AGE_SCHEMA))
        .cast(AGE_SCHEMA)
    )  # type: ignore[arg-type]


def ml_age(champions: pl.DataFrame, as_of: dt.date, calendar: TradingCalendar | None = None) -> pl.DataFrame:
    """Age of each champion (``models.registry`` rows: ``family, horizon, model_id, trained_at,
    train_end``), named by its ``forecasts.ml_predictions`` model name."""
    calendar = calendar or trading_calendar()
    if champions.is_empty():
        return pl.DataFrame(schema=AGE_SCHEMA)
    table = champions.with_columns(
        pl.col("trained_at").cast(pl.Datetime("us")), window_end=pl.col("train_end")
    )
    return (
        table.with_columns(
            as_of=pl.lit(as_of),
            model=pl.col("family").replace_strict(MODEL_NAMES, default=pl.col("family")),
            ticker=pl.lit(POOLED),
            family=pl.lit(ML),
            source=pl.lit("models.registry"),
            fitted_at=pl.col("trained_at"),
            age_sessions=pl.Series(_sessions_since(table, as_of, calendar), dtype=pl.Int32),
            age_days=_days(as_of, pl.col("trained_at")),
        )
        .select(list(AGE_SCHEMA))
        .cast(AGE_SCHEMA)
        .sort("model", "horizon")
    )  # type: ignore[arg-type]
