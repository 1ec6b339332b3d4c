"""Signals for the shared universe on one as_of, LLM off: calibration and routing, in process.

Forecast inputs are planted from the shared bars (the signal stage's speed does not depend on
how skilled they are): per ticker, an ML and a TS forecast every session of the calibration
lookback (252 sessions) plus the as_of. Times :func:`~model_code.signals.daily.signals_for_sessions`
for one session, best of ``--repeat``.

    python -m benchmarks.signals [--parquet PATH] [--repeat 5]

Target (issue 10): <= 1 s for 402 tickers on one as_of.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

import numpy as np
import polars as pl

from benchmarks import DEFAULT_PARQUET
from model_code.evaluation.clean_bars import load_clean_bars
from model_code.features import build_targets
from model_code.forecasting.base import Z80
from model_code.forecasting.predictions import target_dates
from model_code.market_data.calendar import trading_calendar
from model_code.signals.daily import signals_for_sessions
from model_code.signals.router import RouterSettings

AS_OF = dt.date(2019, 6, 28)
TARGET_SECONDS = 1.0


def planted(bars: pl.DataFrame, sessions: list[dt.date]) -> pl.DataFrame:
    t = build_targets(bars, [5]).filter(pl.col("date").is_in(sessions))
    rng = np.random.default_rng(0)
    ahead = {d: target_dates(d, [5])[5] for d in sessions}
    actual = t["fwd_ret_5"].fill_null(0.0).to_numpy()
    frames = []
    for source, model, yhat in (
        ("ml", "lgbm", 0.3 * actual + rng.normal(0, 0.01, t.height)),
        ("ts", "ensemble", rng.normal(0, 0.004, t.height)),
    ):
        frames.append(
            pl.DataFrame(
                {
                    "source": source,
                    "origin": t["date"],
                    "ticker": t["ticker"],
                    "model": model,
                    "target_date": t["date"].replace_strict(ahead, return_dtype=pl.Date),
                    "yhat": yhat,
                    "lower_80": yhat - Z80 * 0.03,
                    "upper_80": yhat + Z80 * 0.03,
                }
            )
        )
    return pl.concat(frames)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parquet", default=DEFAULT_PARQUET)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    bars = load_clean_bars(args.parquet, end=AS_OF).bars
    calendar = trading_calendar()
    sessions = [dt.date.fromisoformat(str(d)) for d in calendar.sessions_in_range(dt.date(2018, 5, 1), AS_OF)]
    inputs = planted(bars, sessions)
    targets = build_targets(bars)
    tickers = {AS_OF: bars.filter(pl.col("date") == AS_OF)["ticker"].to_list()}
    times, out = [], None
    for _ in range(args.repeat):
        began = time.perf_counter()
        out = signals_for_sessions([AS_OF], tickers, inputs, targets, RouterSettings(), calendar=calendar)
        times.append(time.perf_counter() - began)
    assert out is not None
    best = min(times)
    print(
        f"signals for {out.height} tickers on {AS_OF} ({inputs.height:,} forecast rows of history): "
        f"best {best:.3f} s, runs {', '.join(f'{t:.3f}' for t in times)} s"
    )
    print(out.group_by("action", "source").len().sort("action", "source"))
    print(f"target <= {TARGET_SECONDS:.0f} s: {'met' if best <= TARGET_SECONDS else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
