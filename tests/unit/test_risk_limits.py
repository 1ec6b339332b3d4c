"""Risk limits: no allocation ever breaks one, whatever the inputs; halts give all cash."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from model_code.allocation import METHODS, AllocationSettings, AllocationState, RiskLimits, allocate
from model_code.allocation.limits import BINDING_LIMITS, enforce, kill_switch_engaged

AS_OF = dt.date(2024, 6, 28)
LIMITS = RiskLimits()
TOL = 1e-12


def _history(X: np.ndarray, tickers: list[str]) -> pl.DataFrame:
    dates = [AS_OF - dt.timedelta(days=X.shape[0] - 1 - i) for i in range(X.shape[0])]
    return pl.DataFrame(
        {"date": dates, **{t: X[:, j] for j, t in enumerate(tickers)}}, schema_overrides={"date": pl.Date}
    )


def _signals(tickers, actions, ers, confs) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "as_of": [AS_OF] * len(tickers),
            "ticker": tickers,
            "horizon": [5] * len(tickers),
            "action": actions,
            "expected_return": ers,
            "confidence": confs,
            "source": ["ts"] * len(tickers),
        },
        schema={
            "as_of": pl.Date, "ticker": pl.String, "horizon": pl.Int32, "action": pl.String,
            "expected_return": pl.Float64, "confidence": pl.Float64, "source": pl.String,
        },
    )  # fmt: skip


def assert_within_limits(
    out: pl.DataFrame, sig: pl.DataFrame, limits: RiskLimits, state: AllocationState
) -> None:
    w = out["weight"].to_numpy()
    assert np.isfinite(w).all() and (w >= 0).all()
    assert out["ticker"][-1] == "CASH" and out["ticker"].n_unique() == out.height
    assert w.sum() == pytest.approx(1.0, abs=1e-9)
    assert set(out["binding_limit"]) <= set(BINDING_LIMITS)
    stocks = out.filter(pl.col("ticker") != "CASH")
    assert stocks["weight"].sum() <= limits.max_gross + TOL
    risky = stocks.filter(pl.col("sleeve") == "risky")
    assert (risky["weight"] <= limits.max_position + TOL).all()
    held = risky.filter(pl.col("weight") > 0).join(sig, on="ticker", how="left")
    assert (held["action"] == "BUY").all() and (held["confidence"] >= limits.min_confidence).all()
    halted = kill_switch_engaged(state, limits) or (
        state.rolling_hit_rate is not None and state.rolling_hit_rate < limits.min_hit_rate
    )
    if halted:
        assert (stocks["weight"] == 0).all() and out["weight"][-1] == 1.0
        assert set(out["binding_limit"]) <= {"kill_switch", "emergency_stop"}


finite = st.floats(-0.2, 0.2, allow_nan=False)
ret_value = st.one_of(finite, finite, finite, st.just(float("nan")), st.just(0.0), st.just(float("inf")))


@st.composite
def cases(draw):
    n_assets = draw(st.integers(0, 14))
    n_obs = draw(st.integers(0, 60))
    tickers = [f"T{i:02d}" for i in range(n_assets)]
    X = np.array(draw(st.lists(ret_value, min_size=n_obs * n_assets, max_size=n_obs * n_assets)), dtype=float)
    X = X.reshape(n_obs, n_assets)
    if n_assets >= 2 and draw(st.booleans()):  # a duplicated column: a singular sample covariance
        X[:, 1] = X[:, 0]
    if n_assets and draw(st.integers(0, 3)) > 0:  # a calm, well-behaved block so solvers really run
        rng = np.random.default_rng(draw(st.integers(0, 2**16)))
        X = np.vstack([X, rng.normal(0, 0.01, (40, n_assets))]) if n_obs < 40 else X
    actions = draw(
        st.lists(st.sampled_from(["BUY", "BUY", "SELL", "HOLD"]), min_size=n_assets, max_size=n_assets)
    )
    er = st.one_of(st.floats(-0.5, 0.5), st.just(1e6), st.just(-1e6), st.just(float("nan")))
    if draw(st.booleans()):  # all expected returns negative
        er = st.floats(-0.5, -1e-6)
    ers = draw(st.lists(er, min_size=n_assets, max_size=n_assets))
    confs = draw(st.lists(st.floats(0.0, 1.0), min_size=n_assets, max_size=n_assets))
    healthy = draw(st.integers(0, 3)) > 0  # mostly a live book, so the methods and limits really run
    state = AllocationState(
        drawdown=draw(st.sampled_from([0.0, 0.1499] if healthy else [0.15, 0.4, 0.0])),
        kill_switch_engaged=not healthy and draw(st.booleans()),
        rolling_hit_rate=draw(
            st.one_of(
                st.none(), st.just(float("nan")), st.floats(0.45, 1.0) if healthy else st.floats(0.0, 1.0)
            )
        ),
        regime_confidence=draw(st.one_of(st.none(), st.floats(0.0, 1.0))),
        market_vol=draw(st.one_of(st.none(), st.floats(0.0, 2.0))),
        garch_variances=draw(
            st.dictionaries(st.sampled_from(tickers or ["X"]), st.floats(0.0, 0.01), max_size=3)
        ),
    )
    limits = RiskLimits(
        max_position=draw(st.sampled_from([0.1, 0.05, 0.3])), max_gross=draw(st.sampled_from([1.0, 0.5]))
    )
    cfg = AllocationSettings(
        limits=limits,
        min_history=draw(st.sampled_from([2, 20])),
        barbell_safe_sleeve=draw(st.sampled_from(["cash", "low_vol"])),
    )
    prev = draw(
        st.one_of(
            st.none(), st.dictionaries(st.sampled_from(tickers or ["X"]), st.floats(0.0, 0.3), max_size=4)
        )
    )
    method = draw(st.sampled_from(METHODS))
    return _history(X, tickers), _signals(tickers, actions, ers, confs), cfg, state, prev, method


# The cases feed singular covariances on purpose; skfolio says so and repairs them (clipping).
@pytest.mark.filterwarnings("ignore:The covariance matrix is not positive definite:UserWarning")
@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(cases())
def test_no_allocation_ever_breaks_a_limit(case) -> None:
    hist, sig, cfg, state, prev, method = case
    out = allocate(AS_OF, sig, hist, method=method, settings=cfg, previous_weights=prev, state=state)
    assert_within_limits(out, sig, cfg.limits, state)
    assert set(sig["ticker"]) <= set(out["ticker"])  # every signal gets its row, with its reason


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(["risky", "safe"]), st.floats(0, 1)), max_size=30),
    st.sampled_from([0.1, 0.02, 1.0]),
    st.sampled_from([1.0, 0.3, 0.0]),
)  # fmt: skip
def test_enforce_never_leaves_a_breach_or_a_nan(rows, cap, gross) -> None:
    w = np.array([r[0] for r in rows], dtype=float)
    sleeves = [r[1] for r in rows]
    conf = np.array([r[2] for r in rows], dtype=float)
    limits = RiskLimits(max_position=cap, max_gross=gross)
    out = enforce(w, sleeves, conf, limits, AllocationState())
    assert np.isfinite(out.weights).all() and (out.weights >= 0).all()
    assert out.weights.sum() <= gross + TOL
    risky = np.array([s == "risky" for s in sleeves], dtype=bool)
    assert (out.weights[risky] <= cap + TOL).all()
    assert (out.weights[risky & (conf < limits.min_confidence)] == 0).all()
    assert (
        out.weights <= np.nan_to_num(np.clip(w, 0, None), nan=0.0, posinf=np.inf) + TOL
    ).all()  # cash only grows


def test_position_cap_leaves_the_excess_in_cash_and_says_so() -> None:
    out = enforce(
        np.array([0.3, 0.05, 0.5]),
        ["risky", "risky", "safe"],
        np.array([0.6, 0.6, np.nan]),
        LIMITS,
        AllocationState(),
    )
    assert out.weights == pytest.approx([0.1, 0.05, 0.5])
    assert out.binding == ("position_cap", "none", "none") and "excess to cash" in out.notes[0]


def test_gross_cap_scales_every_name_down_by_the_same_factor() -> None:
    limits = RiskLimits(max_gross=0.5)
    out = enforce(
        np.array([0.1, 0.1, 0.8]),
        ["risky", "risky", "safe"],
        np.array([0.6, 0.7, np.nan]),
        limits,
        AllocationState(),
    )
    assert out.weights.sum() <= 0.5 and out.weights == pytest.approx([0.05, 0.05, 0.4])
    assert set(out.binding) == {"gross_cap"}


def test_a_signal_below_the_minimum_confidence_gets_no_position() -> None:
    out = enforce(
        np.array([0.05, 0.05]), ["risky", "risky"], np.array([0.54, 0.55]), LIMITS, AllocationState()
    )
    assert out.weights.tolist() == [0.0, 0.05] and out.binding == ("min_confidence", "none")


def _book(state: AllocationState) -> pl.DataFrame:
    tickers = [f"T{i:02d}" for i in range(12)]
    X = np.random.default_rng(1).normal(0, 0.01, (120, 12))
    sig = _signals(tickers, ["BUY"] * 12, [0.01] * 12, [0.7] * 12)
    return allocate(
        AS_OF, sig, _history(X, tickers), method="inverse_vol", settings=AllocationSettings(), state=state
    )


def test_kill_switch_is_all_cash_with_the_reason_and_stays_flat_until_reset() -> None:
    assert _book(AllocationState())["weight"][-1] < 1e-9  # 12 names at <= 10 % each: fully invested
    for state in (AllocationState(drawdown=0.15), AllocationState(drawdown=0.0, kill_switch_engaged=True)):
        out = _book(state)
        assert out["weight"][-1] == 1.0 and (out["weight"][:-1] == 0).all()
        assert set(out["binding_limit"]) == {"kill_switch"} and set(out["method_used"]) == {"flat"}
        assert out["reason"].str.contains("kill switch").all()
    assert "latched until reset" in _book(AllocationState(kill_switch_engaged=True))["reason"][0]
    assert not kill_switch_engaged(AllocationState(drawdown=0.1499), LIMITS)


def test_emergency_stop_on_a_low_rolling_hit_rate_is_all_cash_with_the_reason() -> None:
    out = _book(AllocationState(rolling_hit_rate=0.44))
    assert out["weight"][-1] == 1.0 and set(out["binding_limit"]) == {"emergency_stop"}
    assert out["reason"].str.contains("emergency stop: rolling hit rate 44.0%").all()
    for unknown_or_fine in (None, float("nan"), 0.45):
        assert _book(AllocationState(rolling_hit_rate=unknown_or_fine))["weight"][-1] < 1e-9


def test_zero_assets_and_one_asset() -> None:
    empty = allocate(AS_OF, _signals([], [], [], []), pl.DataFrame({"date": [AS_OF]}), method="hrp",
                     settings=AllocationSettings(), state=AllocationState())  # fmt: skip
    assert empty["ticker"].to_list() == ["CASH"] and empty["weight"].to_list() == [1.0]
    X = np.random.default_rng(2).normal(0, 0.01, (60, 1))
    for method in METHODS:
        out = allocate(AS_OF, _signals(["ONE"], ["BUY"], [0.02], [0.8]), _history(X, ["ONE"]), method=method,
                       settings=AllocationSettings(), state=AllocationState(regime_confidence=1.0, market_vol=0.1))  # fmt: skip
        assert out["weight"][0] <= 0.1 and out["weight"].sum() == pytest.approx(1.0)
