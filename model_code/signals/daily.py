"""Signals for a run of as_of sessions, as the ``signals/daily`` asset makes them.

Pure compute over what the asset read: each source's forecasts (history and the day's), the
realized targets, the tickers with a bar each session. For every session ``s`` each source is
calibrated on its own calls made in the ``calibration_lookback`` sessions before ``s`` whose
target closed by ``s`` (the same window whatever the run's length, so a range run and nightly
runs agree), then :func:`~model_code.signals.router.route` picks one signal per ticker.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import polars as pl

from model_code.forecasting.losses import attach_realized, targets_long
from model_code.forecasting.predictions import target_dates
from model_code.forecasting.sessions import loss_window_start
from model_code.market_data.calendar import TradingCalendar, trading_calendar
from model_code.signals.calibration import Calibration, fit_calibration, forecast_calls
from model_code.signals.llm import LLM_CALLS_SCHEMA, LlmCall, LlmVerdict, build_prompt, llm_calls_frame
from model_code.signals.router import SIGNAL_SCHEMA, LlmAsk, RouterSettings, route

DEFAULT_CALIBRATION_LOOKBACK = 252  # sessions
OUTPUT_SCHEMA: dict[str, pl.DataType] = {**SIGNAL_SCHEMA, "target_date": pl.Date()}


def realized_calls(inputs: pl.DataFrame, targets: pl.DataFrame, horizon: int) -> pl.DataFrame:
    """``@signal_inputs`` rows as calls (``direction``, ``score``) with their realized ``actual``."""
    long = targets_long(targets, [horizon])
    with_h = inputs.with_columns(horizon=pl.lit(horizon, dtype=pl.Int32))
    return forecast_calls(attach_realized(with_h, long))


def signals_for_sessions(
    sessions: Sequence[dt.date],
    tickers: Mapping[dt.date, list[str]],
    inputs: pl.DataFrame,
    targets: pl.DataFrame,
    settings: RouterSettings,
    *,
    calibration_lookback: int = DEFAULT_CALIBRATION_LOOKBACK,
    extra_calls: Mapping[str, pl.DataFrame] | None = None,
    llm: LlmAsk | None = None,
    llm_cutoff: dt.date | None = None,
    governance_primary: str | None = None,
    calendar: TradingCalendar | None = None,
) -> pl.DataFrame:
    """One routed signal per ticker with a bar, per session (:data:`OUTPUT_SCHEMA`).

    Args:
        tickers: session -> the tickers that have a bar that session.
        inputs: ``@signal_inputs`` rows (``source, origin, ticker, model, target_date, yhat,
            lower_80, upper_80``) covering the lookback before the first session and the sessions.
        targets: ``features.targets`` rows covering the same dates.
        extra_calls: per source, calls that are not return forecasts (the LLM's answers:
            ``origin, target_date, direction, score, actual``), calibrated the same way.
        llm: the LLM hook (:class:`LlmAsker`); not asked for sessions on or before
            ``llm_cutoff``, the models' knowledge cutoff (they were trained on what followed).
    """
    calendar = calendar or trading_calendar()
    calls = realized_calls(inputs, targets, settings.horizon)
    out = []
    for as_of in sorted(sessions):
        since = loss_window_start(as_of, calibration_lookback + 1, calendar)
        window = calls.filter(pl.col("origin") >= since)
        calibrations: dict[str, Calibration | None] = {
            s: fit_calibration(window.filter(pl.col("source") == s), as_of) for s in ("ts", "ml")
        }
        for source, extra in (extra_calls or {}).items():
            calibrations[source] = fit_calibration(extra.filter(pl.col("origin") >= since), as_of)
        today = {s: calls.filter((pl.col("source") == s) & (pl.col("origin") == as_of)) for s in ("ts", "ml")}
        before_cutoff = llm_cutoff is not None and as_of <= llm_cutoff
        routed = route(
            as_of,
            sorted(tickers.get(as_of, [])),
            today,
            calibrations,
            settings,
            llm=None if before_cutoff else llm,
            llm_unavailable=(
                f"not asked ({as_of} is not after the models' knowledge cutoff {llm_cutoff})"
                if before_cutoff
                else "unavailable"
            ),
            governance_primary=governance_primary,
        )
        target = target_dates(as_of, [settings.horizon], calendar)[settings.horizon]
        out.append(routed.with_columns(target_date=pl.lit(target, dtype=pl.Date)))
    if not out:
        return pl.DataFrame(schema=OUTPUT_SCHEMA)
    return pl.concat(out)


@dataclass
class LlmAsker:
    """The router's LLM hook around ``ask(prompt) -> (verdict, calls)`` (``OllamaResource.ask``
    with one run budget): builds the point-in-time, by default anonymized prompt from the numbers
    the router passes, and keeps every attempt as ``signals.llm_calls`` rows."""

    ask: Callable[[str], tuple[LlmVerdict | None, list[LlmCall]]]
    horizon: int
    run_id: str
    anonymize: bool = True
    frames: list[pl.DataFrame] = field(default_factory=list)

    def __call__(self, as_of: dt.date, ticker: str, inputs: Mapping[str, float | None]):
        prompt = build_prompt(inputs, ticker=ticker, anonymize=self.anonymize, horizon=self.horizon)
        verdict, calls = self.ask(prompt)
        self.frames.append(
            llm_calls_frame(calls, run_id=self.run_id, as_of=as_of, ticker=ticker, verdict=verdict)
        )
        if verdict is None:
            return None
        return verdict.action, verdict.confidence, verdict.rationale, verdict.model

    def calls(self) -> pl.DataFrame:
        return pl.concat(self.frames) if self.frames else pl.DataFrame(schema=LLM_CALLS_SCHEMA)


def llm_answer_calls(answers: pl.DataFrame, targets: pl.DataFrame, horizon: int) -> pl.DataFrame:
    """Stored LLM answers (``as_of, ticker, action, stated_confidence`` of ``signals.llm_calls``)
    as calls for :func:`~model_code.signals.calibration.fit_calibration`: direction from the
    action, score = the stated confidence, ``actual`` realized on the target date."""
    trades = answers.filter(pl.col("action").is_in(["BUY", "SELL"]))
    if trades.is_empty():
        return pl.DataFrame(
            schema={
                "origin": pl.Date,
                "target_date": pl.Date,
                "direction": pl.Int8,
                "score": pl.Float64,
                "actual": pl.Float64,
            }
        )
    days = sorted(trades["as_of"].unique().to_list())
    ahead = {d: target_dates(d, [horizon])[horizon] for d in days}
    rows = trades.select(
        pl.col("as_of").alias("origin"),
        "ticker",
        pl.lit(horizon, dtype=pl.Int32).alias("horizon"),
        pl.col("as_of").replace_strict(ahead, return_dtype=pl.Date).alias("target_date"),
        pl.when(pl.col("action") == "BUY").then(1).otherwise(-1).cast(pl.Int8).alias("direction"),
        pl.col("stated_confidence").alias("score"),
    )
    return attach_realized(rows, targets_long(targets, [horizon]))
