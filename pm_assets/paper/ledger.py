"""Assets ``paper/account`` and ``paper/orders``: the paper ledger, one session after another.

One op makes both, day by day over the partition range (a day's fills need the previous day's
orders, and its orders the day's fills): ``paper/account`` is the fills of the previous close's
orders on the day's bars, the corporate actions, the delistings, positions, cash, equity and the
journal; ``paper/orders`` the day's target weights as share orders for the next bar. The logic is
:mod:`model_code.paper`; this module reads, calls it, and writes in one transaction.
"""

import datetime as dt
import math

import dagster as dg
import polars as pl
from pydantic import Field

from model_code.allocation.sessions import HIT_WINDOW, rolling_hit_rate
from model_code.allocation.settings import RiskLimits
from model_code.market_data.calendar import trading_calendar
from model_code.paper import Book, LedgerConfig, backtest_equity, build_tape, step, weights_by_date
from model_code.paper.records import book_from_rows, fills_from_rows, frames, orders_from_rows, reconcile
from model_code.reports.paper_tearsheet import load_paper_rows, paper_figure, write_paper_tearsheet
from pm_assets.backtest.run import BacktestConfig
from pm_assets.market.ohlcv import MAX_PARTITIONS_PER_RUN
from pm_assets.metadata import image
from pm_assets.metadata import table as table_preview
from pm_assets.partitions import partition_dates, trading_days
from pm_resources import DUCKDB_POOL, WarehouseResource
from pm_resources.alerts import AlertsResource

ACCOUNT_KEY = dg.AssetKey(["paper", "account"])
ORDERS_KEY = dg.AssetKey(["paper", "orders"])
ALLOCATIONS = dg.AssetKey(["portfolio", "allocations"])
OHLCV = dg.AssetKey(["market", "ohlcv"])
RECONCILIATION = "paper_reconciliation"
_LIMITS = RiskLimits()
TABLES = ("orders", "fills", "positions", "cash", "equity", "trades")


class PaperConfig(BacktestConfig):
    """The account and its stops; the execution settings are the backtest's (same defaults)."""

    account: str = Field(default="paper", description="Account name: its rows in every paper table.")
    kill_switch_drawdown: float = Field(
        default=_LIMITS.kill_switch_drawdown, description="Drawdown of the account that halts new orders."
    )
    min_hit_rate: float = Field(
        default=_LIMITS.min_hit_rate, description="Rolling hit rate of the signals below which orders halt."
    )
    reset: str | None = Field(
        default=None, description="YYYY-MM-DD a person reviewed a halt: it is lifted after this date."
    )
    stops: bool = Field(default=True, description="False: no risk stop halts the account.")

    def ledger(self) -> LedgerConfig:
        limits = RiskLimits(kill_switch_drawdown=self.kill_switch_drawdown, min_hit_rate=self.min_hit_rate)
        return LedgerConfig(
            account=self.account,
            initial_cash=self.initial_cash,
            execution=self.execution(),
            limits=limits,
            reset=dt.date.fromisoformat(self.reset) if self.reset else None,
            stops=self.stops,
        )


