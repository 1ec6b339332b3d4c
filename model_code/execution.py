"""The execution model, defined once: how a decision at close T becomes fills, for the vectorized
backtester (:mod:`model_code.backtest.engine`, every day) and the paper ledger (one day at a time).

Timing: a decision made at close T fills at the T+1 open, or at the T+1 close where the ticker has
no open (close-only tickers); with no bar at T+1 it does not fill (recorded as unfilled). Filling
at T itself (the decision's own close) is look-ahead and is only possible with
``ExecutionConfig(fill_delay=0, same_bar=True)``; every use warns (:class:`SameBarWarning`).

Units: quantities in shares (signed, + buy / - sell; fractional allowed), prices in the listing
currency per share, ADV in currency per day (trailing mean of ``close * volume``), sigma as the
daily standard deviation of simple close-to-close returns. Everything the quantities depend on is
known at the decision's close T (ADV, sigma, the close): only the cost in currency uses the fill
price. Costs are the :class:`~model_code.costs.TradingCosts` bps per side on the traded notional at
the fill price, plus the optional square-root impact ``k * sigma * sqrt(|q| / ADV_shares)`` as a
fraction of that notional (``ADV_shares = ADV / close_T``, see :func:`adv_shares`).

All functions are pure NumPy. The preparations (:func:`fill_prices`, :func:`trailing_adv`,
:func:`adv_shares`, :func:`trailing_volatility`, :func:`fill_limits`, :func:`impact_rates`,
:func:`sizing_factors`) take any shape, one day (one value per ticker) or a whole date x ticker
panel; :func:`fill` and :func:`orders_from_factors` are one day's step. The ledger calls
:func:`orders_from_weights` then :func:`execute` (both compositions of the above) day by day; the
backtester prepares every day at once and steps :func:`fill` through the days: the same
arithmetic, so the two agree by construction.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from model_code.costs import BPS, TradingCosts

DEFAULT_PARTICIPATION = 0.10
DEFAULT_WINDOW = 20


class SameBarWarning(UserWarning):
    """Fills at the decision's own bar: the result has seen the price it trades at."""


SAME_BAR_MESSAGE = "same-bar fills (fill_delay=0): decisions fill at their own close, which is look-ahead"


@dataclass(frozen=True)
class ExecutionConfig:
    """How orders fill.

    Attributes:
        costs: commission + slippage in bps per side (defaults 5 + 5, from ``TradingCosts``).
        impact_k: square-root impact coefficient ``k``; 0 switches impact off.
        participation_cap: largest fill as a fraction of ADV (in shares at close T); ``None``: no cap.
        window: sessions in the trailing ADV and volatility (up to and including T).
        fill_delay: 1 (next bar, the default) or 0 (same bar: requires ``same_bar=True``).
        same_bar: the explicit opt-in to ``fill_delay=0``.
    """

    costs: TradingCosts = field(default_factory=TradingCosts)
    impact_k: float = 0.0
    participation_cap: float | None = DEFAULT_PARTICIPATION
    window: int = DEFAULT_WINDOW
    fill_delay: int = 1
    same_bar: bool = False

    def __post_init__(self) -> None:
        if not (math.isfinite(self.impact_k) and self.impact_k >= 0):
            raise ValueError(f"impact_k must be a finite number >= 0, got {self.impact_k!r}")
        cap = self.participation_cap
        if cap is not None and not (math.isfinite(cap) and cap > 0):
            raise ValueError(f"participation_cap must be > 0 or None, got {cap!r}")
        if not isinstance(self.window, int) or self.window < 2:
            raise ValueError(f"window must be >= 2 sessions, got {self.window!r}")
        if self.fill_delay not in (0, 1):
            raise ValueError(f"fill_delay must be 1 (next bar) or 0 (same bar), got {self.fill_delay!r}")
        if self.fill_delay == 0 and not self.same_bar:
            raise ValueError(
                "fill_delay=0 fills at the decision's own close (look-ahead); "
                "pass same_bar=True to opt in explicitly"
            )
        if self.same_bar and self.fill_delay != 0:
            raise ValueError("same_bar=True needs fill_delay=0 (same_bar is its opt-in)")

    def warn_if_same_bar(self) -> str | None:
        """Warn (every call) when this config fills at the same bar; the message, for the record."""
        if not self.same_bar:
            return None
        warnings.warn(SAME_BAR_MESSAGE, SameBarWarning, stacklevel=3)
        return SAME_BAR_MESSAGE


