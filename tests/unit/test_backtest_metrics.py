"""Backtest metrics: the issue-11 fixture, closed forms, CSCV PBO and input validation."""

from __future__ import annotations

import itertools
import math

import numpy as np
import polars as pl
import pytest
from scipy import stats
from skfolio import measures as skm

from model_code.backtest import metrics as bm
from model_code.backtest import overfitting as bo

# Issue 11's fixture: 24 daily simple returns and the per-period Sharpes of 10 trials.
FIXTURE_RETURNS = np.array(
    [0.012, -0.004, 0.021, 0.007, -0.015, 0.009, 0.003, -0.002, 0.018, -0.027, 0.011, 0.006]
    + [0.004, -0.008, 0.016, 0.002, -0.011, 0.013, 0.005, 0.001, -0.006, 0.019, 0.008, -0.003]
)
FIXTURE_TRIALS = [0.05, 0.12, -0.08, 0.20, 0.02, -0.01, 0.15, 0.07, -0.04, 0.10]


# --- the fixture, to 1e-6 -------------------------------------------------------------------


def test_fixture_psr_at_zero_and_at_a_tenth():
    assert bm.probabilistic_sharpe_ratio(FIXTURE_RETURNS, 0.0) == pytest.approx(0.891281, abs=1e-6)
    assert bm.probabilistic_sharpe_ratio(FIXTURE_RETURNS, 0.1) == pytest.approx(0.788794, abs=1e-6)


def test_fixture_expected_max_sharpe_uses_n_trials_and_ddof_1():
    assert bm.expected_max_sharpe(FIXTURE_TRIALS) == pytest.approx(0.138031, abs=1e-6)
    # The other convention (population std of the trials) would not reproduce it.
    assert abs(skm.expected_max_sharpe_ratio(10, float(np.std(FIXTURE_TRIALS, ddof=0))) - 0.138031) > 1e-3


def test_fixture_dsr_and_min_track_record_length():
    assert bm.deflated_sharpe_ratio(FIXTURE_RETURNS, FIXTURE_TRIALS) == pytest.approx(0.738355, abs=1e-6)
    assert bm.min_track_record_length(FIXTURE_RETURNS, 0.0, 0.95) == pytest.approx(41.9069, abs=1e-4)
    # DSR is PSR against the expected maximum of the trials.
    sr0 = bm.expected_max_sharpe(FIXTURE_TRIALS)
    assert bm.deflated_sharpe_ratio(FIXTURE_RETURNS, FIXTURE_TRIALS) == pytest.approx(
        bm.probabilistic_sharpe_ratio(FIXTURE_RETURNS, sr0), abs=1e-12
    )


def test_fixture_moments_follow_scipy_defaults_and_skfolio_agrees():
    r = FIXTURE_RETURNS
    assert bm.sharpe_ratio(r) == pytest.approx(r.mean() / r.std(ddof=1), rel=1e-12)
    assert bm.skewness(r) == pytest.approx(stats.skew(r), rel=1e-12)
    assert bm.kurtosis(r) == pytest.approx(stats.kurtosis(r, fisher=False), rel=1e-12)
    assert bm.kurtosis(r) == pytest.approx(3.3045402, abs=1e-6)  # non-excess
    # skfolio's PSR rests on these same moments; a change there would move the fixture.
    assert float(skm.skew(r)) == pytest.approx(stats.skew(r), rel=1e-10)
    assert float(skm.kurtosis(r)) == pytest.approx(stats.kurtosis(r, fisher=False), rel=1e-10)


def test_fixture_min_track_record_is_where_psr_reaches_the_confidence():
    # Rescaling T in the PSR statistic: at T = MinTRL the PSR equals the confidence exactly.
    r = FIXTURE_RETURNS
    sr, g3, g4 = bm.sharpe_ratio(r), bm.skewness(r), bm.kurtosis(r)
    t = bm.min_track_record_length(r, 0.0, 0.95)
    z = sr * math.sqrt(t - 1) / math.sqrt(1 - g3 * sr + (g4 - 1) / 4 * sr**2)
    assert stats.norm.cdf(z) == pytest.approx(0.95, abs=1e-12)


