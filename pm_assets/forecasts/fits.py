"""Asset `forecasts/fits`: refit the stored statistical fits the nightly forecasts apply."""

import datetime as dt

import dagster as dg
import polars as pl
from pydantic import Field

from model_code.forecasting import catalog
from model_code.forecasting.stored import (
    FitStore,
    dated_return_series,
    due_fits,
    fits_frame,
    fits_from_frame,
    refit_universe,
    save_artifacts,
)
from model_code.settings import pm_home
from pm_assets.metadata import table
from pm_resources import DUCKDB_POOL, WarehouseResource


class FitsConfig(dg.Config):
    """What to refit. The accuracy-decay sensor names models and tickers; the weekly schedule
    leaves `models` empty, which refits every fit that is due."""

    models: dict[str, list[str]] = Field(
        default={},
        description=(
            "Model -> tickers to refit, exactly those (an empty list: every ticker of that model). "
            "Empty: every (ticker, model) whose latest fit is at least min_age sessions old, or has none."
        ),
    )
    min_age: int = Field(
        default=5, description="With no models named: refit fits at least this old (sessions)."
    )
    as_of: str | None = Field(
        default=None,
        description="Fit on the returns up to this session (ISO date); default the last stored bar.",
    )
    history: int = Field(default=1000, description="Daily returns each model is fitted on (sessions).")
    min_history: int = Field(default=252, description="Tickers with fewer returns are skipped.")
    workers: int = Field(default=0, description="Worker processes; 0 = all cores.")


@dg.asset(
    key=["forecasts", "fits"],
    deps=[dg.AssetKey(["market", "ohlcv"])],
    group_name="fits",
    kinds={"duckdb", "statsforecast", "arch", "numpy"},
    owners=["team:research"],
    pool=DUCKDB_POOL,
)
def fits(
    context: dg.AssetExecutionContext, config: FitsConfig, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Refit statistical models on each ticker's daily log returns up to as_of and store the fits
    in `models.fits` (arrays as artifacts under `$PM_HOME/models/fits/`), for
    `forecasts/predictions` to apply with fixed estimates until the next refit.

    Run config `{"models": {"arima": ["AAPL"]}}` refits exactly those models and tickers (the
    accuracy-decay sensor's request); an empty `models` (the weekly schedule) refits every fit
    at least `min_age` sessions old and every ticker/model without one. MSSA-RL is fitted once on
    the universe panel and stored for the requested tickers. Failures are logged, never fatal.
    """
    with warehouse.open() as wh:
        if config.as_of:
            as_of = dt.date.fromisoformat(config.as_of)
        else:
            as_of = wh.query("SELECT max(date) AS d FROM market.ohlcv")["d"][0]
        if as_of is None:
            context.log.info("no stored bars: nothing to fit")
            return dg.MaterializeResult(
                metadata={
                    "fits_written": dg.MetadataValue.float(0.0),
                    "why_empty": dg.MetadataValue.text(
                        "market.ohlcv is empty: materialize market/ohlcv first"
                    ),
                }
            )
        bars = wh.query("@ohlcv_history_until", [as_of])
        stored = wh.query("@fits_until", [as_of, as_of])
    names = list(catalog.select(list(catalog.ALL_MODELS))) + list(catalog.PANEL_FORECASTERS)
    if config.models:
        unknown = sorted(set(config.models) - set(catalog.ALL_MODELS))
        if unknown:
            raise dg.Failure(f"unknown model(s) {unknown}; available: {sorted(catalog.ALL_MODELS)}")
        series = None
        if any(not tickers for tickers in config.models.values()):
            series = dated_return_series(bars, as_of, config.history)
        requested = {m: list(t) if t else sorted(series or {}) for m, t in config.models.items()}
    else:
        series = dated_return_series(bars, as_of, config.history)
        series = {t: rd for t, rd in series.items() if rd[0].size >= config.min_history}
        requested = due_fits(FitStore(fits_from_frame(stored)), series, names, as_of, config.min_age)
    wanted = list(requested)
    made, errors = refit_universe(
        bars,
        as_of,
        requested,
        catalog.select(wanted) if wanted else {},
        catalog.select_panel(wanted) if wanted else {},
        history=config.history,
        min_history=config.min_history,
        workers=config.workers or None,
    )
    made = [f for f in made if f.ticker in set(requested.get(f.model, ()))]
    for (ticker, model), error in sorted(errors.items())[:20]:
        context.log.warning("fit %s %s failed: %s", model, ticker, error)
    saved = save_artifacts(made, pm_home())
    with warehouse.open() as wh, wh.transaction():
        if saved:
            wh.upsert("models.fits", fits_frame(saved), ["ticker", "model", "window_end"])
    metadata = {
        "fits_written": dg.MetadataValue.float(float(len(saved))),
        "fits_failed": dg.MetadataValue.float(float(len(errors))),
        "fits_requested": dg.MetadataValue.float(float(sum(len(t) for t in requested.values()))),
        "fit_seconds_total": dg.MetadataValue.float(
            float(sum(f.diagnostics.get("fit_seconds", 0.0) for f in saved))
        ),
    }
    for model in sorted(requested):
        metadata[f"fits_written_{model}"] = dg.MetadataValue.float(
            float(sum(f.model == model for f in saved))
        )
    metadata["fits_by_model"] = table(
        pl.DataFrame(
            {
                "model": sorted(requested),
                "requested": [len(requested[m]) for m in sorted(requested)],
                "written": [sum(f.model == m for f in saved) for m in sorted(requested)],
            },
            schema={"model": pl.String, "requested": pl.Int64, "written": pl.Int64},
        )
    )
    return dg.MaterializeResult(metadata=metadata)
