"""vectorbt's ``Portfolio.from_orders`` on prepared panels: the comparison leg of ``benchmarks.backtest``.

Run by ``benchmarks.backtest`` with the interpreter of ``.venv-bench`` (``make bench-venv``): the
vectorbt releases that install today pin pandas >= 3 and numba, which clash with the project's
``pandas < 3``, so vectorbt lives in a venv of its own and never in the product's. This script
imports only NumPy and vectorbt; its inputs come in an ``.npz`` written by the parent, and it
prints one JSON line.

    .venv-bench/bin/python benchmarks/vectorbt_from_orders.py PANELS.npz [--repeat 5]

The ``.npz`` holds, per bar (rows) and ticker (columns): ``size`` the target weight to reach on
that bar (the weight decided at the previous close; NaN: no order), ``price`` the fill price
(open, else close; the last close on a delisting row), ``close`` the marks (forward-filled),
``max_size`` the participation cap in shares (inf: none), ``size_uncapped`` the targets of the
run without the cap (orders also where no ADV is known), and the scalars ``init_cash`` and
``fees``. Orders are sized at the previous close (``val_price=-inf``), sells before buys
(``call_seq='auto'``), one cash pool over all tickers.

Timed: one untimed call first (numba compiles its kernels then: the JIT warm-up is excluded), then
best of ``--repeat`` calls of ``from_orders`` + ``value()`` (the equity path, as our backtest
returns one). Also one call without ``max_size``, for the uncapped comparison.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np


def simulate(vbt, p: dict[str, np.ndarray], *, capped: bool):
    pf = vbt.Portfolio.from_orders(
        close=p["close"],
        size=p["size"] if capped else p["size_uncapped"],
        size_type="targetpercent",
        price=p["price"],
        val_price=-np.inf,
        fees=float(p["fees"]),
        slippage=0.0,
        max_size=p["max_size"] if capped else np.inf,
        init_cash=float(p["init_cash"]),
        cash_sharing=True,
        group_by=True,
        call_seq="auto",
        freq="1D",
    )
    return pf, np.asarray(pf.value()).reshape(-1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("panels")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    try:
        import vectorbt as vbt
    except ImportError as exc:  # the parent prints this and carries on without vectorbt
        print(json.dumps({"error": f"vectorbt not importable: {exc}"}))
        return 0
    with np.load(args.panels) as data:
        p = {k: data[k] for k in data.files}
    began = time.perf_counter()
    simulate(vbt, p, capped=True)
    first = time.perf_counter() - began
    times, orders_only, value = [], [], None
    for _ in range(args.repeat):
        began = time.perf_counter()
        pf, value = simulate(vbt, p, capped=True)
        times.append(time.perf_counter() - began)
        began = time.perf_counter()
        vbt.Portfolio.from_orders(
            close=p["close"],
            size=p["size"],
            size_type="targetpercent",
            price=p["price"],
            val_price=-np.inf,
            fees=float(p["fees"]),
            max_size=p["max_size"],
            init_cash=float(p["init_cash"]),
            cash_sharing=True,
            group_by=True,
            call_seq="auto",
            freq="1D",
        )
        orders_only.append(time.perf_counter() - began)
    assert value is not None
    _, uncapped = simulate(vbt, p, capped=False)
    print(
        json.dumps(
            {
                "version": vbt.__version__,
                "first_call_s": first,
                "best_s": min(times),
                "median_s": float(np.median(times)),
                "from_orders_best_s": min(orders_only),
                "final_value": float(value[-1]),
                "final_value_uncapped": float(uncapped[-1]),
                "repeat": args.repeat,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
