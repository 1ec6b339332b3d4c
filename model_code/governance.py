"""Model governance: promote a challenger only on significant out-of-sample uplift, revert on decay.

One gate for every family (forecasters, ML models, strategies), the seed's Phase 7 criteria.
A challenger replaces the incumbent only if, on the same out-of-sample origins after purging,

1. it lowers the loss significantly: Diebold–Mariano (HLN) statistic < 0 with one-sided
   p < ``dm_alpha`` (0.05), on aligned per-origin losses;
2. its deflated Sharpe ratio is at least ``min_dsr`` (0.95), counting every trial ever run;
3. its profit factor rises by at least ``min_profit_factor_uplift`` (3 %) over the incumbent's;
4. its maximum drawdown grows by at most ``max_drawdown_growth`` (50 %).

The first champion of a family faces the same gate against the family's baseline (the random
walk for forecasts, the equal-weight universe for strategies): with no candidate clearing it
there is no champion, and the family abstains, saying why. A champion reverts to the previous
one when its record since promotion is significantly worse than the previous champion's on
the same origins (DM one-sided p < ``revert_alpha``). Every decision carries its evidence.

Units: losses are per-origin mean losses (e.g. squared log-return errors); returns are daily
simple returns of the strategy the model drives; drawdowns are positive fractions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import polars as pl

from model_code.backtest.metrics import (
    MIN_PERIODS,
    deflated_sharpe_ratio,
    max_drawdown,
    profit_factor,
    sharpe_ratio,
)
from model_code.evaluation.diebold_mariano import dm_test

Action = Literal["promote", "refuse", "revert", "keep", "abstain"]
ACTIONS: tuple[str, ...] = ("promote", "refuse", "revert", "keep", "abstain")
# The share of tickers the gate's strategy holds each day (top quintile of the scores).
TOP_QUANTILE = 0.2


@dataclass(frozen=True)
class GateSettings:
    dm_alpha: float = 0.05
    min_dsr: float = 0.95
    min_profit_factor_uplift: float = 0.03
    max_drawdown_growth: float = 0.5
    revert_alpha: float = 0.05


@dataclass(frozen=True)
class Record:
    """A model's out-of-sample record on aligned origins: what the gate compares.

    ``losses``: per-origin losses (same origins as the rival's, NaN where missing);
    ``dsr``: its deflated Sharpe ratio; ``profit_factor`` and ``max_drawdown`` of the strategy it
    drives (drawdown as a positive fraction); ``horizon_steps``: the loss horizon in origin steps
    (overlapping forecasts make consecutive losses dependent; see ``dm_test``).
    """

    name: str
    losses: np.ndarray
    dsr: float
    profit_factor: float
    max_drawdown: float
    horizon_steps: int = 1


@dataclass(frozen=True)
class Decision:
    """What governance decided about ``subject`` against ``rival``, why, and on which numbers."""

    action: Action
    subject: str
    rival: str
    reasons: tuple[str, ...]
    evidence: dict[str, float] = field(default_factory=dict)

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)


def _one_sided(challenger: Record, rival: Record) -> tuple[float, float]:
    """DM statistic of challenger − rival losses and the one-sided p that the challenger is better."""
    res = dm_test(challenger.losses, rival.losses, max(challenger.horizon_steps, rival.horizon_steps))
    if not math.isfinite(res.stat):
        return math.nan, 1.0
    p = res.p_value / 2 if res.stat < 0 else 1.0 - res.p_value / 2
    return res.stat, p


def promotion(challenger: Record, incumbent: Record, settings: GateSettings | None = None) -> Decision:
    """Promote ``challenger`` over ``incumbent`` (the champion, or the baseline for a family's
    first champion) only when all four criteria hold; otherwise refuse, naming each failure."""
    s = settings or GateSettings()
    stat, p = _one_sided(challenger, incumbent)
    pf_uplift = (
        challenger.profit_factor / incumbent.profit_factor - 1.0
        if incumbent.profit_factor > 0 and math.isfinite(incumbent.profit_factor)
        else (math.inf if challenger.profit_factor > incumbent.profit_factor else 0.0)
    )
    dd_growth = (
        challenger.max_drawdown / incumbent.max_drawdown - 1.0
        if incumbent.max_drawdown > 0
        else (0.0 if challenger.max_drawdown <= 0 else math.inf)
    )
    failures = []
    if not p < s.dm_alpha:
        failures.append(f"loss not significantly lower (DM {stat:.2f}, one-sided p {p:.3f} >= {s.dm_alpha})")
    if not challenger.dsr >= s.min_dsr:
        failures.append(f"DSR {challenger.dsr:.3f} < {s.min_dsr}")
    if not pf_uplift >= s.min_profit_factor_uplift:
        failures.append(f"profit factor uplift {pf_uplift:+.1%} < {s.min_profit_factor_uplift:+.0%}")
    if not dd_growth <= s.max_drawdown_growth:
        failures.append(f"drawdown grows {dd_growth:+.0%} > {s.max_drawdown_growth:+.0%}")
    evidence = {
        "dm_stat": stat,
        "dm_p_one_sided": p,
        "dsr": challenger.dsr,
        "profit_factor_uplift": pf_uplift,
        "drawdown_growth": dd_growth,
        "n_origins": float(np.isfinite(challenger.losses - incumbent.losses).sum()),
    }
    if failures:
        return Decision("refuse", challenger.name, incumbent.name, tuple(failures), evidence)
    passed = (
        f"loss lower (DM {stat:.2f}, p {p:.3f})",
        f"DSR {challenger.dsr:.3f}",
        f"profit factor {pf_uplift:+.1%}",
        f"drawdown {dd_growth:+.0%}",
    )
    return Decision("promote", challenger.name, incumbent.name, passed, evidence)


def first_champion(
    candidates: list[Record], baseline: Record, settings: GateSettings | None = None
) -> Decision:
    """The first champion of a family: the best-DSR candidate that clears the gate against the
    baseline; with none, ``abstain`` naming why each was refused."""
    refusals = []
    for candidate in sorted(candidates, key=lambda r: -r.dsr if math.isfinite(r.dsr) else math.inf):
        decision = promotion(candidate, baseline, settings)
        if decision.action == "promote":
            return decision
        refusals.append(f"{candidate.name}: {decision.reason}")
    if not candidates:
        refusals.append("no candidate")
    return Decision("abstain", "none", baseline.name, tuple(refusals))


def reversion(champion: Record, previous: Record, settings: GateSettings | None = None) -> Decision:
    """Revert to ``previous`` when the champion's record since promotion is significantly worse
    on the same origins (one-sided DM p < ``revert_alpha``); otherwise keep it."""
    s = settings or GateSettings()
    stat, p = _one_sided(previous, champion)  # is the previous champion significantly better?
    evidence = {"dm_stat": stat, "dm_p_one_sided": p}
    if p < s.revert_alpha:
        return Decision(
            "revert",
            previous.name,
            champion.name,
            (
                f"{champion.name} fell significantly below {previous.name} since promotion (DM {stat:.2f}, p {p:.3f})",
            ),
            evidence,
        )
    return Decision("keep", champion.name, previous.name, (f"no significant decay (p {p:.3f})",), evidence)


def top_quantile_returns(
    frame: pl.DataFrame, *, score: str = "score", ret: str = "ret", quantile: float = TOP_QUANTILE
) -> pl.DataFrame:
    """``(date, ret)``: per date, the equal-weight mean of ``ret`` (next-session simple returns)
    over the tickers whose ``score`` ranks in the top ``quantile`` (at least one ticker).

    The strategy a model's scores drive for the gate: long the top quintile, rebalanced daily.
    A date on which every score ties has no ranking and holds every ticker, so a constant
    forecast (the random walk) is the equal-weight universe. Rows with a NULL/NaN score or
    return are dropped first.
    """
    ok = frame.filter(pl.col(score).is_finite() & pl.col(ret).is_finite())
    n = pl.len().over("date")
    k = (n * quantile).ceil().clip(lower_bound=1)
    ties = pl.col(score).n_unique().over("date") == 1
    held = ties | (pl.col(score).rank("ordinal", descending=True).over("date") <= k)
    return ok.filter(held).group_by("date").agg(pl.col(ret).mean().alias("ret")).sort("date")


def _safe(metric, *args: object) -> float:
    try:
        return float(metric(*args))
    except ValueError:  # too short, or a NaN return
        return math.nan


def strategy_sharpe(returns: np.ndarray) -> float:
    """Per-period Sharpe of daily ``returns`` (NaN when too short or without dispersion)."""
    return _safe(sharpe_ratio, np.asarray(returns, dtype=np.float64))


def build_record(
    name: str,
    losses: np.ndarray,
    returns: np.ndarray,
    *,
    trial_sharpes: list[float] | None = None,
    horizon_steps: int = 1,
) -> Record:
    """A :class:`Record` from per-origin ``losses`` and the daily simple ``returns`` of the
    strategy the model drives (``model_code.backtest.metrics`` conventions).

    ``trial_sharpes``: per-period Sharpes of every other configuration tried for the same
    family and horizon; this record's own Sharpe is added, so N counts it (one trial: DSR =
    PSR(0)). Too short a record (fewer than ``MIN_PERIODS`` returns) has NaN DSR, profit factor
    and drawdown, which fail the gate.
    """
    r = np.asarray(returns, dtype=np.float64)
    r = r[np.isfinite(r)]
    own = strategy_sharpe(r)
    trials = [t for t in (trial_sharpes or []) if math.isfinite(t)]
    if math.isfinite(own):
        trials.append(own)
    enough = r.size >= MIN_PERIODS and bool(trials)
    return Record(
        name=name,
        losses=np.asarray(losses, dtype=np.float64),
        dsr=_safe(deflated_sharpe_ratio, r, trials) if enough else math.nan,
        profit_factor=_safe(profit_factor, r) if r.size >= MIN_PERIODS else math.nan,
        max_drawdown=_safe(max_drawdown, r) if r.size >= MIN_PERIODS else math.nan,
        horizon_steps=max(1, int(horizon_steps)),
    )


def record_summary(record: Record) -> dict[str, float]:
    """The numbers of ``record`` worth storing beside a decision (evidence)."""
    losses = record.losses[np.isfinite(record.losses)]
    return {
        "mean_loss": float(losses.mean()) if losses.size else math.nan,
        "n_losses": float(losses.size),
        "dsr": record.dsr,
        "profit_factor": record.profit_factor,
        "max_drawdown": record.max_drawdown,
    }
