"""Domain pictures built from warehouse frames (polars in, PNG bytes out; see ``plots``).

* :func:`forecast_bands_png`: one ticker's forecasts (median and 80/95 % bands) by as_of,
  beside the realized return once its target closed.
* :func:`ratio_over_time_png`: each model's RMSE ratio against the random walk by date.
"""

from __future__ import annotations

import polars as pl

from model_code.reporting.plots import band_chart, line_chart


def forecast_bands_png(forecasts: pl.DataFrame, actuals: pl.DataFrame, *, title: str) -> bytes:
    """``forecasts``: (as_of, yhat, lower_80, upper_80, lower_95, upper_95) of one ticker, model
    and horizon; ``actuals``: (as_of, actual), the realized log return over the same horizon
    (missing until its target closes). Log returns, drawn by as_of."""
    frame = forecasts.sort("as_of").join(actuals, on="as_of", how="left")
    return band_chart(
        frame["as_of"].to_list(),
        frame["yhat"].to_list(),
        lower_80=frame["lower_80"].to_list(),
        upper_80=frame["upper_80"].to_list(),
        lower_95=frame["lower_95"].to_list(),
        upper_95=frame["upper_95"].to_list(),
        actual=frame["actual"].to_list(),
        title=title,
        ylabel="log return",
    )


def ratio_over_time_png(history: pl.DataFrame, *, date: str, title: str) -> bytes:
    """``history``: (``date``, model, rmse_ratio); one line per model, the random walk at 1."""
    dates = sorted(history[date].unique().to_list())
    series = {}
    for (model,), g in history.sort(date).group_by("model", maintain_order=True):
        by_date = dict(zip(g[date].to_list(), g["rmse_ratio"].to_list(), strict=True))
        series[str(model)] = [by_date.get(d) for d in dates]
    return line_chart(dates, series, title=title, ylabel="RMSE / random walk", reference=1.0)
