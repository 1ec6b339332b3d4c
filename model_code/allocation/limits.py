"""Risk limits, enforced after every method (the seed's MODEL_RISK_CONTROLS).

In order: a kill switch (drawdown at or beyond the limit, latched until the caller resets it) or
an emergency stop (rolling hit rate below its floor) puts everything in cash; a risky name without
a BUY signal of at least the minimum confidence gets nothing; a risky name above the position cap
is cut to the cap; if the gross exposure (sum of weights, cash excluded) exceeds its cap every name
is scaled down by the same factor. Capping NEVER redistributes: what a limit removes goes to cash,
explicitly, so no limit can push another name over its own. The safe sleeve is exempt from the
position cap only. Weights are long only; non-finite or negative weights from a method count as 0.

``binding_limit`` per row is the first limit that changed that row's weight (``none`` when none
did); the row's note names every limit that did.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from model_code.allocation.settings import RiskLimits
from model_code.allocation.state import AllocationState

NONE = "none"
POSITION_CAP = "position_cap"
GROSS_CAP = "gross_cap"
MIN_CONFIDENCE = "min_confidence"
KILL_SWITCH = "kill_switch"
EMERGENCY_STOP = "emergency_stop"
BINDING_LIMITS = (NONE, POSITION_CAP, GROSS_CAP, MIN_CONFIDENCE, KILL_SWITCH, EMERGENCY_STOP)
# Scaling to the gross cap aims this much below it so float round-off cannot land above it.
_GROSS_MARGIN = 1e-12


@dataclass(frozen=True)
class Limited:
    """Weights after the limits, aligned with the input; ``binding`` and ``notes`` per row;
    ``halt``: KILL_SWITCH / EMERGENCY_STOP when the whole book is flat, else None."""

    weights: np.ndarray
    binding: tuple[str, ...]
    notes: tuple[str, ...]
    halt: str | None


def kill_switch_engaged(state: AllocationState, limits: RiskLimits) -> bool:
    """The latch's next value: engaged if it already was, or the drawdown reached the limit.
    Only the caller resets it (by passing ``kill_switch_engaged=False`` after a review)."""
    return state.kill_switch_engaged or state.drawdown >= limits.kill_switch_drawdown


def emergency_stop(state: AllocationState, limits: RiskLimits) -> bool:
    """True when a known rolling hit rate is below the floor (None / NaN: too few trades, no stop)."""
    hr = state.rolling_hit_rate
    return hr is not None and math.isfinite(hr) and hr < limits.min_hit_rate


def halt_reason(state: AllocationState, limits: RiskLimits) -> str | None:
    """KILL_SWITCH, EMERGENCY_STOP or None; the kill switch wins when both hold."""
    if kill_switch_engaged(state, limits):
        return KILL_SWITCH
    if emergency_stop(state, limits):
        return EMERGENCY_STOP
    return None


def halt_note(halt: str, state: AllocationState, limits: RiskLimits) -> str:
    if halt == KILL_SWITCH:
        return (
            f"kill switch: drawdown {state.drawdown:.1%} (limit {limits.kill_switch_drawdown:.0%}) "
            f"{'latched until reset' if state.kill_switch_engaged else 'reached'}; flat"
        )
    return f"emergency stop: rolling hit rate {state.rolling_hit_rate:.1%} < {limits.min_hit_rate:.0%}; flat"


def enforce(
    weights: np.ndarray,
    sleeves: tuple[str, ...] | list[str],
    confidence: np.ndarray,
    limits: RiskLimits,
    state: AllocationState,
) -> Limited:
    """Apply every limit to ``weights`` (one per name). ``confidence``: the BUY signal's confidence
    per name, NaN where the name has no BUY signal (safe-sleeve names need none)."""
    w = np.asarray(weights, dtype=float).copy()
    n = w.size
    conf = np.asarray(confidence, dtype=float)
    if len(sleeves) != n or conf.shape != (n,):
        raise ValueError("weights, sleeves and confidence must have one entry per name")
    binding = [NONE] * n
    notes: list[list[str]] = [[] for _ in range(n)]

    bad = ~np.isfinite(w) | (w < 0)
    for i in np.flatnonzero(bad):
        notes[i].append(f"method weight {w[i]!r} is not a finite long weight; 0")
    w[bad] = 0.0

    halt = halt_reason(state, limits)
    if halt is not None:
        note = halt_note(halt, state, limits)
        return Limited(np.zeros(n), (halt,) * n, (note,) * n, halt)

    def bind(i: int, limit: str, note: str) -> None:
        if binding[i] == NONE:
            binding[i] = limit
        notes[i].append(note)

    risky = np.array([s != "safe" for s in sleeves], dtype=bool)
    for i in np.flatnonzero(risky & (w > 0)):
        if not (np.isfinite(conf[i]) and conf[i] >= limits.min_confidence):
            shown = "no BUY signal" if not np.isfinite(conf[i]) else f"confidence {conf[i]:.3f}"
            bind(i, MIN_CONFIDENCE, f"{shown} < {limits.min_confidence}: {w[i]:.4f} -> 0 (cash)")
            w[i] = 0.0
    for i in np.flatnonzero(risky & (w > limits.max_position)):
        bind(i, POSITION_CAP, f"position cap {limits.max_position:.0%}: {w[i]:.4f} -> cap, excess to cash")
        w[i] = limits.max_position
    gross = float(w.sum())
    if gross > limits.max_gross:
        scale = limits.max_gross / gross * (1.0 - _GROSS_MARGIN)
        for i in np.flatnonzero(w > 0):
            bind(
                i,
                GROSS_CAP,
                f"gross cap {limits.max_gross:.0%}: gross {gross:.4f} scaled x{scale:.4f}, rest to cash",
            )
        w = w * scale
    return Limited(w, tuple(binding), tuple("; ".join(n_) for n_ in notes), None)
