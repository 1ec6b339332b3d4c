"""The configured history: PM_HISTORY_START / PM_HISTORY_END and the bundled data's last bar."""

import datetime as dt

import pytest

from model_code.history import DEFAULT_HISTORY_START, history_window
from model_code.market_data.sources.bundled import BUNDLED_LAST_DATE, bundled_bars
from pm_assets.partitions import trading_days


def test_the_bundled_last_date_is_the_data_s_last_bar():
    assert bundled_bars().get_column("date").max() == BUNDLED_LAST_DATE


def test_bundled_only_ends_at_its_last_bar_and_other_sources_are_open_ended():
    assert history_window({}) == (DEFAULT_HISTORY_START, BUNDLED_LAST_DATE)
    assert history_window({"PM_SOURCES": " bundled "}) == (DEFAULT_HISTORY_START, BUNDLED_LAST_DATE)
    assert history_window({"PM_SOURCES": "yfinance,bundled"}) == (DEFAULT_HISTORY_START, None)
    env = {"PM_SOURCES": "parquet", "PM_HISTORY_START": "2015-01-02", "PM_HISTORY_END": "2019-12-31"}
    assert history_window(env) == (dt.date(2015, 1, 2), dt.date(2019, 12, 31))


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PM_HISTORY_START": "02/01/2018"}, "PM_HISTORY_START='02/01/2018' is not a date"),
        ({"PM_HISTORY_END": "2018-13-01"}, "PM_HISTORY_END='2018-13-01' is not a date"),
        ({"PM_HISTORY_START": "2020-01-02", "PM_HISTORY_END": "2019-01-02"}, "is before PM_HISTORY_START"),
    ],
)
def test_a_bad_history_setting_is_refused_with_its_name(env, message):
    with pytest.raises(ValueError, match=message):
        history_window(env)


def test_the_partitions_cover_exactly_the_configured_history():
    start, end = history_window()
    keys = trading_days.get_partition_keys()
    assert keys[0] == start.isoformat()
    assert end is None or keys[-1] == end.isoformat()
