"""Momentum oscillators: Wilder's RSI and the (slow) stochastic oscillator.

Same conventions as `trend`: float arrays in, float64 arrays of the same length out, NaN for the
`*_lookback(...)` warm-up bars, equal to TA-Lib's RSI and STOCH to within rounding.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from xray_core.indicators import _checks, kernels
from xray_core.indicators._checks import FloatArray


def rsi_lookback(period: int = 14) -> int:
    """Bars before the first RSI value: period (bar 0 has no change)."""
    return _checks.period("RSI", "period", period, 2)


def rsi(close: ArrayLike, period: int = 14) -> FloatArray:
    """Wilder's relative strength index, RSI = 100·AvgGain/(AvgGain + AvgLoss) (TA_RSI).

    AvgGain/AvgLoss start as the mean gain/loss of bars 1..period and are Wilder-smoothed after:
    A_t = (A_{t-1}·(period - 1) + v_t)/period. A flat history gives 0 as in TA-Lib. `period` >= 2."""
    lookback = rsi_lookback(period)
    x = _checks.series(close, "RSI", "close")
    _checks.enough_bars("RSI", x.size, lookback, f"period {period}")
    return kernels.wilder_rsi(x, period)


class Stochastic(NamedTuple):
    """Slow stochastic: %K (the smoothed fast %K) and %D (the SMA of %K)."""

    k: FloatArray
    d: FloatArray


def _stochastic_periods(fastk: int, slowk: int, slowd: int) -> tuple[int, int, int]:
    return (_checks.period("STOCH", "fastk_period", fastk, 1),
            _checks.period("STOCH", "slowk_period", slowk, 1),
            _checks.period("STOCH", "slowd_period", slowd, 1))


def stochastic_lookback(fastk_period: int = 5, slowk_period: int = 3, slowd_period: int = 3) -> int:
    """Bars before the first %K and %D: (fastk - 1) + (slowk - 1) + (slowd - 1), 8 by default."""
    fastk, slowk, slowd = _stochastic_periods(fastk_period, slowk_period, slowd_period)
    return fastk + slowk + slowd - 3


def stochastic(high: ArrayLike, low: ArrayLike, close: ArrayLike, fastk_period: int = 5,
               slowk_period: int = 3, slowd_period: int = 3) -> Stochastic:
    """Lane's slow stochastic as TA_STOCH with its defaults (5, 3, SMA, 3, SMA).

    fast %K_t = 100·(C_t - LL)/(HH - LL) over the last `fastk_period` bars (0 when HH = LL);
    %K = SMA(fast %K, slowk_period); %D = SMA(%K, slowd_period). Both outputs start at the same bar,
    `stochastic_lookback(...)`, as in TA-Lib (so %K's first slowd_period - 1 values are NaN even
    though they are computable). Only simple moving averages are supported (TA-Lib's MA type 0)."""
    lookback = stochastic_lookback(fastk_period, slowk_period, slowd_period)
    h = _checks.series(high, "STOCH", "high")
    lo = _checks.series(low, "STOCH", "low")
    c = _checks.series(close, "STOCH", "close")
    bars = _checks.same_length("STOCH", high=h, low=lo, close=c)
    _checks.enough_bars("STOCH", bars, lookback, f"periods {fastk_period}/{slowk_period}/{slowd_period}")
    highest = kernels.rolling_extreme(h, fastk_period, True)
    lowest = kernels.rolling_extreme(lo, fastk_period, False)
    scale = (highest - lowest) / 100.0
    fast_k = np.zeros(bars)
    np.divide(c - lowest, scale, out=fast_k, where=scale != 0.0)
    first = fastk_period - 1
    k = np.full(bars, np.nan)
    k[first:] = kernels.rolling_sum(fast_k[first:], slowk_period) / slowk_period
    first += slowk_period - 1
    d = np.full(bars, np.nan)
    d[first:] = kernels.rolling_sum(k[first:], slowd_period) / slowd_period
    k[:lookback] = np.nan
    return Stochastic(k, d)
