"""Signals for the shared universe on one as_of, LLM off: calibration and routing, in process.

Forecast inputs are planted from the shared bars by ``tests.signal_cases.planted_forecasts``
(the signal stage's speed does not depend on how skilled they are): per ticker, an ML and a TS
forecast every session of the calibration lookback (252 sessions) plus the as_of. Times :func:`~model_code.signals.daily.signals_for_sessions`
for one session, best of ``--repeat``.

    python -m benchmarks.signals [--parquet PATH] [--repeat 5]

Target (issue 10): <= 1 s for 402 tickers on one as_of.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

import polars as pl

from benchmarks import DEFAULT_PARQUET
from model_code.evaluation.clean_bars import load_clean_bars
from model_code.features import build_targets
from model_code.market_data.calendar import trading_calendar
from model_code.signals.daily import signals_for_sessions
from model_code.signals.router import RouterSettings
from tests.signal_cases import planted_forecasts

AS_OF = dt.date(2019, 6, 28)
TARGET_SECONDS = 1.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parquet", default=DEFAULT_PARQUET)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    bars = load_clean_bars(args.parquet, end=AS_OF).bars
    calendar = trading_calendar()
    sessions = calendar.session_dates(dt.date(2018, 5, 1), AS_OF)
    inputs = planted_forecasts(bars, sessions, skill=0.3)
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