@dataclass(slots=True)
class Fills:
    """One call's fills, per ticker (same shape as the orders); treat as read-only.

    Attributes:
        ordered: signed shares asked for.
        filled: signed shares filled (``|filled| <= |ordered|``, same sign).
        price: the bar's fill price (0: no bar, nothing filled).
        value: signed currency traded, ``filled * price`` (0 where nothing filled).
        impact: square-root impact paid, currency (>= 0).
        commission_rate, slippage_rate: the proportional costs, fraction of ``|value|``.
        traded: ``sum |value|``; paid: all costs, currency; cash_delta: ``-(sum value + paid)``.
    """

    ordered: np.ndarray
    filled: np.ndarray
    price: np.ndarray
    value: np.ndarray
    impact: np.ndarray
    commission_rate: float
    slippage_rate: float
    traded: float
    paid: float
    cash_delta: float

    @property
    def unfilled(self) -> np.ndarray:
        """``ordered - filled``: cut by the participation cap, or no bar to fill at."""
        return self.ordered - self.filled

    @property
    def commission(self) -> np.ndarray:
        return np.abs(self.value) * self.commission_rate

    @property
    def slippage(self) -> np.ndarray:
        return np.abs(self.value) * self.slippage_rate

    @property
    def cost(self) -> np.ndarray:
        """Per-ticker costs, currency: commission + slippage + impact."""
        return np.abs(self.value) * (self.commission_rate + self.slippage_rate) + self.impact


def fill_prices(open_: np.ndarray, close: np.ndarray) -> np.ndarray:
    """The fill price on a bar: its open, or its close where there is no open (NaN: no bar)."""
    return np.where(np.isfinite(open_), open_, close)


def trailing_adv(close: np.ndarray, volume: np.ndarray, window: int = DEFAULT_WINDOW) -> np.ndarray:
    """Average daily dollar volume (``close * volume``) over the last ``window`` bars up to and
    including each row of a date x ticker panel; missing bars are skipped, NaN until a ticker
    has one bar."""
    return _trailing_mean(close * volume, window)


def trailing_volatility(close: np.ndarray, window: int = DEFAULT_WINDOW) -> np.ndarray:
    """Daily volatility (std, ddof 1) of simple close-to-close returns over the last ``window``
    returns up to and including each row; NaN until a ticker has two returns."""
    ret = np.full(close.shape, np.nan)
    ret[1:] = close[1:] / close[:-1] - 1.0
    ok = np.isfinite(ret)
    x = np.where(ok, ret, 0.0)
    n = _window_sum(ok.astype(float), window)
    s2 = _window_sum(x * x, window)
    s1 = _window_sum(x, window)
    with np.errstate(invalid="ignore", divide="ignore"):
        var = (s2 - s1 * s1 / n) / (n - 1)
    return np.where(n >= 2, np.sqrt(np.maximum(var, 0.0)), np.nan)


def _window_sum(x: np.ndarray, window: int) -> np.ndarray:
    """Sum over the last ``window`` rows up to and including each row (fewer at the start);
    overwrites ``x`` (few fresh panels: each costs page faults on a large panel)."""
    c = np.cumsum(x, axis=0, out=x)
    c[window:] -= c[:-window].copy()
    return c


def _trailing_mean(x: np.ndarray, window: int) -> np.ndarray:
    """Mean of the finite values among the last ``window`` rows; overwrites ``x``."""
    ok = np.isfinite(x)
    n = _window_sum(ok.astype(float), window)
    np.copyto(x, 0.0, where=~ok)
    s = _window_sum(x, window)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.divide(s, n, out=s)  # 0 / 0 = NaN before a ticker's first bar


def adv_shares(adv: np.ndarray, decision_close: np.ndarray) -> np.ndarray:
    """Dollar ADV known at T in shares at the close T (0 where either is unknown or not > 0)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        out = adv / decision_close
    np.copyto(out, 0.0, where=~(out > 0) | np.isinf(out))
    return out


def sizing_factors(weights: np.ndarray, close: np.ndarray) -> np.ndarray:
    """Target shares per unit of equity at the decision's close: ``weights / close``; 0 where the
    weight is 0 (a position is closed without needing a close), NaN where the weight is NaN (no
    decision: hold) or a non-zero weight has no close to size it. Any shape (a day or a panel)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        out = weights / close
    np.copyto(out, 0.0, where=weights == 0)
    return out


def orders_from_factors(factors: np.ndarray, shares: np.ndarray, equity: float) -> np.ndarray:
    """Share orders to reach ``factors * equity`` shares from ``shares`` (0 where the factor is
    NaN: hold). See :func:`sizing_factors`."""
    orders = factors * equity - shares
    np.copyto(orders, 0.0, where=np.isnan(orders))
    return orders


