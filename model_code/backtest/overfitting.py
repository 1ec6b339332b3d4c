"""Probability of backtest overfitting (PBO) of a parameter sweep, by CSCV.

Bailey, Borwein, López de Prado & Zhu (2015), "The probability of backtest overfitting". No
installed library implements combinatorially symmetric cross-validation, so it is written here,
vectorized over the C(S, S/2) splits. Sharpe ratios are per period with ddof 1, the convention
of :mod:`model_code.backtest.metrics`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from model_code.backtest.metrics import DISPERSION_RTOL


@dataclass(frozen=True)
class PboResult:
    """CSCV outcome: ``pbo`` in [0, 1], the logit of every split, and how the sample was cut."""

    pbo: float
    logits: np.ndarray
    n_blocks: int
    n_combinations: int


def _block_sharpes(
    sums: np.ndarray, sq_sums: np.ndarray, counts: np.ndarray, shift: np.ndarray
) -> np.ndarray:
    """Per-period Sharpe (ddof 1) of each row's pooled blocks; 0 where undefined (no dispersion).

    ``sums`` and ``sq_sums`` are of the returns less ``shift`` (each column's full-sample mean),
    which keeps the one-pass variance free of cancellation; the mean is shifted back.
    """
    centred_mean = sums / counts
    var = np.maximum(sq_sums - counts * centred_mean**2, 0.0) / (counts - 1)
    std, mean = np.sqrt(var), centred_mean + shift
    with np.errstate(divide="ignore", invalid="ignore"):
        sharpe = np.where(std > DISPERSION_RTOL * np.abs(mean), mean / std, 0.0)
    return sharpe


def probability_of_backtest_overfitting(returns_matrix: ArrayLike, n_blocks: int = 16) -> PboResult:
    """Probability of backtest overfitting by combinatorially symmetric cross-validation.

    Bailey, Borwein, López de Prado & Zhu (2015). ``returns_matrix`` is T × N: per-period simple
    returns of N configurations (a parameter sweep) on the same T sessions. The rows are cut into
    ``n_blocks`` (S, even) contiguous blocks of near-equal length (``numpy.array_split``); for each
    of the C(S, S/2) ways to pick S/2 blocks as in-sample (the rest, out-of-sample), the
    configuration with the best in-sample per-period Sharpe is taken, its out-of-sample rank
    ``w = rank / (N + 1)`` (1 = worst, ties averaged) turned into the logit ``ln(w / (1 - w))``.
    PBO is the share of splits whose logit is ``<= 0``: how often the in-sample winner lands in the
    bottom half out of sample. For N skill-free configurations it is about 0.5 (exactly 0.5 in
    expectation for even N; for odd N the median rank counts as a loss, (N + 1) / (2N)).
    A configuration without dispersion in a split has Sharpe 0 there; in-sample ties go to the
    first column.
    """
    m = np.asarray(returns_matrix, dtype=np.float64)
    if m.ndim != 2:
        raise ValueError(f"returns_matrix must be T x N (periods x configurations), got shape {m.shape}")
    n_periods, n_configs = m.shape
    if n_configs < 2:
        raise ValueError(f"returns_matrix needs at least 2 configurations to rank, got {n_configs}")
    if n_blocks < 2 or n_blocks % 2:
        raise ValueError(f"n_blocks must be an even integer >= 2, got {n_blocks!r}")
    if n_periods < 2 * n_blocks:
        raise ValueError(
            f"returns_matrix is too short: {n_periods} periods for {n_blocks} blocks "
            f"(at least {2 * n_blocks}, two per block)"
        )
    bad = ~np.isfinite(m)
    if bad.any():
        row, col = (int(i[0]) for i in np.nonzero(bad))
        raise ValueError(
            f"returns_matrix has {int(bad.sum())} NaN or infinite values (first at [{row}, {col}])"
        )

    blocks = np.array_split(np.arange(n_periods), n_blocks)
    shift = m.mean(axis=0)
    centred = m - shift
    sums = np.stack([centred[b].sum(axis=0) for b in blocks])  # S x N
    sq_sums = np.stack([(centred[b] ** 2).sum(axis=0) for b in blocks])
    counts = np.array([b.size for b in blocks], dtype=np.float64)[:, None]

    combos = list(itertools.combinations(range(n_blocks), n_blocks // 2))
    in_sample = np.zeros((len(combos), n_blocks))
    for k, combo in enumerate(combos):
        in_sample[k, list(combo)] = 1.0
    out_sample = 1.0 - in_sample
    is_sharpe = _block_sharpes(in_sample @ sums, in_sample @ sq_sums, in_sample @ counts, shift)
    oos_sharpe = _block_sharpes(out_sample @ sums, out_sample @ sq_sums, out_sample @ counts, shift)

    best = np.argmax(is_sharpe, axis=1)
    oos_rank = stats.rankdata(oos_sharpe, axis=1)[np.arange(len(combos)), best]
    w = oos_rank / (n_configs + 1)
    logits = np.log(w / (1.0 - w))
    return PboResult(
        pbo=float((logits <= 0).mean()), logits=logits, n_blocks=n_blocks, n_combinations=len(combos)
    )
