"""Asset `signals/scorecard`: how the stored signals did once their horizon closed."""

import datetime as dt

import dagster as dg
import polars as pl

from model_code.reporting.plots import calibration_chart
from model_code.signals.scorecard import calibration_table, realized_signals, scorecard
from pm_assets.metadata import image, table
from pm_resources import DUCKDB_POOL, WarehouseResource

FIRST = dt.date(1990, 1, 1)


@dg.asset(
    key=["signals", "scorecard"],
    deps=[dg.AssetKey(["signals", "daily"]), dg.AssetKey(["features", "targets"])],
    group_name="signals",
    kinds={"duckdb", "polars"},
    owners=["team:research"],
    pool=DUCKDB_POOL,
)
def signal_scorecard(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Every stored signal whose horizon has closed, scored per source and action in
    `signals.scorecard`: hit rate ± s.e. beside the always-up rate of the same rows, mean
    realized log return after round-trip costs, profit factor; and in `signals.calibration`
    the predicted confidence against the realized hit rate in bins (a calibrated source sits on
    the diagonal). Metadata `hit_rate_<source>_<action>` charts across runs; `calibration_plot`
    draws the calibration curve per source, `scorecard_table` and `calibration_table` hold the rows.
    """
    with warehouse.open() as wh:
        through = wh.query("SELECT max(target_date_1) AS d FROM features.targets")["d"][0]
        signals = wh.query("@signals_between", [FIRST, through or FIRST])
        targets = wh.query("@targets_between", [FIRST, through or FIRST])
    realized = realized_signals(signals, targets, through) if through else signals.head(0)
    if realized.is_empty():
        why = "no stored signal has a closed horizon yet"
        context.log.info(why)
        metadata = {"scored_signals": dg.MetadataValue.float(0.0), "why_empty": dg.MetadataValue.text(why)}
        if signals.height:
            # What is waiting: the stored signals per source and action, and when the first closes.
            metadata["pending"] = table(
                signals.group_by("source", "action")
                .agg(signals=pl.len(), first_target_date=pl.col("target_date").min())
                .sort("source", "action")
            )
        return dg.MaterializeResult(metadata=metadata)
    card = scorecard(realized)
    calibration = calibration_table(realized)
    stamp = {"evaluated_through": through}
    with warehouse.open() as wh, wh.transaction():
        wh.upsert(
            "signals.scorecard",
            card.with_columns(**{k: pl.lit(v) for k, v in stamp.items()}),
            ["evaluated_through", "source", "action"],
        )
        wh.upsert(
            "signals.calibration",
            calibration.with_columns(**{k: pl.lit(v) for k, v in stamp.items()}),
            ["evaluated_through", "source", "bin_low"],
        )
    metadata: dict[str, dg.MetadataValue] = {
        "scored_signals": dg.MetadataValue.float(float(realized.height)),
        "evaluated_through": dg.MetadataValue.text(through.isoformat()),
    }
    for row in card.iter_rows(named=True):
        tag = f"{row['source']}_{row['action'].lower()}"
        metadata[f"n_{tag}"] = dg.MetadataValue.float(float(row["n"]))
        for key in ("hit_rate", "always_up_rate", "mean_net_return", "profit_factor"):
            if row[key] is not None:
                metadata[f"{key}_{tag}"] = dg.MetadataValue.float(float(row[key]))
    metadata["scorecard"] = dg.MetadataValue.md(_markdown(card))
    metadata["scorecard_table"] = table(card, limit=50)
    if calibration.height:
        metadata["calibration_table"] = table(calibration, limit=50)
        curves = {
            str(src): (g["mean_confidence"].to_list(), g["hit_rate"].to_list())
            for (src,), g in calibration.sort("source", "bin_low").group_by("source", maintain_order=True)
        }
        metadata["calibration_plot"] = image(
            calibration_chart(curves, title=f"signal calibration through {through}"), "calibration curve"
        )
    return dg.MaterializeResult(metadata=metadata)


def _markdown(card: pl.DataFrame) -> str:
    def f(x, fmt):
        return "–" if x is None else format(x, fmt)

    lines = [
        "| source | action | n | hit rate ± s.e. | always up | mean net return | profit factor |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in card.iter_rows(named=True):
        hit = "–" if r["hit_rate"] is None else f"{r['hit_rate']:.3f} ± {r['hit_rate_se']:.3f}"
        lines.append(
            f"| {r['source']} | {r['action']} | {r['n']} | {hit} | {f(r['always_up_rate'], '.3f')} | "
            f"{f(r['mean_net_return'], '.5f')} | {f(r['profit_factor'], '.2f')} |"
        )
    return "\n".join(lines)
