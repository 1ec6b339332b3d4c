"""pm_assets/metadata.py: typed table previews with rounded floats, and embedded pictures."""

import datetime as dt

import dagster as dg
import polars as pl

from model_code.reporting.plots import bar_chart
from pm_assets.metadata import image, rounded, table


def test_table_carries_the_column_schema_and_rounds_floats_to_four_significant_digits():
    frame = pl.DataFrame(
        {
            "ticker": ["AAA", "BBB", "CCC"],
            "as_of": [dt.date(2019, 1, 2)] * 3,
            "n": [1, 2, 3],
            "weight": [0.123456789012, 1234.56789, None],
            "held": [True, False, True],
        }
    )
    value = table(frame, limit=2)
    assert isinstance(value, dg.TableMetadataValue)
    assert [(c.name, c.type) for c in value.schema.columns] == [
        ("ticker", "string"),
        ("as_of", "date"),
        ("n", "int"),
        ("weight", "float"),
        ("held", "bool"),
    ]
    assert len(value.records) == 2
    assert value.records[0].data == {
        "ticker": "AAA",
        "as_of": "2019-01-02",
        "n": 1,
        "weight": 0.1235,
        "held": True,
    }
    assert value.records[1].data["weight"] == 1235.0


def test_rounded_keeps_zero_none_and_non_finite_values():
    assert rounded(0.0) == 0.0 and rounded(None) is None and rounded(float("inf")) == float("inf")
    assert rounded(-0.000123456) == -0.0001235


def test_image_is_a_markdown_data_uri():
    value = image(bar_chart(["a"], [1.0], title="t"), "a picture")
    assert isinstance(value, dg.MarkdownMetadataValue)
    assert value.value.startswith("![a picture](data:image/png;base64,iVBORw0KGgo")
