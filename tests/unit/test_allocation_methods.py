"""Allocation methods on small known cases, and the infeasible-solver fallback."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from model_code.allocation import AllocationSettings, AllocationState, allocate
from model_code.allocation import methods as m
from model_code.allocation.covariance import ShrunkCovariance, with_diagonal
from model_code.allocation.history import estimation_window, returns_matrix

AS_OF = dt.date(2024, 6, 28)
TICKERS = ["AAA", "BBB", "CCC", "DDD"]


def _returns(n: int = 300, vols=(0.01, 0.02, 0.015, 0.03), seed: int = 0, rho: float = 0.3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    k = len(vols)
    corr = np.full((k, k), rho) + (1 - rho) * np.eye(k)
    z = rng.multivariate_normal(np.zeros(k), corr, size=n)
    return z * np.asarray(vols)


def _history(X: np.ndarray, tickers: list[str]) -> pl.DataFrame:
    dates = [AS_OF - dt.timedelta(days=X.shape[0] - 1 - i) for i in range(X.shape[0])]
    return pl.DataFrame({"date": dates, **{t: X[:, j] for j, t in enumerate(tickers)}})


def _signals(rows: list[tuple[str, str, float, float]], horizon: int = 5) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "as_of": [AS_OF] * len(rows),
            "ticker": [r[0] for r in rows],
            "horizon": [horizon] * len(rows),
            "action": [r[1] for r in rows],
            "expected_return": [r[2] for r in rows],
            "confidence": [r[3] for r in rows],
            "source": ["ts"] * len(rows),
        },
        schema_overrides={"horizon": pl.Int32},
    )


def test_equal_weight_is_one_over_n() -> None:
    r = m.equal_weight(_returns(), TICKERS)
    assert r.weights == pytest.approx([0.25] * 4, abs=1e-15) and r.method_used == "equal_weight"


def test_inverse_vol_is_exactly_proportional_to_one_over_sample_vol() -> None:
    X = _returns()
    inv = 1 / X.std(axis=0, ddof=1)
    assert m.inverse_vol(X, TICKERS).weights == pytest.approx(inv / inv.sum(), rel=1e-12)


def test_risk_parity_risk_contributions_are_equal_on_the_shrunk_covariance() -> None:
    X = _returns()
    w = m.risk_parity(X, TICKERS).weights
    cov = ShrunkCovariance().fit(X).covariance_
    rc = w * (cov @ w)
    assert w.sum() == pytest.approx(1.0, abs=1e-8)
    assert rc / rc.sum() == pytest.approx([0.25] * 4, abs=1e-4)
    assert w[0] > w[3]  # the calmest name carries the most weight


def test_hrp_on_two_uncorrelated_assets_is_inverse_variance() -> None:
    X = _returns(vols=(0.01, 0.03), rho=0.0, n=2000)
    w = m.hrp(X, ["AAA", "BBB"]).weights
    var = np.diag(ShrunkCovariance().fit(X).covariance_)
    assert w == pytest.approx((1 / var) / (1 / var).sum(), rel=1e-9)


def test_kelly_fraction_halves_full_kelly_and_matches_the_closed_form() -> None:
    X = _returns()
    mu = np.array([0.0008, 0.0010, 0.0006, 0.0012])
    half = m.kelly(X, TICKERS, mu, fraction=0.5).weights
    full = m.kelly(X, TICKERS, mu, fraction=1.0).weights
    assert half == pytest.approx(0.5 * full, rel=2e-3, abs=1e-6)
    cov = ShrunkCovariance().fit(X).covariance_
    closed = np.linalg.solve(cov, mu)
    if (closed > 0).all():  # the long-only bound is slack: the solve is the textbook formula
        assert full == pytest.approx(closed, rel=2e-3)
    assert (half >= 0).all()


def test_kelly_with_no_positive_edge_is_all_cash() -> None:
    r = m.kelly(_returns(), TICKERS, np.array([-0.001, -0.002, 0.0, -1e-6]), fraction=0.5)
    assert (r.weights == 0).all() and r.fallback_reason is None


def test_settings_refuse_full_kelly() -> None:
    with pytest.raises(ValueError, match="never full Kelly"):
        AllocationSettings(kelly_fraction=1.0)


def test_garch_variances_replace_the_diagonal_and_keep_correlations() -> None:
    cov = np.array([[4.0, 1.2], [1.2, 1.0]])
    out = with_diagonal(cov, np.array([9.0, np.nan]))
    assert np.diag(out) == pytest.approx([9.0, 1.0])
    assert out[0, 1] / np.sqrt(out[0, 0] * out[1, 1]) == pytest.approx(1.2 / 2.0)


def test_barbell_risky_share_follows_regime_confidence_and_vol_target() -> None:
    assert m.risky_share(0.8, 0.10, 0.15, 1.0) == pytest.approx(0.8)
    assert m.risky_share(0.8, 0.30, 0.15, 1.0) == pytest.approx(0.4)
    assert m.risky_share(None, 0.10, 0.15, 1.0) == 0.0
    X = _returns(vols=(0.01, 0.02, 0.005, 0.03))
    risky = np.array([False, True, False, True])
    r = m.barbell(
        X, TICKERS, risky, regime_confidence=0.5, market_vol=0.1, vol_target=0.15, max_risky=1.0,
        safe_sleeve="low_vol", safe_count=1,
    )  # fmt: skip
    assert r.weights[[1, 3]].sum() == pytest.approx(0.5)
    assert r.weights[2] == pytest.approx(0.5) and r.weights[0] == 0  # CCC is the calmest non-signal name
    assert r.sleeves == ("safe", "risky", "safe", "risky")


def test_estimation_window_excludes_short_constant_and_missing_series() -> None:
    X = _returns(n=60)
    hist = _history(X, TICKERS).with_columns(
        pl.when(pl.int_range(pl.len()) < 50).then(None).otherwise(pl.col("BBB")).alias("BBB"),
        pl.lit(0.0).alias("CCC"),
    )
    win = estimation_window(hist, AS_OF, [*TICKERS, "ZZZ"], lookback=252, min_history=20)
    assert win.tickers == ["AAA", "DDD"]
    assert set(win.excluded) == {"BBB", "CCC", "ZZZ"} and np.isfinite(win.X).all()
    long = pl.DataFrame({"ticker": ["A", "A", "B"], "date": [AS_OF, AS_OF, AS_OF], "r": [0.1, 0.2, 0.3]})[
        [0, 2]
    ]
    assert returns_matrix(long).columns == ["date", "A", "B"]


IMPOSSIBLE = ("AAA >= 0.6", "BBB >= 0.6")  # together more than the budget of 1: infeasible


def test_infeasible_solve_falls_back_to_previous_weights_then_inverse_vol() -> None:
    X = _returns()
    prev = np.array([0.1, 0.2, 0.3, 0.4])
    r = m.risk_parity(X, TICKERS, linear_constraints=IMPOSSIBLE, previous_weights=prev)
    assert r.method_used == "previous_weights" and r.weights == pytest.approx(prev)
    assert r.fallback_reason.startswith("risk_parity failed") and "used previous_weights" in r.fallback_reason

    r = m.risk_parity(X, TICKERS, linear_constraints=IMPOSSIBLE)
    inv = 1 / X.std(axis=0, ddof=1)
    assert r.method_used == "inverse_vol" and r.weights == pytest.approx(inv / inv.sum(), rel=1e-12)
    assert "previous_weights failed" in r.fallback_reason and "used inverse_vol" in r.fallback_reason


def test_allocate_rows_say_which_fallback_was_used() -> None:
    X = _returns()
    sig = _signals([(t, "BUY", 0.01, 0.7) for t in TICKERS])
    settings = AllocationSettings(linear_constraints=IMPOSSIBLE)
    out = allocate(
        AS_OF, sig, _history(X, TICKERS), method="risk_parity", settings=settings,
        previous_weights={"AAA": 0.05, "BBB": 0.05, "CCC": 0.05, "DDD": 0.05, "CASH": 0.8}, state=AllocationState(),
    )  # fmt: skip
    assert set(out["method_used"]) == {"previous_weights"} and set(out["method"]) == {"risk_parity"}
    assert out.filter(pl.col("ticker") != "CASH")["weight"].to_list() == pytest.approx([0.05] * 4)
    assert out["fallback_reason"][0].startswith("risk_parity failed")

    out = allocate(
        AS_OF, sig, _history(X, TICKERS), method="risk_parity", settings=settings, state=AllocationState()
    )
    assert set(out["method_used"]) == {"inverse_vol"}
    stocks = out.filter(pl.col("ticker") != "CASH")
    assert (stocks["weight"] == 0.1).all() and set(stocks["binding_limit"]) == {"position_cap"}
    assert out["weight"].sum() == pytest.approx(1.0)


@pytest.mark.parametrize("method", ["kelly", "barbell", "risk_parity", "hrp", "inverse_vol", "equal_weight"])
def test_every_method_runs_through_allocate(method: str) -> None:
    names = [f"T{i:02d}" for i in range(12)]
    X = _returns(vols=tuple(0.01 + 0.002 * i for i in range(12)), seed=3)
    sig = _signals([(t, "BUY" if i < 10 else "SELL", 0.004 + 0.001 * i, 0.6) for i, t in enumerate(names)])
    out = allocate(
        AS_OF, sig, _history(X, names), method=method, settings=AllocationSettings(),
        state=AllocationState(regime_confidence=0.9, market_vol=0.1),
    )  # fmt: skip
    assert out.columns == [
        "as_of",
        "ticker",
        "weight",
        "sleeve",
        "method",
        "method_used",
        "fallback_reason",
        "reason",
        "binding_limit",
    ]
    assert out["ticker"][-1] == "CASH" and out["weight"].sum() == pytest.approx(1.0)
    assert set(out["method_used"]) == {method}
    assert out.filter(pl.col("ticker").is_in(names[10:]))["weight"].to_list() == [0.0, 0.0]
    assert out.filter(pl.col("ticker") != "CASH")["weight"].max() <= 0.1


def test_rows_after_as_of_and_other_days_signals_change_nothing() -> None:
    names = [f"T{i:02d}" for i in range(12)]
    X = _returns(vols=tuple(0.01 + 0.002 * i for i in range(12)), seed=5)
    sig = _signals([(t, "BUY", 0.01, 0.7) for t in names])
    hist = _history(X, names)
    kw = dict(method="risk_parity", settings=AllocationSettings(), state=AllocationState())
    base = allocate(AS_OF, sig, hist, **kw)
    later = pl.DataFrame(
        {"date": [AS_OF + dt.timedelta(days=1)], **{t: [5.0 if i % 2 else -0.9] for i, t in enumerate(names)}}
    )
    other_day = sig.with_columns(as_of=pl.lit(AS_OF + dt.timedelta(days=1)), action=pl.lit("SELL"))
    assert allocate(AS_OF, pl.concat([sig, other_day]), pl.concat([hist, later]), **kw).equals(base)
    with pytest.raises(ValueError, match="date column"):
        allocate(AS_OF, sig, hist.drop("date"), **kw)


def test_rows_say_how_the_method_sized_them() -> None:
    names = [f"T{i:02d}" for i in range(12)]
    X = _returns(vols=tuple(0.01 + 0.002 * i for i in range(12)), seed=5)
    sig = _signals([(t, "BUY", 0.01, 0.7) for t in names])
    out = allocate(
        AS_OF,
        sig,
        _history(X, names),
        method="barbell",
        settings=AllocationSettings(),
        state=AllocationState(),
    )
    assert out["weight"][-1] == 1.0 and "risky share 0.000 (regime confidence unknown" in out["reason"][0]
    out = allocate(
        AS_OF, sig, _history(X, names), method="kelly", settings=AllocationSettings(), state=AllocationState()
    )
    assert "0.5 x full Kelly" in out["reason"][0]


def test_barbell_low_vol_safe_sleeve_is_exempt_from_the_position_cap_only() -> None:
    names = [f"T{i:02d}" for i in range(6)]
    X = _returns(vols=(0.03, 0.03, 0.03, 0.004, 0.02, 0.02), seed=7)
    sig = _signals([(t, "BUY", 0.01, 0.7) for t in names[:3]] + [(names[4], "SELL", -0.01, 0.7)])
    cfg = AllocationSettings(barbell_safe_sleeve="low_vol", barbell_safe_count=1)
    out = allocate(AS_OF, sig, _history(X, names), method="barbell", settings=cfg,
                   state=AllocationState(regime_confidence=0.6, market_vol=0.1))  # fmt: skip
    row = out.filter(pl.col("ticker") == "T03").row(0, named=True)
    assert row["sleeve"] == "safe" and row["weight"] == pytest.approx(0.4) and row["binding_limit"] == "none"
    risky = out.filter(pl.col("sleeve") == "risky", pl.col("weight") > 0)
    assert risky["ticker"].to_list() == names[:3] and (risky["weight"] == 0.1).all()  # ~0.2 each, capped
    assert (
        "T04" in out["ticker"].to_list() and "T05" not in out["ticker"].to_list()
    )  # SELL kept out of safety
    assert out["weight"].sum() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="cash row"):
        allocate(AS_OF, _signals([("CASH", "BUY", 0.01, 0.7)]), _history(X, names), method="barbell",
                 settings=cfg, state=AllocationState())  # fmt: skip
