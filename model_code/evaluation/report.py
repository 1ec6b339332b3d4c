"""Walk-forward evaluation report: run the rolling-origin backtest on a bar file, write markdown.

Usage::

    python -m model_code.evaluation.report --parquet PATH --start 2017-01-01 --end 2019-12-31 \\
        [--tickers N] [--models arima garch ...] [--workers 2] \\
        --out docs/results/forecast_walkforward.md [--predictions-out PATH.parquet] \\
        [--policies nightly stored] [--refit-every 5] [--max-age 21] [--origin-every 1]

``--policies`` runs the walk-forward under each refit policy
(:func:`~model_code.evaluation.walk_forward.run_walk_forward`: ``nightly`` refits every model at
every origin, ``stored`` is production's scheduled refits every ``--refit-every`` sessions with
daily updates of the stored fits); with both, the report puts each policy's results table and a
side-by-side comparison of their accuracy. ``--origin-every k`` keeps every k-th monthly origin.

Bars are read by :func:`~model_code.evaluation.clean_bars.load_clean_bars` (conformed to the
canonical schema and validated by the product's validator); only accepted rows are used
(duplicate keys, non-positive prices and sub-$0.05 placeholder quotes are quarantined there).
The report names its input relative to the repository root. Next to the markdown,
``<stem>_origins.parquet`` holds the small per-(origin, model, horizon) accuracy table (not the
per-ticker rows).
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import polars as pl

from model_code.evaluation.accuracy import accuracy_table
from model_code.evaluation.clean_bars import bar_file_source, load_clean_bars, repo_relative
from model_code.evaluation.walk_forward import (
    BENCHMARK,
    POLICIES,
    compare_to_random_walk,
    monthly_origins,
    run_walk_forward,
)
from model_code.forecasting import catalog
from model_code.forecasting.base import HORIZONS
from model_code.forecasting.batch import TickerResult, default_workers
from model_code.forecasting.stored import DEFAULT_MAX_AGE


def load_bars(path: str | Path, tickers: int | None = None, seed: int = 0) -> pl.DataFrame:
    """Accepted bars of ``path``; with ``tickers``, those of a seeded random sample of that many
    of the file's tickers (drawn before validation, so the sample does not depend on it)."""
    if tickers is None:
        return load_clean_bars(path).bars
    names = np.array(bar_file_source(path).list_tickers())
    pick = np.random.default_rng(seed).choice(names, size=min(tickers, names.size), replace=False)
    return load_clean_bars(path, tickers=sorted(pick.tolist())).bars


def _fmt(x: float | None, spec: str = ".3f") -> str:
    return "–" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, spec)


