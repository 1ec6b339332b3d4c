"""config/signals.yaml's router section: the asset's defaults, checked against the code's."""

import pytest

from model_code.costs import TradingCosts
from model_code.signals.config import ROUTER_KEYS, load_router_defaults
from model_code.signals.daily import DEFAULT_CALIBRATION_LOOKBACK
from model_code.signals.router import RouterSettings
from pm_assets.signals.daily import SignalConfig


def test_the_shipped_router_section_states_the_code_defaults_and_feeds_the_asset_config():
    shipped = load_router_defaults()
    assert set(shipped) == set(ROUTER_KEYS)
    code = RouterSettings()
    assert shipped["ts"] == code.enabled["ts"] and shipped["ml"] == code.enabled["ml"]
    assert (shipped["primary"], shipped["min_confidence"], shipped["horizon"]) == (
        code.primary,
        code.min_confidence,
        code.horizon,
    )
    assert (
        (shipped["commission_bps"], shipped["slippage_bps"])
        == (5.0, 5.0)
        == (
            TradingCosts().commission_bps,
            TradingCosts().slippage_bps,
        )
    )
    assert shipped["calibration_lookback"] == DEFAULT_CALIBRATION_LOOKBACK
    config = SignalConfig()
    assert {k: getattr(config, k) for k in ROUTER_KEYS} == shipped
    assert config.settings().order() == ["ts", "ml"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("router:\n  min_confidnce: 0.6\n", "unknown key"),
        ("router:\n  ts: yes please\n", "router.ts must be bool"),
        ("router:\n  horizon: 5.5\n", "router.horizon must be int"),
        ("router:\n  min_confidence: true\n", "router.min_confidence must be float"),
        ("router: [ts]\n", "must be a mapping"),
    ],
)
def test_a_bad_router_section_is_refused_naming_the_key_and_file(tmp_path, body, message):
    path = tmp_path / "signals.yaml"
    path.write_text(body)
    with pytest.raises(ValueError, match=message) as err:
        load_router_defaults(path)
    assert str(path) in str(err.value)


def test_a_file_without_the_section_gives_no_overrides(tmp_path):
    path = tmp_path / "signals.yaml"
    path.write_text("llm:\n  enabled: false\n")
    assert load_router_defaults(path) == {}
