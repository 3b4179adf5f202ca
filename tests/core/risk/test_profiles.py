"""Risk profiles: volatility targeting, capped fractional Kelly, a drawdown brake, user bounds."""

import pytest

from xray_core.errors import ConfigError
from xray_core.risk.profiles import DEFAULT_PROFILES, MarketState, RiskProfile, size, size_all

BALANCED = next(p for p in DEFAULT_PROFILES if p.name == "balanced")


def _state(vol: float = 0.4, dd: float = 0.0, win: float = 0.55, payoff: float = 1.5) -> MarketState:
    return MarketState("BTC/USDT", vol, dd, win, payoff)


def test_leverage_targets_volatility_within_bounds():
    assert size(BALANCED, _state(vol=0.2))["leverage"] == 2.0  # 0.4 / 0.2
    assert size(BALANCED, _state(vol=0.05))["leverage"] == 3.0  # capped
    wild = size(BALANCED, _state(vol=2.0))
    assert wild["leverage"] == 1.0 and "raised to its minimum" in wild["notes"]


def test_trade_percentage_is_a_capped_fraction_of_kelly():
    row = size(BALANCED, _state(win=0.55, payoff=1.5))
    kelly = 0.55 - 0.45 / 1.5
    assert row["kelly"] == pytest.approx(kelly)
    assert row["trade_percentage"] == pytest.approx(0.5 * kelly, abs=1e-4)
    no_edge = size(BALANCED, _state(win=0.3, payoff=1.0))
    assert no_edge["trade_percentage"] == BALANCED.trade_percentage[0]
    assert "no edge" in no_edge["notes"]


def test_a_drawdown_past_the_brake_shrinks_sizing_to_the_minimum():
    calm = size(BALANCED, _state(vol=0.2, dd=0.05))
    half = size(BALANCED, _state(vol=0.2, dd=0.225))  # halfway between the brake (15%) and 30%
    floor = size(BALANCED, _state(vol=0.2, dd=0.35))
    assert calm["leverage"] == 2.0
    assert half["leverage"] == pytest.approx(1.5)
    assert floor["leverage"] == 1.0 and floor["trade_percentage"] == BALANCED.trade_percentage[0]


def test_more_volatility_keeps_more_margin():
    quiet = size(BALANCED, _state(vol=0.2))["margin_multiplier"]
    loud = size(BALANCED, _state(vol=0.8))["margin_multiplier"]
    assert BALANCED.margin_multiplier[0] <= quiet < loud <= BALANCED.margin_multiplier[1]


def test_every_profile_and_symbol_gets_a_row_and_bounds_always_hold():
    states = [_state(vol=v, dd=d, win=w) for v in (0.01, 0.4, 5.0) for d in (0.0, 0.5) for w in (0.2, 0.7)]
    frame = size_all(DEFAULT_PROFILES, states)
    assert frame.height == len(DEFAULT_PROFILES) * len(states)
    for profile in DEFAULT_PROFILES:
        rows = frame.filter(frame["profile"] == profile.name)
        assert rows["leverage"].min() >= profile.leverage[0] and rows["leverage"].max() <= profile.leverage[1]
        assert rows["trade_percentage"].max() <= profile.trade_percentage[1]


def test_bad_bounds_are_config_errors():
    with pytest.raises(ConfigError, match="leverage bounds"):
        RiskProfile("x", 0.4, 0.5, (3.0, 1.0), (0.1, 0.2), (1.1, 2.0), 0.1)
    with pytest.raises(ConfigError, match="at most 1"):
        RiskProfile("x", 0.4, 0.5, (1.0, 2.0), (0.1, 1.5), (1.1, 2.0), 0.1)


def test_market_state_measures_the_recent_window(candles_dir):
    import math

    import numpy as np

    from xray_core.backtest import BacktestConfig
    from xray_core.candles.bars import Bars
    from xray_core.candles.schema import read_parquet
    from xray_core.risk.states import market_state

    bars = Bars.from_frame(read_parquet(candles_dir / "BTC_USDT-5m.parquet"))
    state = market_state("BTC/USDT", bars, "rsi_reversion", {}, BacktestConfig(), recent_bars=3000)
    returns = np.diff(np.log(bars.close[-3000:]))
    assert state.realized_vol == pytest.approx(returns.std(ddof=1) * math.sqrt(365 * 288))
    assert 0.0 <= state.drawdown < 1.0 and 0.0 <= state.win_rate <= 1.0 and state.payoff >= 0.0