def results_table(table: pl.DataFrame) -> str:
    """The model × horizon markdown table of :func:`compare_to_random_walk` output."""
    lines = [
        "| model | h | hit rate ± s.e. | RMSE | RMSE / RW | DM stat | DM p | cov 80 % | cov 95 % | n | origins |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in table.sort("horizon", "model").iter_rows(named=True):
        hit = "–" if r["hit_rate"] is None else f"{r['hit_rate']:.3f} ± {r['hit_se']:.3f}"
        lines.append(
            f"| {r['model']} | {r['horizon']} | {hit} | {_fmt(r['rmse'], '.4f')} | {_fmt(r['rmse_ratio'])} "
            f"| {_fmt(r['dm_stat'], '.2f')} | {_fmt(r['dm_p'])} | {_fmt(r['coverage_80'])} "
            f"| {_fmt(r['coverage_95'])} | {r['n']} | {r['n_origins']} |"
        )
    return "\n".join(lines)


def reading(table: pl.DataFrame, up_share: Mapping[int, float] | None = None) -> list[str]:
    """Plain sentences drawn from the numbers (no judgement the table does not support).

    ``up_share``: per horizon, the share of realized returns above 0 - the hit rate of a
    forecast that always says "up", the fair yardstick for hit rates in a rising market.
    """
    out = []
    rivals = table.filter(pl.col("model") != BENCHMARK)
    for (h,), block in rivals.group_by(["horizon"], maintain_order=True):
        best = block.sort("rmse_ratio").row(0, named=True)
        out.append(
            f"h={h}: lowest RMSE ratio is {best['model']} at {best['rmse_ratio']:.3f} (DM p={best['dm_p']:.3f})."
        )
    better = rivals.filter((pl.col("dm_p") < 0.05) & (pl.col("dm_stat") < 0))
    worse = rivals.filter((pl.col("dm_p") < 0.05) & (pl.col("dm_stat") > 0))
    out.append(
        f"{better.height} of {rivals.height} model × horizon cells beat the random walk at 5 % (DM-HLN), "
        f"{worse.height} are significantly worse; with {rivals.height} tests about "
        f"{0.05 * rivals.height:.1f} false positives are expected by chance alone."
    )
    hits = rivals.filter(pl.col("hit_rate").is_not_null())
    if hits.height:
        off = hits.filter((pl.col("hit_rate") - 0.5).abs() > 2 * pl.col("hit_se"))
        out.append(
            f"Hit rates range {hits['hit_rate'].min():.3f}–{hits['hit_rate'].max():.3f}; {off.height} of "
            f"{hits.height} differ from 0.5 by more than 2 s.e., but that s.e. treats tickers on one date as "
            "independent (they are not), so it overstates precision."
        )
    if up_share:
        shares = ", ".join(f"h={h}: {v:.3f}" for h, v in sorted(up_share.items()))
        out.append(f"An always-up forecast would have hit {shares}; compare hit rates with these, not 0.5.")
    flat = rivals.filter(pl.col("hit_n") < 0.5 * pl.col("n"))
    for r in flat.select("model").unique(maintain_order=True).iter_rows():
        out.append(
            f"{r[0]} forecast exactly 0 (the random walk) on most rows of some horizon: its order selection "
            "often found no predictable mean, so its point forecasts coincide with the benchmark there."
        )
    for lv in (80, 95):
        c = table.sort(f"coverage_{lv}")
        lo, hi = c.row(0, named=True), c.row(-1, named=True)
        out.append(
            f"{lv} % interval coverage ranges {_fmt(lo[f'coverage_{lv}'])} ({lo['model']}, h={lo['horizon']}) to "
            f"{_fmt(hi[f'coverage_{lv}'])} ({hi['model']}, h={hi['horizon']}); nominal {lv / 100:.2f}."
        )
    return out


def write_report(
    path: Path,
    table: pl.DataFrame,
    settings: dict[str, str],
    failures: Counter[str],
    up_share: Mapping[int, float] | None = None,
) -> None:
    """Settings, the results table, failures and the reading, as markdown."""
    fails = ", ".join(f"{m}: {n}" for m, n in sorted(failures.items())) or "none"
    body = [
        "# Walk-forward forecast evaluation",
        "",
        "## Settings",
        "",
        *(f"- **{k}**: {v}" for k, v in settings.items()),
        f"- **fit failures (ticker × origin)**: {fails}",
        "",
        "Scheme: at the first session of each month every model is refit on the ticker's daily log returns "
        "up to that session and forecasts the cumulative log return 1, 5, 21 and 63 sessions ahead. The "
        "ensemble weights models by inverse MSE of earlier forecasts already realized at the origin. RMSE / RW "
        "is pooled over rows shared with the random walk; the DM test (HLN-corrected, two-sided) runs on the "
        "cross-sectional mean squared error per origin, with the horizon counted in origin steps, so the "
        "correlation of tickers on one date does not inflate n. Negative DM favours the model.",
        "",
        "## Results",
        "",
        results_table(table),
        "",
        "## Reading",
        "",
        *(f"- {s}" for s in reading(table, up_share)),
        "",
    ]
    path.write_text("\n".join(body))


def policy_comparison(tables: Mapping[str, pl.DataFrame]) -> str:
    """Per (model, horizon), RMSE / RW, hit rate and 80 % coverage under each policy, side by side."""
    names = list(tables)
    head = "| model | h | " + " | ".join(f"RMSE / RW {n} | hit {n} | cov 80 {n}" for n in names) + " |"
    lines = [head, "|---|---:|" + "---:|" * (3 * len(names))]
    keys = tables[names[0]].sort("horizon", "model").select("model", "horizon").iter_rows()
    for model, h in keys:
        cells = []
        for n in names:
            row = tables[n].filter((pl.col("model") == model) & (pl.col("horizon") == h))
            r = row.row(0, named=True) if row.height else {}
            cells += [_fmt(r.get("rmse_ratio")), _fmt(r.get("hit_rate")), _fmt(r.get("coverage_80"))]
        lines.append(f"| {model} | {h} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_policy_report(
    path: Path,
    tables: Mapping[str, pl.DataFrame],
    settings: dict[str, str],
    failures: Mapping[str, Counter[str]],
    walls: Mapping[str, float],
    command: str,
) -> None:
    """Both refit policies' accuracy on the same origins, tickers and models, as markdown."""
    body = [
        "# Walk-forward accuracy under the nightly-refit and the production (stored-fit) policy",
        "",
        "## Settings",
        "",
        *(f"- **{k}**: {v}" for k, v in settings.items()),
        *(
            f"- **{n}**: wall {walls[n]:.0f} s; fit failures (ticker × origin): "
            + (", ".join(f"{m}: {c}" for m, c in sorted(failures[n].items())) or "none")
            for n in tables
        ),
        "",
        "Command:",
        "",
        f"    {command}",
        "",
        "Policies: **nightly** refits every model at every origin on the returns up to it. **stored** is "
        "production: every model is refitted on a fixed cadence (the scheduled `forecasts/fits` refit, on "
        "the data up to that session) and each origin applies the latest fit to the returns up to the "
        "origin with its estimates fixed (ARIMA Kalman update, GARCH variance recursion, SSA projection "
        "on the stored basis); a ticker without a fit, or with one older than the maximum age, is fitted "
        "on first sight. Same origins, tickers, horizons and ensemble rule. RMSE / RW is pooled over rows "
        "shared with the random walk (the random walk's own std is also a stored estimate under the "
        "stored policy).",
        "",
        "## Side by side",
        "",
        policy_comparison(tables),
        "",
    ]
    for n, table in tables.items():
        body += [f"## Policy {n}", "", results_table(table), ""]
    path.write_text("\n".join(body))


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; see the module docstring."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parquet", required=True)
    ap.add_argument("--start", type=dt.date.fromisoformat, required=True)
    ap.add_argument("--end", type=dt.date.fromisoformat, required=True)
    ap.add_argument("--tickers", type=int, default=None, help="random sample of N tickers (all if omitted)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--models", nargs="*", default=list(catalog.ALL_MODELS))
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--history", type=int, default=1000)
    ap.add_argument("--min-history", type=int, default=252)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument(
        "--predictions-out",
        type=Path,
        default=None,
        help="also write every (origin, ticker, model, horizon) forecast with its realization here",
    )
    ap.add_argument("--policies", nargs="+", choices=POLICIES, default=None)
    ap.add_argument("--refit-every", type=int, default=5, help="stored policy: refit cadence (sessions)")
    ap.add_argument("--max-age", type=int, default=DEFAULT_MAX_AGE)
    ap.add_argument("--origin-every", type=int, default=1, help="keep every k-th monthly origin")
    args = ap.parse_args(argv)
    if args.policies:
        return _policies_main(args, argv)

    began = time.perf_counter()
    bars = load_bars(args.parquet, args.tickers, args.seed)
    origins = monthly_origins(args.start, args.end)[:: args.origin_every]
    models = catalog.select(args.models)
    panel_models = catalog.select_panel(args.models)
    failures: Counter[str] = Counter()
    evaluated = _walk_forward(args, bars, origins, models, panel_models, "nightly", failures, "")
    table = compare_to_random_walk(evaluated)
    wall = time.perf_counter() - began
    n_tickers = bars["ticker"].n_unique()
    settings = {
        "data": f"{repo_relative(args.parquet)} ({n_tickers} tickers after sampling and validation)",
        "origins": f"{len(origins)} monthly, {origins[0]} to {origins[-1]}" if origins else "none",
        "models": ", ".join([*models, *panel_models]) + ", ensemble",
        "windows": f"fit on the last ≤ {args.history} daily returns (≥ {args.min_history}); horizons "
        + ", ".join(map(str, HORIZONS)),
        "run date": dt.date.today().isoformat(),
        "machine": f"{os.cpu_count()} cores, {args.workers or default_workers()} workers",
        "wall time": f"{wall:.0f} s",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    realized = evaluated.filter((pl.col("model") == BENCHMARK) & pl.col("actual").is_finite())
    up = realized.group_by("horizon").agg((pl.col("actual") > 0).mean())
    write_report(args.out, table, settings, failures, dict(up.iter_rows()))
    per_origin = accuracy_table(evaluated, by=("origin", "model", "horizon"))
    per_origin.with_columns((pl.col("rmse") ** 2).alias("mse")).select(
        "origin", "model", "horizon", "n", "mse", "mae", "hit_n", "hit_rate", "coverage_80", "coverage_95"
    ).write_parquet(args.out.with_name(f"{args.out.stem}_origins.parquet"))
    if args.predictions_out is not None:
        args.predictions_out.parent.mkdir(parents=True, exist_ok=True)
        evaluated.write_parquet(args.predictions_out)
    print(f"wrote {args.out} in {wall:.0f}s", file=sys.stderr)
    return 0


def _walk_forward(args, bars, origins, models, panel_models, policy: str, failures: Counter, label: str):
    """``run_walk_forward`` under ``policy`` with the command's settings, counting fit failures
    into ``failures`` and printing each origin's progress (prefixed by ``label``) to stderr."""
    began = time.perf_counter()

    def on_origin(origin: dt.date, results: list[TickerResult]) -> None:
        failures.update(m for r in results for m in r.errors)
        print(f"{label}{origin}: {len(results)} tickers, {time.perf_counter() - began:.0f}s", file=sys.stderr)

    return run_walk_forward(
        bars,
        models,
        origins,
        history=args.history,
        min_history=args.min_history,
        horizons=HORIZONS,
        workers=args.workers,
        on_origin=on_origin,
        panel_models=panel_models,
        policy=policy,
        refit_every=args.refit_every,
        max_age=args.max_age,
    )


def _policies_main(args: argparse.Namespace, argv: list[str] | None) -> int:
    """``--policies``: the same walk-forward under each policy, one comparison report."""
    bars = load_bars(args.parquet, args.tickers, args.seed)
    origins = monthly_origins(args.start, args.end)[:: args.origin_every]
    models = catalog.select(args.models)
    panel_models = catalog.select_panel(args.models)
    tables: dict[str, pl.DataFrame] = {}
    failures: dict[str, Counter[str]] = {}
    walls: dict[str, float] = {}
    for policy in args.policies:
        began = time.perf_counter()
        failures[policy] = Counter()
        evaluated = _walk_forward(
            args, bars, origins, models, panel_models, policy, failures[policy], f"{policy} "
        )
        tables[policy] = compare_to_random_walk(evaluated)
        walls[policy] = time.perf_counter() - began
    every = f"every {args.origin_every} " if args.origin_every > 1 else ""
    settings = {
        "data": f"{repo_relative(args.parquet)} ({bars['ticker'].n_unique()} tickers after sampling and validation)",
        "origins": f"{len(origins)}: first session of {every}month(s), {origins[0]} to {origins[-1]}"
        if origins
        else "none",
        "models": ", ".join([*models, *panel_models]) + ", ensemble",
        "stored policy": f"refit every {args.refit_every} sessions, maximum fit age {args.max_age} sessions",
        "windows": f"fit on the last ≤ {args.history} daily returns (≥ {args.min_history}); horizons "
        + ", ".join(map(str, HORIZONS)),
        "run date": dt.date.today().isoformat(),
        "machine": f"{os.cpu_count()} cores, {args.workers or default_workers()} workers",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    command = "python -m model_code.evaluation.report " + " ".join(argv if argv is not None else sys.argv[1:])
    write_policy_report(args.out, tables, settings, failures, walls, command)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
