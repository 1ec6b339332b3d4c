"""Rolling-origin (walk-forward) evaluation of the statistical forecasters and their ensemble.

Scheme: origins are sessions (by default the first session of each month). At every origin
each model is *refit* on the last ``history`` daily log returns up to and including the
origin (tickers with fewer than ``min_history`` returns, or no bar on the origin, are
skipped) and forecasts every horizon (1, 5, 21, 63 sessions) from there. Nothing dated after
the origin is used to fit or to weight.

The ensemble at origin ``o`` weights the models by inverse MSE of *earlier* origins' forecasts
that had been realized by ``o`` (``target_date <= o``), pooled over all such forecasts, on the
(origin, ticker, horizon) keys where every model produced a forecast; equal weights where no
forecast of that horizon has been realized yet. That rule is
:func:`~model_code.forecasting.losses.realized_losses`, the same function the nightly
``forecasts/predictions`` asset weights its ensemble with (there over a trailing lookback).

Two refit policies (``policy``). ``"nightly"``: every model is refitted at every origin, as
described above. ``"stored"``, the production policy (:mod:`model_code.forecasting.stored`):
every model is refitted on a cadence of ``refit_every`` sessions (at the sessions whose calendar
ordinal is a multiple of it, on the data up to that session: the scheduled ``forecasts/fits``
refit), and each origin applies the latest such fit to the data up to the origin with the
estimates fixed; a ticker without a fit, or one older than ``max_age`` sessions, is fitted on
first sight, exactly as the nightly ``forecasts/predictions`` asset does (and, as there, a fit
that failed at an earlier origin is left to the next scheduled refit). The ensemble rule is
the same under both.

The realized target is ``actual = log(px[target_date] / px[origin])``, ``px`` = coalesce(
adj_close, close) — ``fwd_ret_{h}`` of :func:`~model_code.features.targets.build_targets`. It is
left NULL where the ticker's ``h``-th next bar is not the forecast's calendar target session
(a gap in the ticker's bars) or not known yet.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np
import polars as pl

from model_code.evaluation.accuracy import accuracy_table
from model_code.evaluation.diebold_mariano import dm_test
from model_code.features.targets import build_targets
from model_code.forecasting.batch import ModelFactory, TickerResult
from model_code.forecasting.losses import KEY, attach_realized, realized_losses, targets_long
from model_code.forecasting.panel import PanelFactory
from model_code.forecasting.predictions import (
    PREDICTION_SCHEMA,
    ensemble_frame,
    predictions_frame,
)
from model_code.forecasting.sessions import forecast_session
from model_code.forecasting.stored import (
    DEFAULT_MAX_AGE,
    FitStore,
    refit_universe,
)
from model_code.horizons import HORIZONS
from model_code.market_data.calendar import TradingCalendar, trading_calendar

BENCHMARK = "random_walk"
POLICIES = ("nightly", "stored")
# the forecasts.predictions columns with as_of named origin, plus the realized return
OUTPUT_COLUMNS: tuple[str, ...] = (
    "origin",
    *(c for c in PREDICTION_SCHEMA if c != "as_of"),
    "actual",
)
OriginHook = Callable[[dt.date, list[TickerResult]], None]


def monthly_origins(start: dt.date, end: dt.date, calendar: TradingCalendar | None = None) -> list[dt.date]:
    """The first trading session of each month, for those sessions in ``[start, end]``.

    A ``start`` after the first session of its month skips that month.
    """
    calendar = calendar or trading_calendar()
    days = calendar.sessions_in_range(start.replace(day=1), end)
    firsts: dict[tuple[int, int], dt.date] = {}
    for d in (dt.date.fromisoformat(str(s)) for s in days):
        firsts.setdefault((d.year, d.month), d)
    return sorted(d for d in firsts.values() if d >= start)


def realized_targets(bars: pl.DataFrame, horizons: Sequence[int], origins: Iterable[dt.date]) -> pl.DataFrame:
    """Long ``(ticker, origin, horizon, realized_date, actual)`` from ``build_targets`` at ``origins``."""
    return targets_long(build_targets(bars, horizons).filter(pl.col("date").is_in(list(origins))), horizons)


def _attach_actual(preds: pl.DataFrame, targets: pl.DataFrame) -> pl.DataFrame:
    return attach_realized(preds, targets).select(OUTPUT_COLUMNS)


def run_walk_forward(
    bars: pl.DataFrame,
    models: Mapping[str, ModelFactory],
    origins: Sequence[dt.date],
    *,
    history: int = 1000,
    min_history: int = 252,
    horizons: Sequence[int] = HORIZONS,
    workers: int | None = None,
    calendar: TradingCalendar | None = None,
    on_origin: OriginHook | None = None,
    panel_models: Mapping[str, PanelFactory] | None = None,
    policy: str = "nightly",
    refit_every: int | None = 5,
    max_age: int = DEFAULT_MAX_AGE,
) -> pl.DataFrame:
    """Forecast ``horizons`` at every origin under ``policy``, add the ensemble and realizations.

    Args:
        bars: clean canonical bars (unique (ticker, date) keys), including dates after the last
            origin if realized targets are wanted.
        models: picklable factories (e.g. ``catalog.select([...])``).
        origins: forecast origins (sessions); processed in ascending order.
        history, min_history: at most / at least this many daily returns per fit.
        workers: processes for :func:`forecast_universe` (``None`` = all cores).
        on_origin: called with each origin and its fit results (progress, failure counts).
        panel_models: whole-universe models (``catalog.select_panel``), fitted once per origin.
        policy: ``"nightly"`` (refit at every origin) or ``"stored"`` (module docstring).
        refit_every: the stored policy's scheduled refit cadence in sessions (``None``: only
            first-sight and ``max_age`` refits, as the nightly asset alone does).
        max_age: sessions after which the stored policy refits a fit before using it.

    Returns:
        One row per (origin, ticker, model, horizon), columns :data:`OUTPUT_COLUMNS`, with the
        ``"ensemble"`` model included; ``actual`` NULL where not realized.
    """
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
    calendar = calendar or trading_calendar()
    origins = sorted(set(origins))
    targets = realized_targets(bars, horizons, origins)
    done: list[pl.DataFrame] = []
    out: list[pl.DataFrame] = []
    store, refitted_at, failed = FitStore(), None, set()
    for origin in origins:
        if policy == "stored":
            when = _scheduled_refit(origin, refit_every, calendar)
            if when is not None and when != refitted_at:
                store = _refit_all(store, bars, when, models, panel_models, history, min_history, workers)
                refitted_at = when
        results, dates, _ = forecast_session(
            bars, origin, models, store if policy == "stored" else None, failed, max_age=max_age,
            history=history, min_history=min_history, workers=workers, panel_models=panel_models,
            horizons=horizons, calendar=calendar,
        )  # fmt: skip
        if policy == "stored":
            store.keep_latest()
        if not results:
            continue
        if on_origin is not None:
            on_origin(origin, results)
        preds = predictions_frame(results, origin, dates)
        if preds.is_empty():
            continue
        losses = realized_losses(pl.concat(done) if done else pl.DataFrame(), origin)
        ens, _ = ensemble_frame(preds, losses)
        evaluated = _attach_actual(preds, targets)
        done.append(evaluated)
        out += [evaluated, _attach_actual(ens, targets)]
    if not out:
        empty = predictions_frame([], dt.date.min, {}).rename({"as_of": "origin"})
        return empty.with_columns(pl.lit(None, dtype=pl.Float64).alias("actual")).select(OUTPUT_COLUMNS)
    return pl.concat(out).sort("origin", "ticker", "model", "horizon")


def _scheduled_refit(origin: dt.date, every: int | None, calendar: TradingCalendar) -> dt.date | None:
    """The latest session on or before ``origin`` whose calendar ordinal is a multiple of ``every``."""
    if not every:
        return None
    idx = int(calendar.session_index(np.array([origin], dtype="datetime64[D]"))[0])
    sessions = calendar.sessions_in_range(origin - dt.timedelta(days=2 * every + 10), origin)
    ords = calendar.session_index(sessions)
    hits = sessions[(ords % every == 0) & (ords <= idx)]
    return dt.date.fromisoformat(str(hits[-1])) if hits.size else None


def _refit_all(
    store: FitStore,
    bars: pl.DataFrame,
    when: dt.date,
    models: Mapping[str, ModelFactory],
    panel_models: Mapping[str, PanelFactory] | None,
    history: int,
    min_history: int,
    workers: int | None,
) -> FitStore:
    """The scheduled refit at ``when``: every model on every ticker with enough returns then."""
    known = bars.filter(pl.col("date") <= when)
    tickers = known.filter(pl.col("date") == when)["ticker"].unique().sort().to_list()
    names = [*models, *(panel_models or {})]
    fits, _ = refit_universe(
        known,
        when,
        {n: tickers for n in names},
        models,
        panel_models,
        history=history,
        min_history=min_history,
        workers=workers,
    )
    for fit in fits:
        store.add(fit)
    store.keep_latest()
    return store


def origin_steps(horizon: int, origins: Sequence[dt.date], calendar: TradingCalendar | None = None) -> int:
    """The horizon in steps of the origin series: ``ceil(h / median sessions between origins)``.

    Forecasts from origins fewer than ``h`` sessions apart overlap, so their errors are
    correlated for that many origin steps; this is the ``h`` to pass to :func:`dm_test`.
    """
    if len(origins) < 2:
        return 1
    calendar = calendar or trading_calendar()
    idx = calendar.session_index(np.array(sorted(origins), dtype="datetime64[D]"))
    spacing = float(np.median(np.diff(idx)))
    return max(1, math.ceil(horizon / spacing)) if spacing > 0 else 1


def compare_to_random_walk(evaluated: pl.DataFrame, calendar: TradingCalendar | None = None) -> pl.DataFrame:
    """Per (model, horizon): RMSE ratio and HLN-corrected DM test against the random walk.

    Both are computed on the rows where the model and the random walk have a realized forecast
    for the same (origin, ticker, horizon). The DM test runs on the time series over origins of
    the *cross-sectional mean* squared error: same-date errors of different tickers are strongly
    correlated (one market), so treating ticker rows as independent observations would inflate
    ``n`` and overstate significance; one loss per origin keeps the test honest. Its horizon is
    in origin steps (:func:`origin_steps`). A negative ``dm_stat`` favours the model. The pooled
    :func:`accuracy_table` columns (all of the model's realized rows) are appended.
    """
    valid = evaluated.filter(pl.col("actual").is_finite() & pl.col("yhat").is_finite()).with_columns(
        ((pl.col("yhat") - pl.col("actual")) ** 2).alias("_se")
    )
    bench = valid.filter(pl.col("model") == BENCHMARK).select(*KEY, pl.col("_se").alias("_se_rw"))
    per_origin = (
        valid.join(bench, on=list(KEY), how="inner")
        .group_by("model", "horizon", "origin")
        .agg(pl.col("_se").mean(), pl.col("_se_rw").mean(), pl.len().alias("_n"))
        .sort("model", "horizon", "origin")
    )
    origins = sorted(valid["origin"].unique().to_list())
    rows = []
    for (model, horizon), block in per_origin.group_by("model", "horizon", maintain_order=True):
        steps = origin_steps(int(horizon), origins, calendar)
        w = block["_n"].to_numpy()
        ratio = math.sqrt(float(w @ block["_se"].to_numpy()) / float(w @ block["_se_rw"].to_numpy()))
        res = dm_test(block["_se"].to_numpy(), block["_se_rw"].to_numpy(), steps)
        rows.append(
            {
                "model": model,
                "horizon": int(horizon),
                "n_origins": block.height,
                "dm_steps": steps,
                "rmse_ratio": ratio,
                "dm_stat": res.stat,
                "dm_p": res.p_value,
            }
        )
    schema = {
        "model": pl.String,
        "horizon": pl.Int32,
        "n_origins": pl.Int64,
        "dm_steps": pl.Int64,
        "rmse_ratio": pl.Float64,
        "dm_stat": pl.Float64,
        "dm_p": pl.Float64,
    }
    table = pl.DataFrame(rows, schema=schema)
    pooled = accuracy_table(valid.with_columns(pl.col("horizon").cast(pl.Int32)))
    return table.join(pooled, on=["model", "horizon"], how="left").sort("model", "horizon")
