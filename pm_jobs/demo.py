"""``make demo``: load the bundled history, then replay its last three months night by night, offline.

In-process against the Dagster instance in ``$DAGSTER_HOME`` (so the runs, their asset
materializations and check results show up in ``make dev``'s UI):

1. history: ``nightly_job`` restricted to bars, features and targets (universe, ohlcv,
   features/daily, features/targets) for every NYSE session from ``$PM_HISTORY_START`` (default
   2018-01-02) to the session before the replay, cut into runs of at most
   ``MAX_PARTITIONS_PER_RUN`` (126) sessions the way the asset's backfill policy cuts a UI
   backfill;
2. replay: the last ``$PM_DEMO_REPLAY_SESSIONS`` (default 63, three months) sessions of the
   bundled data week by week, as production runs them: ``ml_training_job`` on what was known at
   the previous week's last close (``until``; the weekly retraining), then the whole
   ``nightly_job`` (forecasts, ML predictions, signals, allocations, backtest) for that week's
   sessions in one run.

Then it prints what the warehouse holds: bars, forecasts, ML champions and governance decisions,
signals, the last allocation, the backtest of every replayed allocation beside 1/N, inverse
volatility and buy-and-hold after costs, and the paper account's equity beside that backtest. Every number it prints is out of sample: each night sees only bars
up to its close, and each week's ML models only what was known before it.
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
from model_code.progress import track
from model_code.settings import duckdb_path
from model_code.warehouse import Warehouse

# backfill_policy is a Dagster beta parameter we use on purpose; keep the demo's output clean.
warnings.filterwarnings("ignore", category=dg.BetaWarning)

from pm_assets.market.ohlcv import MAX_PARTITIONS_PER_RUN  # noqa: E402
from pm_assets.partitions import HISTORY_END, HISTORY_START  # noqa: E402
from pm_jobs.backfill import run_job, session_chunks  # noqa: E402
from pm_jobs.instance import dagster_instance  # noqa: E402

# The configured history (PM_HISTORY_START, default 2018-01-02, to the last bundled bar,
# 2022-12-28) is five years: every bundled ticker has bars in them (^GSPC/^IXIC end in 2018), in
# 10 runs of <= 126 sessions. PM_HISTORY_START=1990-01-02 loads the whole bundled history (8,313
# sessions, 66 runs).
HISTORY_ASSETS = [
    dg.AssetKey(["market", "universe"]),
    dg.AssetKey(["market", "ohlcv"]),
    dg.AssetKey(["features", "daily"]),
    dg.AssetKey(["features", "targets"]),
]


DEFAULT_REPLAY_SESSIONS = 63


def demo_range() -> tuple[str, str]:
    """First and last session of the demo run: the partitions' first session (the configured
    history, ``$PM_HISTORY_START``) to the last bundled bar."""
    dates = bundled_bars().get_column("date")
    end = min(dates.max(), HISTORY_END or dates.max())
    sessions = trading_calendar().sessions_in_range(max(HISTORY_START, dates.min()), end)
    return str(sessions[0]), str(sessions[-1])


def replay_weeks(keys: list[str], sessions: int) -> tuple[list[str], list[list[str]]]:
    """Split ``keys`` into the history before the replay and the replay's last ``sessions``
    sessions grouped by ISO week (one nightly run and one retraining per week)."""
    if sessions < 1 or sessions >= len(keys):
        raise SystemExit(
            f"PM_DEMO_REPLAY_SESSIONS={sessions} must be between 1 and {len(keys) - 1} "
            f"(the demo range holds {len(keys)} sessions)"
        )
    history, replay = keys[:-sessions], keys[-sessions:]
    weeks: dict[tuple[int, int], list[str]] = {}
    for key in replay:
        weeks.setdefault(dt.date.fromisoformat(key).isocalendar()[:2], []).append(key)
    return history, list(weeks.values())


def _step(instance, checks, job_name, chunk, selection, what, run_config=None) -> bool:
    began = time.perf_counter()
    # The shipped executor frees the pool slots of an earlier demo that was killed.
    result = run_job(instance, job_name, chunk, selection, run_config)
    span = f"{chunk[0]}..{chunk[-1]}" if chunk else ""
    if not result.success:
        print(
            f"{job_name} failed {span} (run {result.run_id}); see the log above or the run in the UI (make dev).",
            file=sys.stderr,
        )
        return False
    for check in result.get_asset_check_evaluations():
        ok, _ = checks.get(check.check_name, (True, ""))
        checks[check.check_name] = (ok and check.passed, check.severity.value)
    print(f"  {span} {what}: run {result.run_id[:8]} ok in {time.perf_counter() - began:.1f}s")
    return True


def main() -> int:
    start, end = demo_range()
    keys = [k for chunk in session_chunks(start, end) for k in chunk]
    replay_sessions = int(os.environ.get("PM_DEMO_REPLAY_SESSIONS") or DEFAULT_REPLAY_SESSIONS)
    history, weeks = replay_weeks(keys, replay_sessions)
    chunks = [history[i : i + MAX_PARTITIONS_PER_RUN] for i in range(0, len(history), MAX_PARTITIONS_PER_RUN)]
    print(
        f"Bundled data {start}..{end}, offline. History: bars, features and targets for {len(history)} "
        f"sessions in {len(chunks)} runs of at most {MAX_PARTITIONS_PER_RUN} (as a backfill would). "
        f"Replay: the last {replay_sessions} sessions in {len(weeks)} weeks, each a weekly ML retraining "
        "on what was known before it, then the whole nightly job ..."
    )
    instance = dagster_instance()
    checks: dict[str, tuple[bool, str]] = {}
    for chunk in track(chunks, "history runs", log=print, every_seconds=30):
        if not _step(instance, checks, "nightly_job", chunk, HISTORY_ASSETS, "(bars, features, targets)"):
            return 1
    previous = history[-1]
    for week in track(weeks, "replayed weeks", log=print, every_seconds=0):
        training = {"ops": {"ml__model": {"config": {"until": previous}}}}
        if not _step(
            instance, checks, "ml_training_job", None, None, f"ML trained on data to {previous}", training
        ):
            return 1
        if not _step(instance, checks, "nightly_job", week, None, "(whole nightly job)"):
            return 1
        previous = week[-1]
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
            "SELECT strategy, n_periods AS sessions, round(total_return, 4) AS total_return, "
            "round(volatility, 4) AS volatility, round(sharpe, 2) AS sharpe, round(max_drawdown, 4) AS "
            "max_drawdown, round(mean_turnover, 3) AS turnover, round(psr, 3) AS psr, round(dsr, 3) AS dsr "
            "FROM backtest.metrics WHERE run_id = (SELECT run_id FROM backtest.runs ORDER BY created_at "
            "DESC LIMIT 1) ORDER BY strategy = 'strategy' DESC, strategy"
        )
        window = wh.query("SELECT data_start, data_end FROM backtest.runs ORDER BY created_at DESC LIMIT 1")
        paper = wh.query(
            "SELECT min(date) AS first_day, max(date) AS last_day, count(*) AS sessions, "
            "arg_min(equity, date) AS start_equity, arg_max(equity, date) AS paper_equity, "
            "arg_max(backtest_equity, date) AS backtest_equity, max(abs(drift)) AS max_abs_drift, "
            "max(drawdown) AS max_drawdown, sum(n_fills) AS fills, "
            "count(*) FILTER (WHERE halted IS NOT NULL) AS halted_days FROM paper.equity WHERE account = 'paper'"
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
    with pl.Config(tbl_rows=-1, tbl_cols=-1, tbl_width_chars=220, fmt_str_lengths=40):
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
                "Backtest: the allocations cover too few sessions to score yet (PM_DEMO_REPLAY_SESSIONS "
                "too small); backtest/run scores them beside 1/N, inverse volatility and buy-and-hold once they do"
            )
        else:
            span = f"{window['data_start'][0]}..{window['data_end'][0]}"
            print(
                f"Backtest of every replayed allocation {span} beside its baselines (backtest.metrics; "
                "next-open fills, 5 + 5 bps a side; total_return and max_drawdown as fractions, sharpe "
                "annualised; a three-month record is far too short to tell skill from luck, see psr/dsr):"
            )
            print(backtest)
        if paper.is_empty() or paper["sessions"][0] == 0:
            print("Paper account: no session traded yet (paper/account fills the previous close's orders)")
        else:
            row = paper.row(0, named=True)
            print(
                f"Paper account {row['first_day']}..{row['last_day']} ({row['sessions']} sessions, "
                f"{row['fills']} fills, {row['halted_days']} days halted): equity "
                f"{row['start_equity']:,.2f} -> {row['paper_equity']:,.2f}; the vectorized backtest of the "
                f"same allocations ends at {row['backtest_equity'] or float('nan'):,.2f} (largest daily drift "
                f"{row['max_abs_drift'] or 0.0:.2e} relative; max drawdown {row['max_drawdown']:.2%}). "
                "paper.* holds its orders, fills, positions, cash and trades."
            )
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