# --- closed forms ---------------------------------------------------------------------------


def test_constant_returns():
    r = np.full(252, 0.001)
    assert bm.cagr(r) == pytest.approx(1.001**252 - 1, rel=1e-12)
    assert bm.total_return(r) == pytest.approx(1.001**252 - 1, rel=1e-12)
    assert bm.max_drawdown(r) == 0.0
    assert bm.annualized_volatility(r) == pytest.approx(0.0, abs=1e-12)
    assert math.isnan(bm.sharpe_ratio(r))  # no dispersion: undefined, not a huge number
    assert math.isnan(bm.probabilistic_sharpe_ratio(r))
    assert math.isnan(bm.min_track_record_length(r))
    assert bm.sortino_ratio(r) == math.inf
    assert bm.calmar_ratio(r) == math.inf
    assert bm.profit_factor(r) == math.inf
    assert bm.hit_rate(r) == 1.0


def test_all_zero_returns_are_undefined_not_zero():
    r = np.zeros(10)
    for value in (bm.sharpe_ratio(r), bm.sortino_ratio(r), bm.calmar_ratio(r), bm.profit_factor(r)):
        assert math.isnan(value)
    assert math.isnan(bm.hit_rate(r))
    assert bm.max_drawdown(r) == 0.0


def test_known_drawdown_path():
    # Equity 1 -> 1.1 -> 0.88 -> 0.968 -> 1.1616: the trough is 20 % below the 1.1 peak.
    r = np.array([0.10, -0.20, 0.10, 0.20])
    np.testing.assert_allclose(bm.equity_curve(r), [1.1, 0.88, 0.968, 1.1616], rtol=1e-12)
    np.testing.assert_allclose(bm.drawdowns(r), [0.0, -0.2, -0.12, 0.0], atol=1e-12)
    assert bm.max_drawdown(r) == pytest.approx(0.20, abs=1e-12)
    assert bm.calmar_ratio(r) == pytest.approx(bm.cagr(r) / 0.20, rel=1e-12)
    assert bm.cagr(r) == pytest.approx(1.1616 ** (252 / 4) - 1, rel=1e-12)


def test_first_period_loss_is_a_drawdown_from_initial_capital():
    assert bm.max_drawdown(np.array([-0.05, 0.01, 0.01])) == pytest.approx(0.05, abs=1e-12)


def test_sortino_profit_factor_hit_rate_by_hand():
    r = np.array([0.02, -0.01, 0.03, 0.0, -0.02])
    downside = math.sqrt((0.01**2 + 0.02**2) / (5 - 1))
    assert bm.sortino_ratio(r) == pytest.approx(r.mean() / downside * math.sqrt(252), rel=1e-12)
    assert bm.profit_factor(r) == pytest.approx(0.05 / 0.03, rel=1e-12)
    assert bm.hit_rate(r) == pytest.approx(2 / 4)  # the flat day neither hits nor misses


def test_annualization_and_information_ratio():
    rng = np.random.default_rng(7)
    r = rng.normal(0.0005, 0.01, 500)
    b = rng.normal(0.0003, 0.01, 500)
    assert bm.annualized_sharpe_ratio(r) == pytest.approx(bm.sharpe_ratio(r) * math.sqrt(252), rel=1e-12)
    assert bm.annualized_volatility(r) == pytest.approx(r.std(ddof=1) * math.sqrt(252), rel=1e-12)
    a = r - b
    assert bm.information_ratio(r, b) == pytest.approx(a.mean() / a.std(ddof=1) * math.sqrt(252), rel=1e-12)
    assert math.isnan(bm.information_ratio(r, r))  # no active risk