def orders_from_weights(
    weights: np.ndarray, shares: np.ndarray, equity: float, close: np.ndarray
) -> np.ndarray:
    """Share orders that move ``shares`` to ``weights`` of ``equity`` at the decision's close:
    ``weights * equity / close - shares``; NaN weights hold, zero weights close."""
    return orders_from_factors(sizing_factors(weights, close), shares, equity)


def fill_limits(price: np.ndarray, liquidity: np.ndarray, config: ExecutionConfig) -> np.ndarray:
    """Most shares that may fill on the fill bar: ``participation_cap * liquidity`` (inf with no
    cap), 0 where the bar has no fill price. ``liquidity`` is ADV in shares known at T
    (:func:`adv_shares`). Any shape."""
    tradable = np.isfinite(price)
    if config.participation_cap is None:
        return np.where(tradable, np.inf, 0.0)
    return np.where(tradable, config.participation_cap * liquidity, 0.0)


def impact_rates(liquidity: np.ndarray, sigma: np.ndarray, config: ExecutionConfig) -> np.ndarray | None:
    """``k * sigma / sqrt(liquidity)``: the square-root impact per unit notional is this times
    ``sqrt(|shares filled|)``. 0 where sigma or the ADV is unknown; ``None`` when impact is off."""
    if config.impact_k == 0:
        return None
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = config.impact_k * sigma / np.sqrt(liquidity)
    np.copyto(rate, 0.0, where=~np.isfinite(rate))
    return rate


def execute(
    orders: np.ndarray,
    price: np.ndarray,
    liquidity: np.ndarray,
    sigma: np.ndarray,
    config: ExecutionConfig,
) -> Fills:
    """Fill ``orders`` (signed shares decided at close T) at ``price`` on the fill bar: the
    one-day entry point (the paper ledger's), :func:`fill` after its preparations.

    Args:
        orders: signed shares wanted.
        price: fill price per ticker (:func:`fill_prices` of the fill bar); NaN: no bar, no fill.
        liquidity: ADV in shares known at T (:func:`adv_shares`); 0 where unknown, which blocks
            the fill under a participation cap.
        sigma: daily volatility known at T (:func:`trailing_volatility`); NaN: no impact charged.
        config: costs, impact coefficient, participation cap.
    """
    limit = fill_limits(price, liquidity, config)
    return fill(
        orders,
        np.where(np.isfinite(price), price, 0.0),
        limit,
        config,
        impact_rates(liquidity, sigma, config),
    )


def fill(
    orders: np.ndarray,
    price: np.ndarray,
    limit: np.ndarray,
    config: ExecutionConfig,
    impact_rate: np.ndarray | None = None,
) -> Fills:
    """The fills of one day, from prepared inputs (the backtester prepares them for all days).

    Args:
        orders: signed shares wanted.
        price: fill price, finite; 0 where there is no bar (where ``limit`` is 0).
        limit: :func:`fill_limits`; fills are cut to ``[-limit, limit]``.
        config: the proportional costs.
        impact_rate: :func:`impact_rates` (``None``: no impact).

    Fill quantities depend only on what was known at T and on whether the fill bar exists, never
    on its price; the costs (currency) are charged on the notional at the fill price.
    """
    filled = np.minimum(np.maximum(orders, -limit), limit)
    value = filled * price
    notional = np.abs(value)
    traded = float(notional.sum())
    costs = config.costs
    paid = traded * (costs.per_side_bps * BPS)
    if impact_rate is None:
        impact = np.zeros(notional.shape)
    else:
        impact = impact_rate * np.sqrt(np.abs(filled)) * notional
        paid += float(impact.sum())
    return Fills(
        ordered=orders,
        filled=filled,
        price=price,
        value=value,
        impact=impact,
        commission_rate=costs.commission_bps * BPS,
        slippage_rate=costs.slippage_bps * BPS,
        traded=traded,
        paid=paid,
        cash_delta=-(float(value.sum()) + paid),
    )


def close_delisted(shares: np.ndarray, last_price: np.ndarray, config: ExecutionConfig) -> Fills:
    """Close positions in delisted tickers (no bar after their last) at their last price: the whole
    position, no participation cap and no impact (there is no market left to move), proportional
    costs as for any sale. It is :func:`execute` with unlimited liquidity, as the backtester
    applies it on the row after a ticker's last bar."""
    return execute(-shares, last_price, np.full(np.shape(shares), np.inf), np.zeros(np.shape(shares)), config)
