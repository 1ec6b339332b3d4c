"""The signal router: one signal per ticker and as_of, its source, confidence and reason.

Order: the time-series ensemble first (or the ML champion first when ``primary`` is ``ml``, or
when it is ``governance`` and the latest router decision in ``models.decisions`` left ML
primary: :mod:`model_code.signals.primary`),
the other statistical source second, the LLM last and only for tickers neither gave a
confident view, at most ``llm_max_tickers`` a run ranked by the largest forecast edge. A source
gives a view when it has a forecast for the ticker, its calibrated confidence is at least
``min_confidence`` and its edge ``|yhat|`` exceeds the round-trip cost; otherwise it declines,
and the stored ``path`` says why for every source on the way. No view at all -> HOLD, source
``none``.

Units: ``yhat`` and ``expected_return`` are log returns over ``horizon`` sessions;
``expected_return`` is net of the round-trip cost (``|yhat| - cost``, signed by the action).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import polars as pl

from model_code.costs import BPS, TradingCosts
from model_code.signals.calibration import NO_VIEW, Calibration, forecast_calls

SOURCES = ("ts", "ml", "llm")
Primary = Literal["ts", "ml", "governance"]
SIGNAL_SCHEMA: dict[str, pl.DataType] = {
    "as_of": pl.Date(),
    "ticker": pl.String(),
    "horizon": pl.Int32(),
    "action": pl.String(),
    "expected_return": pl.Float64(),
    "confidence": pl.Float64(),
    "source": pl.String(),
    "model_id": pl.String(),
    "reason": pl.String(),
    "path": pl.String(),
}
# (as_of, ticker, numbers the prompt may use) -> (action, stated confidence, rationale, model) or None
LlmAsk = Callable[[dt.date, str, Mapping[str, float | None]], tuple[str, float, str, str] | None]


@dataclass(frozen=True)
class RouterSettings:
    """Feature flags and thresholds (``config/signals.yaml`` ``router:``, overridable per run)."""

    enabled: Mapping[str, bool] = field(default_factory=lambda: {"ts": True, "ml": True, "llm": False})
    primary: Primary = "ts"
    min_confidence: float = 0.55
    horizon: int = 5
    costs: TradingCosts = field(default_factory=TradingCosts)
    llm_max_tickers: int = 20
    # source -> why it has no forecasts at all (e.g. "no champion (governance abstain ...)"),
    # written in the path instead of "no forecast" on a session the source is silent.
    unavailable: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.enabled) - set(SOURCES)
        if unknown:
            raise ValueError(f"unknown signal source(s) {sorted(unknown)}; known: {SOURCES}")
        if self.primary not in ("ts", "ml", "governance"):
            raise ValueError(f"primary must be ts, ml or governance, got {self.primary!r}")
        if not 0.5 <= self.min_confidence < 1:
            raise ValueError(f"min_confidence must be in [0.5, 1), got {self.min_confidence}")

    def order(self, governance_primary: str | None = None) -> list[str]:
        """The sources to ask, in order. ``governance`` reads the primary the latest router
        decision left (``governance_primary``: ``ts`` or ``ml``); without one it means ``ts``."""
        primary = (governance_primary or "ts") if self.primary == "governance" else self.primary
        statistical = ["ml", "ts"] if primary == "ml" else ["ts", "ml"]
        asked = [s for s in statistical if self.enabled.get(s, False)]
        return asked + (["llm"] if self.enabled.get("llm", False) else [])


LABELS = {"ts": "ts ensemble", "ml": "ml champion", "llm": "llm"}


@dataclass
class _Choice:
    action: str = "HOLD"
    expected_return: float | None = 0.0
    confidence: float = NO_VIEW
    source: str = "none"
    model_id: str | None = None
    reason: str = ""
    path: list[str] = field(default_factory=list)


def route(
    as_of: dt.date,
    tickers: list[str],
    forecasts: Mapping[str, pl.DataFrame],
    calibrations: Mapping[str, Calibration | None],
    settings: RouterSettings,
    *,
    llm: LlmAsk | None = None,
    llm_unavailable: str = "unavailable",
    governance_primary: str | None = None,
) -> pl.DataFrame:
    """Route every ticker to one signal (:data:`SIGNAL_SCHEMA` rows, sorted by ticker).

    ``forecasts[source]``: that source's forecasts at ``as_of`` for the trading horizon
    (``ticker, model, yhat, lower_80, upper_80``), ``model`` being stored as ``model_id``.
    ``calibrations[source]``: fitted on that source's realized past calls (None: too few).
    ``llm``: asked for tickers no earlier source gave a view on; None disables it whatever
    the flag says (the path then says ``llm: <llm_unavailable>``).
    """
    cost = settings.costs.round_trip_log
    cost_bp = settings.costs.round_trip_bps
    order = settings.order(governance_primary)
    views = {s: _views(forecasts.get(s), calibrations.get(s)) for s in order if s != "llm"}
    choices: dict[str, _Choice] = {}
    for ticker in tickers:
        choice = _Choice()
        for source in (s for s in order if s != "llm"):
            row = views[source].get(ticker)
            if row is None:
                silent = not views[source] and source in settings.unavailable
                choice.path.append(f"{source}: {settings.unavailable[source] if silent else 'no forecast'}")
                continue
            yhat, conf, model_id = row
            edge_bp = abs(yhat) / BPS
            if conf < settings.min_confidence:
                why = "no calibration yet" if calibrations.get(source) is None else "below threshold"
                choice.path.append(f"{source}: conf {conf:.2f} < {settings.min_confidence:.2f} ({why})")
                continue
            if abs(yhat) <= cost:
                choice.path.append(f"{source}: edge {edge_bp:.0f} bp <= cost {cost_bp:.0f} bp")
                continue
            action = "BUY" if yhat > 0 else "SELL"
            choice = _Choice(
                action=action,
                expected_return=float(np.sign(yhat) * (abs(yhat) - cost)),
                confidence=conf,
                source=source,
                model_id=model_id,
                reason=(
                    f"{LABELS[source]}: conf {conf:.2f} >= {settings.min_confidence:.2f}, "
                    f"edge {edge_bp:.0f} bp > cost {cost_bp:.0f} bp"
                ),
                path=[*choice.path, f"{source}: {action}"],
            )
            break
        choices[ticker] = choice
    if "llm" in order:
        _ask_llm(as_of, choices, views, calibrations.get("llm"), settings, llm, llm_unavailable)
    elif settings.enabled.get("llm", False) is False:
        for choice in choices.values():
            if choice.source == "none":
                choice.path.append("llm: off")
    rows = []
    for ticker in sorted(choices):
        c = choices[ticker]
        if c.source == "none":
            c.reason = "HOLD: no source gave a confident view (" + "; ".join(c.path) + ")"
            c.expected_return = 0.0
        rows.append(
            {
                "as_of": as_of,
                "ticker": ticker,
                "horizon": settings.horizon,
                "action": c.action,
                "expected_return": c.expected_return,
                "confidence": c.confidence,
                "source": c.source,
                "model_id": c.model_id,
                "reason": c.reason,
                "path": " -> ".join(c.path),
            }
        )
    return pl.DataFrame(rows, schema=SIGNAL_SCHEMA)


def _views(
    frame: pl.DataFrame | None, calibration: Calibration | None
) -> dict[str, tuple[float, float, str]]:
    """ticker -> (yhat, calibrated confidence, model id) for one source's forecasts."""
    if frame is None or frame.is_empty():
        return {}
    calls = forecast_calls(frame)
    score = calls["score"].fill_null(np.nan).to_numpy()
    conf = calibration.confidence(score) if calibration is not None else np.full(len(score), NO_VIEW)
    return {
        t: (float(y), float(c), str(m))
        for t, y, c, m in zip(calls["ticker"], calls["yhat"], conf, calls["model"], strict=True)
    }


