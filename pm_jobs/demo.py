"""``make demo``: load the bundled data since ``$PM_DEMO_START``, train the ML models, forecast, offline.

Three steps, in-process against the Dagster instance in ``$DAGSTER_HOME`` (so the runs, their
asset materializations and check results show up in ``make dev``'s UI):

1. ``nightly_job`` restricted to bars, features and targets (universe, ohlcv, features/daily,
   features/targets) for every NYSE session from ``$PM_DEMO_START`` (default 2018-01-02) to the
   last bundled bar (2022-12-28), cut into runs of at most ``MAX_PARTITIONS_PER_RUN`` (126,
   about half a trading year) sessions the way the asset's backfill policy cuts a UI backfill:
   about 1,250 sessions in 10 runs by default;
2. ``ml_training_job`` once, on that history;
3. the whole ``nightly_job`` (statistical and ML forecasts included) for the last session only.

Then it prints where the DuckDB file is and what it holds.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
import warnings

import dagster as dg
import polars as pl

from model_code.market_data.calendar import trading_calendar
from model_code.market_data.sources.bundled import bundled_bars
from model_code.settings import duckdb_path
from model_code.warehouse import Warehouse

# backfill_policy is a Dagster beta parameter we use on purpose; keep the demo's output clean.
warnings.filterwarnings("ignore", category=dg.BetaWarning)

from pm_assets.market.ohlcv import MAX_PARTITIONS_PER_RUN  # noqa: E402
from pm_jobs.backfill import run_job, session_chunks  # noqa: E402

# 2018-01-02 to the last bundled bar (2022-12-28) is five years: every bundled ticker has bars in
# them (^GSPC/^IXIC end in 2018), in 10 runs of <= 126 sessions. PM_DEMO_START=1990-01-02 loads
# the whole bundled history (8,313 sessions, 66 runs).
DEFAULT_DEMO_START = "2018-01-02"
HISTORY_ASSETS = [
    dg.AssetKey(["market", "universe"]),
    dg.AssetKey(["market", "ohlcv"]),
    dg.AssetKey(["features", "daily"]),
    dg.AssetKey(["features", "targets"]),
]


def demo_range() -> tuple[str, str]:
    """First and last session of the demo run: ``$PM_DEMO_START`` to the last bundled bar."""
    dates = bundled_bars().get_column("date")
    start = dt.date.fromisoformat(os.environ.get("PM_DEMO_START") or DEFAULT_DEMO_START)
    sessions = trading_calendar().sessions_in_range(max(start, dates.min()), dates.max())
    return str(sessions[0]), str(sessions[-1])


def main() -> int:
    start, end = demo_range()
    chunks = session_chunks(start, end)
    keys = [k for chunk in chunks for k in chunk]
    print(
        f"Running nightly_job over the bundled history {start}..{end}: {len(keys)} sessions "
        f"in {len(chunks)} runs of at most {MAX_PARTITIONS_PER_RUN} (as a backfill would), offline ..."
    )
    instance = dg.DagsterInstance.get()
    checks: dict[str, tuple[bool, str]] = {}
    # History: bars, features and targets for every session. The ML models train once on that
    # history (weekly in production), then forecasts, a nightly product (a full refit of every
    # statistical model per as_of), run once for the last session with the ML champions.
    plan = [("nightly_job", chunk, HISTORY_ASSETS, "bars, features, targets") for chunk in chunks]
    plan += [
        ("ml_training_job", None, None, "ML models trained on that history"),
        ("nightly_job", [keys[-1]], None, "full nightly job incl. forecasts and ML predictions"),
    ]
    for job_name, chunk, selection, what in plan:
        began = time.perf_counter()
        # The shipped executor frees the pool slots of an earlier demo that was killed.
        result = run_job(instance, job_name, chunk, selection)
        span = f"{chunk[0]}..{chunk[-1]}" if chunk else f"{start}..{end}"
        if not result.success:
            print(
                f"{job_name} failed for {span} (run {result.run_id}); "
                "see the log above or the run in the UI (make dev).",
                file=sys.stderr,
            )
            return 1
        for check in result.get_asset_check_evaluations():
            ok, _ = checks.get(check.check_name, (True, ""))
            checks[check.check_name] = (ok and check.passed, check.severity.value)
        print(f"  {span} ({what}): run {result.run_id[:8]} ok in {time.perf_counter() - began:.1f}s")
    import duckdb

    path = duckdb_path()
    with duckdb.connect(str(path), read_only=True) as conn:
        wh = Warehouse(conn)
        coverage = wh.query("SELECT * FROM market.ticker_coverage ORDER BY ticker")
        quarantined = wh.count("market.quarantine")
        features = wh.count("features.daily")
        targets = wh.count("features.targets")
        last = dt.date.fromisoformat(keys[-1])
        summary = (
            "SELECT model, horizon, count(*) AS tickers, round(avg(yhat), 5) AS mean_yhat, "
            "round(avg(upper_80 - lower_80), 4) AS mean_width_80 FROM {} WHERE as_of = ? "
            "GROUP BY ALL ORDER BY model, horizon"
        )
        forecasts = wh.query(summary.format("forecasts.predictions"), [last])
        ml_forecasts = wh.query(summary.format("forecasts.ml_predictions"), [last])
        champions = wh.query(
            "SELECT horizon, model_id, round(json_extract(cv_metrics, '$.rank_ic')::DOUBLE, 4) AS "
            "valid_rank_ic, train_start, train_end FROM models.registry WHERE status = 'champion' "
            "ORDER BY family, horizon"
        )
        decisions = wh.query(
            "SELECT decided_at, family, horizon, action, subject, rival, reason FROM models.decisions "
            "ORDER BY decided_at DESC, family, horizon LIMIT 8"
        )
        signals = wh.query(
            "SELECT action, source, count(*) AS signals, round(avg(confidence), 3) AS mean_confidence "
            "FROM signals.daily WHERE as_of = ? GROUP BY ALL ORDER BY action, source",
            [last],
        )
        allocation = wh.query(
            "SELECT method_used, binding_limit, count(*) AS rows, round(sum(weight), 4) AS weight "
            "FROM portfolio.allocations WHERE as_of = ? GROUP BY ALL ORDER BY weight DESC",
            [last],
        )
        backtest = wh.query(
            "SELECT strategy, n_periods, round(cagr, 4) AS cagr, round(sharpe, 2) AS sharpe, "
            "round(max_drawdown, 4) AS max_drawdown, round(dsr, 3) AS dsr FROM backtest.metrics "
            "WHERE run_id = (SELECT run_id FROM backtest.runs ORDER BY created_at DESC LIMIT 1) ORDER BY strategy"
        )
        scorecard = wh.query(
            "SELECT * EXCLUDE (evaluated_through) FROM signals.scorecard WHERE evaluated_through = "
            "(SELECT max(evaluated_through) FROM signals.scorecard) ORDER BY source, action"
        )
    print(coverage)
    print(
        f"\n{coverage['n_bars'].sum()} bars for {coverage.height} tickers; {quarantined} rows quarantined; "
        f"{features} feature rows; {targets} target rows."
    )
    print(f"Statistical forecasts for {keys[-1]} (cumulative log return over h sessions):")
    with pl.Config(tbl_rows=-1, fmt_str_lengths=40):
        print(forecasts)
        print(f"ML forecasts for {keys[-1]} (forecasts.ml_predictions, same units):")
        print(ml_forecasts)
        print("ML champions (models.registry; artifacts under $PM_HOME/models):")
        print(champions)
        print("Latest governance decisions (models.decisions; evidence JSON in its evidence column):")
        print(decisions)
        print(f"Signals for {keys[-1]} by action and source (signals.daily; reasons in its reason column):")
        print(signals)
        print(f"Allocation for {keys[-1]} (portfolio.allocations; CASH included, weights sum to 1):")
        print(allocation)
        if backtest.is_empty():
            print(
                "Backtest: the allocations cover too few sessions to score yet (the demo runs the full "
                "nightly job for its last session only); backtest/run scores them beside 1/N, inverse "
                "volatility and buy-and-hold once they do"
            )
        else:
            print("Backtest of the stored allocations beside its baselines (backtest.metrics, after costs):")
            print(backtest)
        if scorecard.is_empty():
            print(
                "Signal scorecard: no stored signal has a closed horizon yet (signals/scorecard scores them)"
            )
        else:
            print("Signal scorecard (signals.scorecard, net of costs):")
            print(scorecard)
    for name, (ok, severity) in checks.items():
        print(f"  check {name}: {'passed in every run' if ok else f'did not pass in some run ({severity})'}")
    print(f"\nDuckDB warehouse: {path}")
    print(
        f"  query it:  .venv/bin/python -c \"import duckdb; print(duckdb.connect('{path}', read_only=True).sql('FROM market.ticker_coverage'))\""
    )
    print("Dagster UI: make dev, then open http://127.0.0.1:3000 (runs, lineage, checks)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
