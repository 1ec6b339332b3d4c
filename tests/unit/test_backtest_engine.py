"""The vectorized backtester: a hand-checked example, no look-ahead, same-bar opt-in, costs, bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model_code.backtest.engine import run_backtest
from model_code.costs import TradingCosts
from model_code.execution import ExecutionConfig, SameBarWarning

NAN = np.nan
BIG_VOLUME = 1e9  # the 10 % participation cap never binds in the hand example


def hand_example() -> dict[str, np.ndarray]:
    """3 tickers x 10 days. A trades at opens, B is close-only (no opens), C is delisted after
    row 5 (its last bar). Decisions: row 0 buys 50 / 30 / 20 %, row 7 sells A, NaN elsewhere."""
    close = np.array(
        [
            [10, 20, 50],
            [11, 21, 52],
            [12, 22, 54],
            [11, 20, 56],
            [12, 22, 55],
            [13, 24, 60],
            [12, 25, NAN],
            [14, 26, NAN],
            [15, 24, NAN],
            [16, 25, NAN],
        ],
        dtype=float,
    )
    open_ = np.array(
        [
            [10, NAN, 50],
            [10, NAN, 51],
            [11.5, NAN, 53],
            [12, NAN, 55],
            [11, NAN, 57],
            [12, NAN, 58],
            [13, NAN, NAN],
            [12, NAN, NAN],
            [16, NAN, NAN],
            [15, NAN, NAN],
        ],
        dtype=float,
    )
    weights = np.full((10, 3), NAN)
    weights[0] = [0.5, 0.3, 0.2]
    weights[7, 0] = 0.0
    volume = np.where(np.isfinite(close), BIG_VOLUME, NAN)
    return {"weights": weights, "open_": open_, "close": close, "volume": volume}


# Worked by hand, costs 5 + 5 bps = 0.001 of notional per side, initial cash 10,000:
# row 0: decide A 0.5*10000/10 = 500 sh, B 0.3*10000/20 = 150 sh, C 0.2*10000/50 = 40 sh.
# row 1: A fills at open 10 (5000), B at close 21 (close-only: 3150), C at open 51 (2040);
#        notional 10190, cost 10.19, cash 10000 - 10190 - 10.19 = -200.19;
#        equity = -200.19 + 500*11 + 150*21 + 40*52 = 10529.81.
# row 6: C has no bar after row 5: closed at its last close 60, 40*60 = 2400, cost 2.40;
#        cash -200.19 + 2400 - 2.40 = 2197.41; equity 2197.41 + 500*12 + 150*25 = 11947.41.
# row 7: decide A -> 0 (sell 500); equity 2197.41 + 500*14 + 150*26 = 13097.41.
# row 8: A sells at open 16: 8000, cost 8; cash 2197.41 + 8000 - 8 = 10189.41.
# row 9: equity 10189.41 + 150*25 = 13939.41. Costs 10.19 + 2.40 + 8 = 20.59.
# Rows 2-5: -200.19 + (6000 + 3300 + 2160), (5500 + 3000 + 2240), (6000 + 3300 + 2200), (6500 + 3600 + 2400).
HAND_EQUITY = [
    10000.0,
    10529.81,
    11259.81,
    10539.81,
    11299.81,
    12299.81,
    11947.41,
    13097.41,
    13789.41,
    13939.41,
]
HAND_COSTS = [0, 10.19, 0, 0, 0, 0, 2.40, 0, 8.0, 0]


def test_hand_checked_three_assets_ten_days():
    r = run_backtest(**hand_example(), initial_cash=10_000.0)
    assert r.equity == pytest.approx(HAND_EQUITY, rel=1e-12, abs=1e-9)
    assert r.costs == pytest.approx(HAND_COSTS, abs=1e-9)
    assert r.equity[-1] == pytest.approx(13939.41, abs=1e-9)
    assert r.costs.sum() == pytest.approx(20.59, abs=1e-9)
    assert r.cash[1] == pytest.approx(-200.19, abs=1e-9)
    assert r.cash[-1] == pytest.approx(10189.41, abs=1e-9)
    filled = np.zeros((10, 3))
    filled[1] = [500, 150, 40]
    filled[6, 2] = -40
    filled[8, 0] = -500
    np.testing.assert_allclose(r.filled, filled, atol=1e-9)
    assert np.all(r.unfilled == 0)
    prices = np.full((10, 3), NAN)
    prices[1] = [10, 21, 51]  # B close-only: its next close
    prices[6, 2] = 60  # C delisted: its last close
    prices[8, 0] = 16
    np.testing.assert_array_equal(r.fill_price, prices)
    np.testing.assert_allclose(r.positions[-1], [0, 150, 0], atol=1e-9)
    assert r.delisted_after.tolist() == [-1, -1, 5]
    assert r.warnings == ()
    # Equity is cash plus the positions at the last known close, every day.
    np.testing.assert_allclose(r.equity, r.cash + (r.positions * r.mark).sum(axis=1), rtol=1e-14)
    # Turnover is the day's notional over the previous close's equity.
    assert r.turnover[1] == pytest.approx(10190 / 10000)
    assert r.turnover[8] == pytest.approx(8000 / 13097.41)
    assert r.drawdown[3] == pytest.approx(10539.81 / 11259.81 - 1)
    assert r.gross_exposure[-1] == pytest.approx(3750 / 13939.41)


def test_doubling_the_bps_doubles_the_costs():
    base = run_backtest(**hand_example(), initial_cash=10_000.0)
    twice = ExecutionConfig(costs=TradingCosts(commission_bps=10.0, slippage_bps=10.0))
    r = run_backtest(**hand_example(), initial_cash=10_000.0, config=twice)
    np.testing.assert_allclose(r.costs, 2 * base.costs, rtol=1e-12)
    assert r.costs.sum() == pytest.approx(41.18, abs=1e-9)
    np.testing.assert_allclose(r.commission + r.slippage + r.impact, 2 * (base.commission + base.slippage))


def random_panel(seed: int, n: int = 40, m: int = 5) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, (n, m)), axis=0))
    open_ = close * np.exp(rng.normal(0, 0.01, (n, m)))
    volume = rng.uniform(1e3, 1e5, (n, m))
    weights = rng.dirichlet(np.ones(m + 1), n)[:, :m]
    return {"weights": weights, "open_": open_, "close": close, "volume": volume}


def test_zero_costs_equal_the_frictionless_weighted_return_path():
    p = random_panel(3)
    p["open_"][1:] = p["close"][:-1]  # each fill at the decision's close price, via the next open
    free = ExecutionConfig(costs=TradingCosts(0.0, 0.0), participation_cap=None)
    r = run_backtest(**p, initial_cash=1e6, config=free)
    ret = p["close"][1:] / p["close"][:-1] - 1
    path = 1e6 * np.cumprod(np.concatenate(([1.0], 1 + (p["weights"][:-1] * ret).sum(axis=1))))
    np.testing.assert_allclose(r.equity, path, rtol=1e-12)
    assert np.all(r.costs == 0)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(3, 14),
    m=st.integers(1, 4),
    cut=st.floats(0.0, 1.0),
    impact=st.sampled_from([0.0, 1.0]),
    gaps=st.booleans(),
)
def test_no_look_ahead_prices_after_t_change_nothing_up_to_t(seed, n, m, cut, impact, gaps):
    """Changing every price and volume after row T leaves equity, cash and positions through T
    and every trade (orders and fills, in shares) through T+1 unchanged: the T+1 fills are sized
    at close T; only their cost in currency (at the T+1 price) moves equity from T+1 on."""
    rng = np.random.default_rng(seed)
    p = random_panel(seed, n, m)
    p["weights"][rng.random((n, m)) < 0.2] = NAN
    if gaps:  # close-only tickers, missing bars, a delisting
        p["open_"][:, 0] = NAN
        if m > 1:
            p["close"][n // 2 :, 1] = NAN
            p["open_"][n // 2 :, 1] = NAN
            p["volume"][n // 2 :, 1] = NAN
            p["weights"][n // 2 :, 1] = NAN
    t = min(int(cut * n), n - 1)
    config = ExecutionConfig(impact_k=impact)
    base = run_backtest(**p, initial_cash=1e5, config=config)
    moved = {k: v.copy() for k, v in p.items()}
    for key in ("open_", "close", "volume"):
        moved[key][t + 1 :] *= rng.uniform(0.2, 5.0, moved[key][t + 1 :].shape)
    other = run_backtest(**moved, initial_cash=1e5, config=config)
    for name in ("equity", "cash", "positions", "gross_exposure", "costs"):
        np.testing.assert_array_equal(
            getattr(base, name)[: t + 1], getattr(other, name)[: t + 1], err_msg=name
        )
    for name in ("orders", "filled", "unfilled"):
        np.testing.assert_array_equal(
            getattr(base, name)[: t + 2], getattr(other, name)[: t + 2], err_msg=name
        )
    for r in (base, other):  # whatever the prices: fills never exceed their orders, cash is exact
        assert np.all(np.abs(r.filled) <= np.abs(r.orders)) and np.all(r.filled * r.orders >= 0)
        np.testing.assert_allclose(r.equity, r.cash + (r.positions * r.mark).sum(axis=1), rtol=1e-12)


def test_same_bar_mode_refuses_without_its_flag():
    with pytest.raises(ValueError, match="same_bar=True"):
        ExecutionConfig(fill_delay=0)
    with pytest.raises(ValueError, match="fill_delay=0"):
        ExecutionConfig(same_bar=True)


def test_same_bar_mode_warns_every_run_and_fills_at_the_decision_close():
    config = ExecutionConfig(fill_delay=0, same_bar=True)
    for _ in range(2):
        with pytest.warns(SameBarWarning, match="look-ahead"):
            r = run_backtest(**hand_example(), initial_cash=10_000.0, config=config)
        assert r.warnings and "look-ahead" in r.warnings[0]
    # Row 0 fills at the row-0 closes 10 / 20 / 50: exactly the targeted shares.
    np.testing.assert_allclose(r.filled[0], [500, 150, 40])
    np.testing.assert_allclose(r.fill_price[0], [10, 20, 50])


def test_next_bar_mode_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run_backtest(**hand_example(), initial_cash=10_000.0)


def test_participation_cap_binds_and_records_the_unfilled_part():
    p = hand_example()
    p["volume"][:, 0] = 100.0  # A: ADV 100 shares -> at most 10 shares a day
    r = run_backtest(**p, initial_cash=10_000.0)
    assert r.orders[1, 0] == pytest.approx(500)
    assert r.filled[1, 0] == pytest.approx(10)
    assert r.unfilled[1, 0] == pytest.approx(490)
    # NaN weights hold: the unfilled 490 is not carried to later days (each decision stands alone).
    np.testing.assert_allclose(r.positions[1:8, 0], 10)
    off = run_backtest(**p, initial_cash=10_000.0, config=ExecutionConfig(participation_cap=None))
    assert off.filled[1, 0] == pytest.approx(500)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: p.update(close=p["close"][:, :2]), "shape mismatch"),
        (lambda p: p["close"].__setitem__((3, 1), -20.0), "close: 1 prices not > 0"),
        (lambda p: p["open_"].__setitem__((2, 0), 0.0), "open: 1 prices not > 0"),
        (lambda p: p["volume"].__setitem__((2, 0), -1.0), "volume: 1 volumes negative"),
        (lambda p: p["weights"].__setitem__((2, 0), np.inf), "weights: 1 infinite"),
        (
            lambda p: p["weights"].__setitem__((7, 2), 0.1),
            "non-zero weights without a close, first at row 7, C",
        ),
        (lambda p: p["open_"].__setitem__((7, 2), 55.0), "opens without a close"),
        (lambda p: p.update(weights=np.zeros((10, 3), dtype=int)), "weights must be a 2-D float array"),
    ],
)
def test_bad_input_is_refused_naming_what_is_wrong(change, message):
    p = hand_example()
    change(p)
    with pytest.raises(ValueError, match=message):
        run_backtest(**p, tickers=["A", "B", "C"])


def test_nan_weights_refused_when_holding_is_not_allowed():
    with pytest.raises(ValueError, match="NaN weights"):
        run_backtest(**hand_example(), allow_hold=False)
    with pytest.raises(ValueError, match="initial_cash"):
        run_backtest(**hand_example(), initial_cash=0.0)
