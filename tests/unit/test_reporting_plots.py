"""The PNG charts of model_code/reporting/plots.py: real PNGs, small, and deterministic."""

import base64
import datetime as dt

import polars as pl
import pytest

from model_code.ml.importance import importance_plot_png
from model_code.reporting import plots

DATES = [dt.date(2019, 1, 1) + dt.timedelta(days=i) for i in range(40)]


def _charts() -> dict[str, bytes]:
    x = list(range(40))
    return {
        "bar": plots.bar_chart(["a", "b", "c"], [0.3, -0.1, 0.05], title="bars", errors=[0.01, 0.02, 0.0]),
        "grouped": plots.grouped_bar_chart(["BUY", "SELL"], {"ts": [3, 1], "ml": [0, 2]}, title="counts"),
        "line": plots.line_chart(
            DATES, {"m": [v / 40 for v in x], "rw": [1.0] * 40}, title="t", reference=1.0
        ),
        "band": plots.band_chart(
            DATES,
            [0.0] * 40,
            lower_80=[-0.01] * 40,
            upper_80=[0.01] * 40,
            lower_95=[-0.02] * 40,
            upper_95=[0.02] * 40,
            actual=[None] * 10 + [0.005] * 30,
            title="band",
        ),
        "calibration": plots.calibration_chart({"ts": ([0.55, 0.65], [0.5, 0.7])}, title="cal"),
        "importance": importance_plot_png(
            pl.DataFrame(
                {
                    "feature": ["f1", "f2"],
                    "gain": [0.6, 0.4],
                    "permutation": [0.02, None],
                    "permutation_std": [0.01, None],
                }
            )
        ),
    }


def test_every_chart_is_a_small_png_and_the_same_input_gives_the_same_bytes():
    first, second = _charts(), _charts()
    for name, png in first.items():
        assert png.startswith(plots.PNG_MAGIC), name
        assert 2_000 < len(png) < 80_000, (name, len(png))
        assert png == second[name], name


def test_markdown_image_embeds_the_bytes_and_refuses_non_png():
    png = plots.bar_chart(["a"], [1.0], title="x")
    md = plots.markdown_image(png, "coverage [h=1]")
    assert md.startswith("![coverage (h=1)](data:image/png;base64,")
    assert base64.b64decode(md.split(",", 1)[1].rstrip(")")) == png
    with pytest.raises(ValueError):
        plots.markdown_image(b"GIF89a", "x")


def test_charts_do_not_touch_pyplot_state():
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    _charts()
    assert plt.get_fignums() == before


def test_domain_charts_draw_forecast_bands_and_ratios_over_time():
    from model_code.reporting.charts import forecast_bands_png, ratio_over_time_png

    forecasts = pl.DataFrame(
        {
            "as_of": DATES[:10],
            "yhat": [0.001] * 10,
            "lower_80": [-0.01] * 10,
            "upper_80": [0.012] * 10,
            "lower_95": [-0.02] * 10,
            "upper_95": [0.022] * 10,
        }
    )
    actuals = pl.DataFrame({"as_of": DATES[:7], "actual": [0.003, -0.02, 0.0, 0.01, 0.0, 0.005, -0.001]})
    png = forecast_bands_png(forecasts, actuals, title="AAA")
    assert png.startswith(plots.PNG_MAGIC) and png == forecast_bands_png(forecasts, actuals, title="AAA")
    history = pl.DataFrame(
        {
            "d": DATES[:4] * 2,
            "model": ["arima"] * 4 + ["garch"] * 3 + ["garch"],
            "rmse_ratio": [1.0, 0.9, 1.1, 1.0, 1.2, None, 1.0, 0.8],
        }
    )
    assert ratio_over_time_png(history, date="d", title="t").startswith(plots.PNG_MAGIC)