def test_mean_turnover_and_min_trl_below_benchmark():
    assert bm.mean_turnover([0.0, 0.2, 0.1]) == pytest.approx(0.1)
    assert bm.min_track_record_length(FIXTURE_RETURNS, 0.5) == math.inf


def test_single_trial_deflates_nothing():
    assert bm.expected_max_sharpe([0.3]) == 0.0
    assert bm.deflated_sharpe_ratio(FIXTURE_RETURNS, [0.3]) == pytest.approx(
        bm.probabilistic_sharpe_ratio(FIXTURE_RETURNS, 0.0), abs=1e-12
    )


# --- PBO by CSCV ----------------------------------------------------------------------------


def _pbo_by_loops(m: np.ndarray, n_blocks: int) -> float:
    """Reference CSCV written the slow, obvious way."""
    blocks = np.array_split(np.arange(m.shape[0]), n_blocks)
    logits = []
    for combo in itertools.combinations(range(n_blocks), n_blocks // 2):
        rows_is = np.concatenate([blocks[i] for i in combo])
        rows_oos = np.concatenate([blocks[i] for i in range(n_blocks) if i not in combo])
        sr_is = m[rows_is].mean(axis=0) / m[rows_is].std(axis=0, ddof=1)
        sr_oos = m[rows_oos].mean(axis=0) / m[rows_oos].std(axis=0, ddof=1)
        rank = stats.rankdata(sr_oos)[int(np.argmax(sr_is))]
        w = rank / (m.shape[1] + 1)
        logits.append(math.log(w / (1 - w)))
    return float(np.mean(np.array(logits) <= 0))


def test_pbo_matches_a_loop_reference():
    m = np.random.default_rng(3).normal(0.0, 0.01, (203, 7))  # 203 rows: unequal blocks
    result = bo.probability_of_backtest_overfitting(m, n_blocks=8)
    assert result.n_combinations == math.comb(8, 4)
    assert result.logits.shape == (70,)
    assert result.pbo == pytest.approx(_pbo_by_loops(m, 8), abs=1e-12)


def test_pbo_matches_the_reference_when_means_dwarf_the_dispersion():
    # One-pass sums of squares would cancel here; the centred ones must not.
    # (Uncentred sums give 0.25 on this sample; the two-pass reference gives 0.9.)
    m = 0.01 + np.random.default_rng(1).normal(0.0, 1e-10, (120, 6))
    result = bo.probability_of_backtest_overfitting(m, n_blocks=6)
    assert result.pbo == pytest.approx(_pbo_by_loops(m, 6), abs=1e-12)


def test_pbo_of_pure_noise_is_about_one_half():
    rng = np.random.default_rng(20260101)
    pbos = [bo.probability_of_backtest_overfitting(rng.normal(0.0, 0.01, (1000, 10))).pbo for _ in range(8)]
    assert bo.probability_of_backtest_overfitting(rng.normal(0.0, 0.01, (1000, 10))).n_combinations == 12870
    # One sweep's PBO is noisy (its 12,870 splits share the same data); the mean is not.
    assert 0.4 <= float(np.mean(pbos)) <= 0.6
    assert all(0.0 <= p <= 1.0 for p in pbos)


def test_pbo_with_one_planted_edge_is_near_zero():
    m = np.random.default_rng(11).normal(0.0, 0.01, (1000, 10))
    m[:, 4] += 0.002  # a daily Sharpe of 0.2 in one configuration, none elsewhere
    assert bo.probability_of_backtest_overfitting(m).pbo <= 0.02


@pytest.mark.parametrize(
    ("matrix", "n_blocks", "message"),
    [
        (np.zeros(40), 4, "T x N"),
        (np.zeros((40, 1)), 4, "at least 2 configurations"),
        (np.zeros((40, 3)), 5, "even integer"),
        (np.zeros((7, 3)), 4, "too short"),
        (np.where(np.eye(40, 3) == 1, np.nan, 0.0), 4, "NaN or infinite"),
    ],
)
def test_pbo_input_validation(matrix, n_blocks, message):
    with pytest.raises(ValueError, match=message):
        bo.probability_of_backtest_overfitting(matrix, n_blocks=n_blocks)


# --- the table ------------------------------------------------------------------------------


def test_metrics_table_one_row_per_series_with_every_metric():
    table = bm.metrics_table(
        {"strategy": FIXTURE_RETURNS, "half": FIXTURE_RETURNS / 2},
        benchmark=FIXTURE_RETURNS * 0.8,
        trial_sharpes=FIXTURE_TRIALS,
        turnover={"strategy": np.full(24, 0.1)},
    )
    assert table.columns == list(bm.METRIC_COLUMNS)
    assert table.height == 2
    row = table.row(0, named=True)
    assert row["strategy"] == "strategy"
    assert row["n_periods"] == 24 and row["n_trials"] == 10
    assert row["psr"] == pytest.approx(0.891281, abs=1e-6)
    assert row["dsr"] == pytest.approx(0.738355, abs=1e-6)
    assert row["expected_max_sharpe"] == pytest.approx(0.138031, abs=1e-6)
    assert row["min_track_record_length"] == pytest.approx(41.9069, abs=1e-4)
    assert row["sharpe"] == pytest.approx(row["sharpe_per_period"] * math.sqrt(252), rel=1e-12)
    assert row["mean_turnover"] == pytest.approx(0.1)
    assert table.row(1, named=True)["mean_turnover"] is None
    assert table.row(1, named=True)["information_ratio"] < 0  # half the return of the 0.8 benchmark


def test_metrics_table_without_benchmark_or_trials_leaves_those_null():
    table = bm.metrics_table({"1/N": FIXTURE_RETURNS}, benchmark=None, trial_sharpes=[])
    row = table.row(0, named=True)
    assert row["information_ratio"] is None and row["dsr"] is None and row["expected_max_sharpe"] is None
    assert row["n_trials"] == 0
    empty = bm.metrics_table({}, None, FIXTURE_TRIALS)
    assert empty.height == 0 and empty.schema["n_periods"] == pl.Int64


def test_metrics_table_refuses_misaligned_benchmark():
    with pytest.raises(ValueError, match="aligned"):
        bm.metrics_table({"s": FIXTURE_RETURNS}, FIXTURE_RETURNS[:-1], FIXTURE_TRIALS)


# --- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("returns", "message"),
    [
        ([0.01, np.nan, 0.02], "NaN or infinite values \\(first at index 1\\)"),
        ([0.01, np.inf, 0.02], "NaN or infinite"),
        ([0.01, 0.02], "too short: 2 periods, at least 3"),
        (np.zeros((3, 2)), "1-D"),
        ([0.01, -1.0, 0.02], "<= -1"),
    ],
)
def test_returns_validation_names_the_problem(returns, message):
    with pytest.raises(ValueError, match=message):
        bm.probabilistic_sharpe_ratio(returns)


def test_validation_of_trials_confidence_turnover_and_table_names():
    with pytest.raises(ValueError, match="trial_sharpes has 1 NaN"):
        bm.deflated_sharpe_ratio(FIXTURE_RETURNS, [0.1, np.nan])
    with pytest.raises(ValueError, match="non-empty"):
        bm.expected_max_sharpe([])
    with pytest.raises(ValueError, match="confidence"):
        bm.min_track_record_length(FIXTURE_RETURNS, confidence=1.0)
    with pytest.raises(ValueError, match="negative"):
        bm.mean_turnover([0.1, -0.1])
    with pytest.raises(ValueError, match="returns\\['bad'\\] has 1 NaN"):
        bm.metrics_table({"bad": [0.01, np.nan, 0.02, 0.0]}, None, [])
    with pytest.raises(ValueError, match="benchmark is too short"):
        bm.information_ratio(FIXTURE_RETURNS, [0.01])
