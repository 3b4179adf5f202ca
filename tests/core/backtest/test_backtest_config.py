"""BacktestConfig: sensible defaults, and every bad value rejected with a message naming it."""

import math

import pytest

from xray_core.backtest import BacktestConfig
from xray_core.errors import ConfigError, XrayError


def test_defaults_are_valid_and_frozen():
    config = BacktestConfig()
    settings = (config.mode, config.size_fraction, config.leverage, config.sl_atr)
    assert settings == ("long_only", 1.0, 1.0, None)
    assert not config.needs_high_low
    with pytest.raises(AttributeError):
        config.fee = 0.5  # type: ignore[misc]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"fee": -0.001}, r"fee must be in \[0, 0.1\], got -0.001"),
    ({"fee": 0.5}, r"fee must be in \[0, 0.1\], got 0.5"),
    ({"fee": math.nan}, "fee must be in"),
    ({"fee": "0.001"}, "fee must be in"),
    ({"slippage": 0.2}, r"slippage must be in \[0, 0.1\]"),
    ({"cash": 0.0}, "cash must be a positive finite amount, got 0.0"),
    ({"cash": math.inf}, "cash must be a positive finite amount"),
    ({"mode": "both"}, "mode must be one of long_only, long_short, got 'both'"),
    ({"size_fraction": 0.0}, r"size_fraction must be in \(0, 1\], got 0.0"),
    ({"size_fraction": 1.5}, r"size_fraction must be in \(0, 1\]"),
    ({"leverage": 0.5}, r"leverage must be in \[1, 125\], got 0.5"),
    ({"leverage": 500.0}, r"leverage must be in \[1, 125\]"),
    ({"maintenance_margin": -0.01}, "maintenance_margin must be in"),
    ({"leverage": 100.0, "maintenance_margin": 0.01}, "maintenance_margin x leverage must be below 1"),
    ({"sl_atr": 0.0}, "sl_atr must be a positive number of ATRs or None, got 0.0"),
    ({"tp_atr": -2.0}, "tp_atr must be a positive number of ATRs"),
    ({"sl_atr": math.nan}, "sl_atr must be a positive number"),
    ({"sl_atr": True}, "sl_atr must be a positive number"),
])
def test_bad_values_are_rejected_clearly(kwargs, message):
    with pytest.raises(ConfigError, match=message) as info:
        BacktestConfig(**kwargs)
    assert isinstance(info.value, XrayError)
    assert info.value.hint  # every rejection says what to do


def test_what_needs_high_and_low():
    assert BacktestConfig(mode="long_short").needs_high_low  # an unlevered short can be liquidated
    assert BacktestConfig(leverage=2.0).needs_high_low
    assert BacktestConfig(tp_atr=3.0).needs_high_low and BacktestConfig(tp_atr=3.0).uses_stops


def test_sim_params_are_the_kernels_view_of_the_config():
    params = BacktestConfig(fee=0.002, slippage=0.0005, cash=500, mode="long_short", sl_atr=2).sim_params()
    assert (params.fee, params.slippage, params.cash, params.sl_atr) == (0.002, 0.0005, 500.0, 2.0)
    assert math.isnan(params.tp_atr)  # a disabled level is NaN: the kernels test `k == k`
    assert params.long_short and params.check_hl
    plain = BacktestConfig().sim_params()
    assert not plain.long_short and not plain.check_hl and math.isnan(plain.sl_atr)
    # numba types each field by its Python type: every one must be a float or a bool, never an int
    assert all(type(value) in (float, bool) for value in (*params, *plain))