def _ask_llm(
    as_of: dt.date,
    choices: dict[str, _Choice],
    views: Mapping[str, Mapping[str, tuple[float, float, str]]],
    calibration: Calibration | None,
    settings: RouterSettings,
    llm: LlmAsk | None,
    unavailable: str,
) -> None:
    undecided = [t for t, c in choices.items() if c.source == "none"]
    if llm is None:
        for t in undecided:
            choices[t].path.append(f"llm: {unavailable}")
        return

    def edge(ticker: str) -> float:
        sizes = [abs(v[ticker][0]) for v in views.values() if ticker in v]
        return max(sizes, default=-1.0)

    ranked = sorted(undecided, key=lambda t: (-edge(t), t))
    for rank, ticker in enumerate(ranked):
        choice = choices[ticker]
        if rank >= settings.llm_max_tickers:
            choice.path.append(f"llm: not asked (only the {settings.llm_max_tickers} largest edges are)")
            continue
        inputs = {f"{s}_yhat": v[ticker][0] for s, v in views.items() if ticker in v}
        answer = llm(as_of, ticker, inputs)
        if answer is None:
            choice.path.append("llm: no valid answer (every model failed or the budget was spent)")
            continue
        action, stated, rationale, model = answer
        if action == "HOLD":
            choice.path.append(f"llm: HOLD ({model})")
            continue
        conf = float(calibration.confidence(np.array([stated]))[0]) if calibration is not None else NO_VIEW
        if conf < settings.min_confidence:
            why = "no calibration yet" if calibration is None else "below threshold"
            choice.path.append(f"llm: {action} at conf {conf:.2f} < {settings.min_confidence:.2f} ({why})")
            continue
        choices[ticker] = _Choice(
            action=action,
            expected_return=None,  # the LLM gives a direction, not a return forecast
            confidence=conf,
            source="llm",
            model_id=model,
            reason=f"llm {model}: {action}, conf {conf:.2f} >= {settings.min_confidence:.2f}: {rationale[:200]}",
            path=[*choice.path, f"llm: {action}"],
        )
