"""The execution model: fills, caps, costs, impact, the trailing inputs, and one model for two callers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from model_code.backtest.engine import run_backtest
from model_code.costs import TradingCosts
from model_code.execution import (
    ExecutionConfig,
    adv_shares,
    close_delisted,
    execute,
    fill_prices,
    orders_from_weights,
    trailing_adv,
    trailing_volatility,
)

NAN = np.nan


def test_fill_price_is_the_open_else_the_close():
    np.testing.assert_array_equal(
        fill_prices(np.array([10.0, NAN, NAN]), np.array([11.0, 12.0, NAN])), [10.0, 12.0, NAN]
    )


def test_costs_and_impact_by_hand():
    config = ExecutionConfig(impact_k=1.0)  # 5 + 5 bps, cap 10 % of ADV
    f = execute(
        orders=np.array([100.0, -50.0]),
        price=np.array([10.0, 20.0]),
        liquidity=np.array([1000.0, 1000.0]),  # ADV in shares: cap 100 shares each
        sigma=np.array([0.02, NAN]),  # B's volatility unknown: no impact charged
        config=config,
    )
    np.testing.assert_array_equal(f.filled, [100.0, -50.0])
    np.testing.assert_array_equal(f.value, [1000.0, -1000.0])
    np.testing.assert_allclose(f.commission, [0.5, 0.5])
    np.testing.assert_allclose(f.slippage, [0.5, 0.5])
    # k * sigma * sqrt(Q / ADV) * notional = 1 * 0.02 * sqrt(100 / 1000) * 1000
    np.testing.assert_allclose(f.impact, [20 * math.sqrt(0.1), 0.0], rtol=1e-14)
    assert f.paid == pytest.approx(2.0 + 20 * math.sqrt(0.1), rel=1e-14)
    assert f.cash_delta == pytest.approx(-(1000 - 1000) - f.paid, rel=1e-14)
    assert f.traded == 2000.0


def test_doubling_the_bps_doubles_the_cost():
    args = (np.array([100.0, -30.0]), np.array([10.0, 7.0]), np.array([1e6, 1e6]), np.zeros(2))
    one = execute(*args, ExecutionConfig())
    two = execute(*args, ExecutionConfig(costs=TradingCosts(10.0, 10.0)))
    np.testing.assert_allclose(two.cost, 2 * one.cost, rtol=1e-15)
    assert two.paid == pytest.approx(2 * one.paid, rel=1e-15)


def test_participation_cap_cuts_and_records_the_rest():
    f = execute(np.array([500.0, -500.0, 5.0]), np.full(3, 10.0), np.array([100.0, 100.0, 100.0]), np.zeros(3),
                ExecutionConfig())  # fmt: skip
    np.testing.assert_array_equal(f.filled, [10.0, -10.0, 5.0])
    np.testing.assert_array_equal(f.unfilled, [490.0, -490.0, 0.0])
    half = execute(np.array([500.0]), np.array([10.0]), np.array([100.0]), np.zeros(1),
                   ExecutionConfig(participation_cap=0.5))  # fmt: skip
    assert half.filled[0] == 50.0


def test_no_bar_or_no_adv_means_no_fill():
    f = execute(
        np.array([5.0, 5.0]), np.array([NAN, 10.0]), np.array([1e6, 0.0]), np.zeros(2), ExecutionConfig()
    )
    np.testing.assert_array_equal(f.filled, [0.0, 0.0])
    np.testing.assert_array_equal(f.unfilled, [5.0, 5.0])
    assert f.cash_delta == 0.0


def test_fill_quantities_do_not_depend_on_the_fill_price():
    orders, liq = np.array([300.0, -80.0, 20.0]), np.array([1000.0, 500.0, 50.0])
    a = execute(orders, np.array([10.0, 20.0, 30.0]), liq, np.full(3, 0.01), ExecutionConfig(impact_k=1.0))
    b = execute(orders, np.array([1.0, 99.0, 3.0]), liq, np.full(3, 0.01), ExecutionConfig(impact_k=1.0))
    np.testing.assert_array_equal(a.filled, b.filled)


def test_delisted_positions_close_whole_at_the_last_price():
    f = close_delisted(np.array([40.0, -7.0]), np.array([60.0, 5.0]), ExecutionConfig())
    np.testing.assert_array_equal(f.filled, [-40.0, 7.0])  # no participation cap
    np.testing.assert_array_equal(f.value, [-2400.0, 35.0])
    assert f.paid == pytest.approx(0.001 * 2435)
    assert f.cash_delta == pytest.approx(2400 - 35 - 0.001 * 2435)


def test_orders_from_weights_hold_nan_and_close_zero():
    orders = orders_from_weights(
        np.array([0.5, NAN, 0.0, 0.0]),
        np.array([10.0, 3.0, 4.0, 0.0]),
        1000.0,
        np.array([25.0, 9.0, NAN, NAN]),
    )
    np.testing.assert_array_equal(orders, [0.5 * 1000 / 25 - 10, 0.0, -4.0, 0.0])


def test_trailing_adv_and_volatility_use_rows_up_to_t_only():
    close = np.array([[10.0], [20.0], [NAN], [30.0]])
    volume = np.array([[1.0], [2.0], [NAN], [1.0]])
    # dollars 10, 40, -, 30; window 2 skips the missing bar
    np.testing.assert_allclose(trailing_adv(close, volume, 2)[:, 0], [10.0, 25.0, 40.0, 30.0])
    np.testing.assert_allclose(adv_shares(trailing_adv(close, volume, 2), close)[:, 0], [1.0, 1.25, 0.0, 1.0])
    rng = np.random.default_rng(0)
    px = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, (40, 3)), axis=0))
    vol = trailing_volatility(px, 10)
    ret = px[1:] / px[:-1] - 1
    assert np.all(np.isnan(vol[:2]))
    np.testing.assert_allclose(vol[2], ret[:2].std(axis=0, ddof=1), rtol=1e-9)
    np.testing.assert_allclose(vol[25], ret[15:25].std(axis=0, ddof=1), rtol=1e-9)


def test_config_is_validated():
    for bad in ({"impact_k": -1.0}, {"participation_cap": 0.0}, {"window": 1}, {"fill_delay": 2}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            ExecutionConfig(**bad)


def test_a_day_by_day_ledger_on_the_same_model_matches_the_backtest():
    """One model, two callers: stepping orders_from_weights + execute day by day, as the paper
    ledger does, reproduces the vectorized backtest (gaps, a close-only ticker, a delisting,
    impact and the participation cap all on)."""
    rng = np.random.default_rng(7)
    n, m = 60, 4
    close = 40 * np.exp(np.cumsum(rng.normal(0, 0.02, (n, m)), axis=0))
    open_ = close * np.exp(rng.normal(0, 0.01, (n, m)))
    volume = rng.uniform(500, 5e4, (n, m))
    open_[:, 0] = NAN  # close-only
    close[20:25, 1] = open_[20:25, 1] = volume[20:25, 1] = NAN  # a gap
    close[45:, 2] = open_[45:, 2] = volume[45:, 2] = NAN  # delisted after row 44
    weights = rng.dirichlet(np.ones(m + 1), n)[:, :m]
    weights[rng.random((n, m)) < 0.3] = NAN
    weights[~np.isfinite(close)] = NAN
    config = ExecutionConfig(impact_k=0.7)
    r = run_backtest(weights, open_, close, volume, initial_cash=1e6, config=config)

    liquidity = adv_shares(trailing_adv(close, volume, config.window), close)
    sigma = trailing_volatility(close, config.window)
    shares, cash, mark = np.zeros(m), 1e6, np.zeros(m)
    pending = None
    for t in range(n):
        if pending is not None:
            price = fill_prices(open_[t], close[t])
            gone = (t == 45) and shares[2] != 0
            if gone:  # the ledger learns of the delisting: no order for it, it is closed instead
                pending[2] = 0.0
            fills = execute(pending, price, liquidity[t - 1], sigma[t - 1], config)
            shares = shares + fills.filled
            cash += fills.cash_delta
            if gone:
                out = close_delisted(shares[2:3], close[44, 2:3], config)
                shares[2] = 0.0
                cash += out.cash_delta
        np.copyto(mark, close[t], where=np.isfinite(close[t]))
        equity = cash + float(shares @ mark)
        assert equity == pytest.approx(r.equity[t], rel=1e-12)
        np.testing.assert_allclose(shares, r.positions[t], rtol=1e-12, atol=1e-9)
        pending = orders_from_weights(weights[t], shares, equity, close[t])
    assert r.delisted_after.tolist() == [-1, -1, 44, -1]
    assert np.any(r.unfilled[1:] != 0)  # the cap bound somewhere
    assert r.impact.sum() > 0