@dg.multi_asset(
    name="paper_ledger",
    specs=[
        dg.AssetSpec(
            ACCOUNT_KEY,
            deps=[OHLCV, ALLOCATIONS],
            group_name="paper",
            kinds={"duckdb", "numpy"},
            owners=["team:research"],
            description="Fills of the previous close's orders at the session's bar, corporate actions, "
            "delistings, positions, cash, equity and the trade journal (paper.fills/positions/cash/"
            "equity/trades). Metadata: `equity_drift_plot` (the account's equity over the backtest of the "
            "same allocations, and the drift) and `tearsheet`, the account's offline HTML report.",
        ),
        dg.AssetSpec(
            ORDERS_KEY,
            deps=[ACCOUNT_KEY, ALLOCATIONS],
            group_name="paper",
            kinds={"duckdb", "numpy"},
            owners=["team:research"],
            description="The session's target weights as share orders at its close, for the next bar "
            "(paper.orders); none while the account is halted.",
        ),
    ],
    check_specs=[
        dg.AssetCheckSpec(
            RECONCILIATION,
            asset=ACCOUNT_KEY,
            description="cash + sum(quantity x close) = equity to the cent, fills within orders, "
            "positions = sum of fills; the drift from the backtest of the same allocations in metadata.",
        )
    ],
    partitions_def=trading_days,
    backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=MAX_PARTITIONS_PER_RUN),
    pool=DUCKDB_POOL,
)
def paper_ledger(
    context: dg.AssetExecutionContext,
    config: PaperConfig,
    warehouse: WarehouseResource,
    alerts: AlertsResource,
):
    """The paper account over the partition's sessions (see the module docstring). Read the
    metadata: equity, cash, gross exposure, orders and fills, the drift from the vectorized
    backtest of the same allocations, why the account is halted when it is, `equity_drift_plot`
    (the account's equity over its backtest's, and the drift) and `tearsheet`, the account's
    offline HTML report under `$PM_HOME/reports/paper/`."""
    cfg = config.ledger()
    account = cfg.account
    start, end = partition_dates(context)
    calendar = trading_calendar()
    with warehouse.open() as wh:
        first = wh.query("SELECT min(date) AS d FROM paper.equity WHERE account = ?", [account])["d"][0]
        since = start if first is None or first > start else first
        warm = calendar.window_start(since, cfg.execution.window + 2)
        prev = wh.query(
            "SELECT * FROM paper.equity WHERE account = ? AND date < ? ORDER BY date DESC LIMIT 1",
            [account, start],
        )
        prev_row = prev.row(0, named=True) if prev.height else None
        prev_date = prev_row["date"] if prev_row else None
        held = wh.query("SELECT * FROM paper.positions WHERE account = ? AND date = ?", [account, prev_date])
        pending = wh.query("SELECT * FROM paper.orders WHERE account = ? AND as_of = ?", [account, prev_date])
        stored_orders = wh.query(
            "SELECT * FROM paper.orders WHERE account = ? AND as_of BETWEEN ? AND ?", [account, start, end]
        )
        stored_fills = wh.query(
            "SELECT * FROM paper.fills WHERE account = ? AND date BETWEEN ? AND ?", [account, start, end]
        )
        bars = wh.query(
            "SELECT ticker, date, open, close, adj_close, volume FROM market.ohlcv WHERE date BETWEEN ? AND ?",
            [warm, end],
        )
        coverage = wh.query("SELECT ticker, last_date FROM market.ticker_coverage")
        allocations = wh.query("@allocations_between", [since, end])
        history = wh.query(
            "SELECT date, equity FROM paper.equity WHERE account = ? AND date < ? ORDER BY date",
            [account, start],
        )
        hit_start = calendar.window_start(start, HIT_WINDOW + 1)
        signals = wh.query("@signals_between", [hit_start, end]) if cfg.stops else None
        targets = wh.query("@targets_between", [hit_start, end]) if cfg.stops else None

    book = book_from_rows(account, prev_row, held, Book.opening(cfg))
    orders = orders_from_rows(pending)
    tape = build_tape(bars, cfg.execution, dict(coverage.iter_rows())) if bars.height else None
    targets_by_date = weights_by_date(allocations)
    all_sessions = calendar.session_dates(hit_start, end)
    days, skipped = [], 0
    for date in calendar.session_dates(start, end):
        if tape is None or date not in tape.dates:
            skipped += 1  # no bar at all: the orders wait for the next session with bars
            continue
        hit = None
        if signals is not None and targets is not None:
            i = all_sessions.index(date)
            hit = rolling_hit_rate(signals, targets, date, all_sessions[max(0, i - HIT_WINDOW) : i])
        day = step(
            book,
            orders,
            tape.session(date),
            targets_by_date.get(date),
            cfg,
            hit_rate=hit,
            stored_fills=fills_from_rows(stored_fills.filter(pl.col("date") == date)) or None,
            stored_orders=orders_from_rows(stored_orders.filter(pl.col("as_of") == date)) or None,
        )
        days.append(day)
        book, orders = day.book, day.orders
    out = frames(days)
    equity = out.equity
    if days:
        ledger_equity = dict(history.iter_rows()) | dict(zip(equity["date"], equity["equity"], strict=True))
        account_start = min(ledger_equity)
        bench = backtest_equity(
            allocations,
            bars,
            start=account_start,
            end=end,
            config=cfg.execution,
            initial_cash=cfg.initial_cash,
        )
        equity = equity.with_columns(
            backtest_equity=pl.Series([bench.get(d) for d in equity["date"]], dtype=pl.Float64)
        ).with_columns(drift=pl.col("equity") / pl.col("backtest_equity") - 1.0)
    stamp = pl.lit(dt.datetime.now(dt.UTC), dtype=pl.Datetime("us", "UTC"))
    dates = [d.book.date for d in days]
    with warehouse.open() as wh, wh.transaction():
        _insert_new(wh, "paper.orders", out.orders.with_columns(created_at=stamp), "order_id")
        _insert_new(wh, "paper.fills", out.fills.with_columns(created_at=stamp), "order_id")
        for table, frame in (("positions", out.positions), ("trades", out.trades)):
            if dates:
                wh.execute(
                    f"DELETE FROM paper.{table} WHERE account = ? AND date BETWEEN ? AND ?",
                    [account, min(dates), max(dates)],
                )
            wh.upsert(f"paper.{table}", frame, _KEYS[table])
        wh.upsert("paper.cash", out.cash, ["account", "date"])
        wh.upsert("paper.equity", equity.with_columns(computed_at=stamp), ["account", "date"])
        rows = {
            t: wh.query(f"SELECT * FROM paper.{t} WHERE account = ? AND date <= ?", [account, end])
            for t in TABLES
            if t != "orders"
        }
        rows["orders"] = wh.query("SELECT * FROM paper.orders WHERE account = ?", [account])
        sheet = load_paper_rows(wh, account, config.model_dump())
    check = reconcile(
        rows["orders"], rows["fills"], rows["positions"], rows["cash"], rows["equity"], rows["trades"], dates
    )
    drift = equity["drift"].drop_nulls() if days else pl.Series([], dtype=pl.Float64)
    last = days[-1].book if days else book
    meta = {
        "equity": float(last.equity),
        "cash": float(last.cash),
        "gross_exposure": float(last.gross_exposure),
        "n_orders": float(out.orders.height),
        "n_fills": float(out.fills.filter(pl.col("quantity") != 0).height),
        "sessions": float(len(days)),
        "sessions_without_bars": float(skipped),
        "dividends": float(out.cash["dividends"].sum()) if days else 0.0,
        "drift_vs_backtest": float(drift[-1]) if drift.len() else 0.0,
        "max_abs_drift_vs_backtest": float(drift.abs().max()) if drift.len() else 0.0,  # type: ignore[arg-type]
        "halted": 1.0 if last.halted else 0.0,
    }
    metadata = {k: dg.MetadataValue.float(v if math.isfinite(v) else 0.0) for k, v in meta.items()}
    metadata["tearsheet"] = dg.MetadataValue.path(str(write_paper_tearsheet(sheet)))
    if sheet.equity.height:
        drift_plot = paper_figure(sheet, small=True)
        metadata["equity_drift_plot"] = image(drift_plot, "paper equity and its drift from the backtest")
    if last.halted:
        metadata["halt_reason"] = dg.MetadataValue.text(last.halt_note or last.halted)
        context.log.warning(f"paper account {account!r} halted: {last.halt_note}; set reset to lift it")
    before = book_from_rows(account, prev_row, held, Book.opening(cfg)).halted
    for day in days:  # one alert on the session a halt fires
        if day.book.halted and not before:
            alerts.send(
                {
                    "kind": "paper_halt",
                    "account": account,
                    "date": day.book.date.isoformat(),  # type: ignore[union-attr]
                    "halt": day.book.halted,
                    "reason": day.book.halt_note,
                    "action": "no new orders until the paper_ledger config's reset is set to the review date",
                    "run_id": context.run.run_id,
                }
            )
        before = day.book.halted
    yield dg.MaterializeResult(asset_key=ACCOUNT_KEY, metadata=metadata)
    order_cols = ["as_of", "ticker", "side", "quantity", "kind", "target_weight", "decision_close"]
    orders_meta = {
        "n_orders": metadata["n_orders"],
        "halted": metadata["halted"],
        "orders": table_preview(out.orders.select(order_cols).sort("as_of", "ticker"), limit=30),
        **({"halt_reason": metadata["halt_reason"]} if "halt_reason" in metadata else {}),
    }
    if out.orders.is_empty():
        orders_meta["why_empty"] = dg.MetadataValue.text(
            "halted: no new orders"
            if last.halted
            else "no session with bars and a target allocation in the range"
        )
    yield dg.MaterializeResult(asset_key=ORDERS_KEY, metadata=orders_meta)
    yield dg.AssetCheckResult(
        check_name=RECONCILIATION,
        asset_key=ACCOUNT_KEY,
        passed=check.passed,
        metadata={
            "sessions": dg.MetadataValue.float(float(check.days)),
            "max_equity_error": dg.MetadataValue.float(float(check.max_equity_error)),
            "equity_breaks": dg.MetadataValue.float(float(len(check.equity_breaks))),
            "cash_breaks": dg.MetadataValue.float(float(len(check.cash_breaks))),
            "overfilled": dg.MetadataValue.float(float(len(check.overfilled))),
            "position_breaks": dg.MetadataValue.float(float(len(check.position_breaks))),
            "drift_vs_backtest": metadata["drift_vs_backtest"],
            "max_abs_drift_vs_backtest": metadata["max_abs_drift_vs_backtest"],
            "first_breaks": dg.MetadataValue.text(
                "; ".join(
                    (check.equity_breaks + check.cash_breaks + check.overfilled + check.position_breaks)[:10]
                )
                or "none"
            ),
        },
    )


_KEYS = {"positions": ["account", "date", "ticker"], "trades": ["account", "date", "ticker", "kind"]}


def _insert_new(wh, table: str, frame: pl.DataFrame, key: str) -> int:
    """Insert the rows whose ``key`` is not stored yet (orders and fills are facts: never rewritten)."""
    if frame.height == 0:
        return 0
    ids = frame[key].to_list()
    known = wh.query(f"SELECT {key} FROM {table} WHERE {key} IN (SELECT unnest(?))", [ids])[key].to_list()
    fresh = frame.filter(~pl.col(key).is_in(known))
    return wh.upsert(table, fresh, [key])
