"""Rule-based strategies on TA-Lib-exact indicators: sma_cross, rsi_reversion, bb_breakout, macd_trend.

Trend rules hold while their condition holds; reversion and breakout rules enter on a trigger and hold
until their exit condition (hysteresis), implemented once in `hold_between`.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from pydantic import Field, model_validator

from xray_core.candles.bars import Bars
from xray_core.indicators import bollinger_bands, macd, macd_lookback, rsi, sma
from xray_core.strategies.base import Mode, Strategy, StrategyParams, flat_before


@njit(cache=True)
def hold_between(
    enter_long: np.ndarray,
    exit_long: np.ndarray,
    enter_short: np.ndarray,
    exit_short: np.ndarray,
    allow_short: bool,
) -> np.ndarray:  # pragma: no cover - numba
    """Enter on a trigger, hold until the exit condition; an exit and an opposite entry on the same
    bar reverse the position."""
    out = np.zeros(enter_long.shape[0], dtype=np.int8)
    position = 0
    for t in range(enter_long.shape[0]):
        if (position == 1 and exit_long[t]) or (position == -1 and exit_short[t]):
            position = 0
        if position == 0:
            if enter_long[t]:
                position = 1
            elif allow_short and enter_short[t]:
                position = -1
        out[t] = position
    return out


def _trend(up: np.ndarray, down: np.ndarray, mode: Mode) -> np.ndarray:
    """Long while `up`, short while `down` (long_short only), flat otherwise; NaN comparisons are False."""
    positions = up.astype(np.int8)
    if mode is Mode.LONG_SHORT:
        positions -= down.astype(np.int8)
    return positions


class SmaCrossParams(StrategyParams):
    fast: int = Field(10, ge=2, le=200, description="Fast moving-average period")
    slow: int = Field(50, ge=3, le=400, description="Slow moving-average period")

    @model_validator(mode="after")
    def _fast_below_slow(self) -> SmaCrossParams:
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be below slow ({self.slow})")
        return self


class SmaCross(Strategy):
    name = "sma_cross"
    description = "Long while SMA(fast) > SMA(slow) on the close, flat (or short) otherwise"
    Params = SmaCrossParams

    def warmup(self, params: SmaCrossParams) -> int:
        return params.slow - 1

    def positions(self, bars: Bars, params: SmaCrossParams, mode: Mode = Mode.LONG_ONLY) -> np.ndarray:
        fast, slow = sma(bars.close, params.fast), sma(bars.close, params.slow)
        return flat_before(_trend(fast > slow, fast < slow, mode), self.warmup(params))


class RsiReversionParams(StrategyParams):
    period: int = Field(14, ge=2, le=100, description="RSI period (Wilder)")
    lower: float = Field(30.0, ge=1.0, le=50.0, description="Oversold: go long below it")
    upper: float = Field(70.0, ge=50.0, le=99.0, description="Overbought: exit (or go short) above it")

    @model_validator(mode="after")
    def _ordered(self) -> RsiReversionParams:
        if self.lower >= self.upper:
            raise ValueError(f"lower ({self.lower}) must be below upper ({self.upper})")
        return self


class RsiReversion(Strategy):
    name = "rsi_reversion"
    description = "Long from RSI < lower until RSI > upper; short from RSI > upper until RSI < lower"
    Params = RsiReversionParams

    def warmup(self, params: RsiReversionParams) -> int:
        return params.period

    def positions(self, bars: Bars, params: RsiReversionParams, mode: Mode = Mode.LONG_ONLY) -> np.ndarray:
        value = rsi(bars.close, params.period)
        oversold, overbought = value < params.lower, value > params.upper
        positions = hold_between(oversold, overbought, overbought, oversold, mode is Mode.LONG_SHORT)
        return flat_before(positions, self.warmup(params))


class BbBreakoutParams(StrategyParams):
    period: int = Field(20, ge=2, le=200, description="Bollinger window")
    k: float = Field(2.0, ge=0.5, le=4.0, description="Band width in population standard deviations")


class BbBreakout(Strategy):
    name = "bb_breakout"
    description = "Long from a close above the upper band until a close below the middle (short mirrored)"
    Params = BbBreakoutParams

    def warmup(self, params: BbBreakoutParams) -> int:
        return params.period - 1

    def positions(self, bars: Bars, params: BbBreakoutParams, mode: Mode = Mode.LONG_ONLY) -> np.ndarray:
        bands = bollinger_bands(bars.close, params.period, params.k)
        close = bars.close
        positions = hold_between(
            close > bands.upper,
            close < bands.middle,
            close < bands.lower,
            close > bands.middle,
            mode is Mode.LONG_SHORT,
        )
        return flat_before(positions, self.warmup(params))


class MacdTrendParams(StrategyParams):
    fast: int = Field(12, ge=2, le=100, description="Fast EMA period")
    slow: int = Field(26, ge=3, le=200, description="Slow EMA period")
    signal: int = Field(9, ge=1, le=100, description="Signal EMA period")

    @model_validator(mode="after")
    def _fast_below_slow(self) -> MacdTrendParams:
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be below slow ({self.slow})")
        return self


class MacdTrend(Strategy):
    name = "macd_trend"
    description = "Long while MACD > its signal line, flat (or short) otherwise"
    Params = MacdTrendParams

    def warmup(self, params: MacdTrendParams) -> int:
        return macd_lookback(params.fast, params.slow, params.signal)

    def positions(self, bars: Bars, params: MacdTrendParams, mode: Mode = Mode.LONG_ONLY) -> np.ndarray:
        lines = macd(bars.close, params.fast, params.slow, params.signal)
        return flat_before(
            _trend(lines.macd > lines.signal, lines.macd < lines.signal, mode), self.warmup(params)
        )
