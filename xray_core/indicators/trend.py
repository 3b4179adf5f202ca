"""Trend indicators: SMA, EMA, MACD and Wilder's ADX with +DI/-DI.

Every function takes one-dimensional float arrays (anything `numpy.asarray` accepts), returns float64
arrays of the same length with NaN for the warm-up bars, and equals TA-Lib's function of the same
name (default, non-Metastock compatibility; no unstable period) to within rounding. The warm-up is
`*_lookback(...)` bars, as in TA-Lib: the first value sits at that index. Errors follow the policy
in `xray_core.indicators._checks`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from xray_core.errors import ConfigError
from xray_core.indicators import _checks, kernels
from xray_core.indicators._checks import FloatArray


def sma_lookback(period: int) -> int:
    """Bars before the first SMA value: period - 1."""
    return _checks.period("SMA", "period", period, 1) - 1


def sma(values: ArrayLike, period: int = 20) -> FloatArray:
    """Simple moving average, SMA_t = (x_{t-period+1} + ... + x_t) / period (TA_SMA).

    The window sum is a compensated running sum (O(n)). `period` >= 1."""
    lookback = sma_lookback(period)
    x = _checks.series(values, "SMA", "values")
    _checks.enough_bars("SMA", x.size, lookback, f"period {period}")
    return kernels.rolling_sum(x, period) / period


def ema_lookback(period: int) -> int:
    """Bars before the first EMA value: period - 1 (the seed is the SMA of the first `period`)."""
    return _checks.period("EMA", "period", period, 1) - 1


def ema(values: ArrayLike, period: int = 20) -> FloatArray:
    """Exponential moving average with k = 2/(period + 1): EMA_t = EMA_{t-1} + k·(x_t - EMA_{t-1}),
    seeded at bar period - 1 with the SMA of the first `period` values (TA_EMA). `period` >= 1."""
    lookback = ema_lookback(period)
    x = _checks.series(values, "EMA", "values")
    _checks.enough_bars("EMA", x.size, lookback, f"period {period}")
    return kernels.ema(x, period, lookback)


class MACD(NamedTuple):
    """MACD line (fast EMA - slow EMA), its signal line (EMA of the MACD line) and histogram."""

    macd: FloatArray
    signal: FloatArray
    hist: FloatArray


def _macd_periods(fast: int, slow: int, signal: int) -> tuple[int, int, int]:
    fast = _checks.period("MACD", "fast", fast, 1)
    slow = _checks.period("MACD", "slow", slow, 2)
    signal = _checks.period("MACD", "signal", signal, 1)
    if fast >= slow:
        raise ConfigError(f"MACD: fast period {fast} must be shorter than slow period {slow}",
                                  "the classic setting is fast=12, slow=26, signal=9")
    return fast, slow, signal


def macd_lookback(fast: int = 12, slow: int = 26, signal: int = 9) -> int:
    """Bars before the first MACD value: slow + signal - 2 (33 for 12/26/9)."""
    fast, slow, signal = _macd_periods(fast, slow, signal)
    return slow + signal - 2


def macd(values: ArrayLike, fast: int = 12, slow: int = 26, signal: int = 9) -> MACD:
    """Appel's MACD aligned as TA_MACD aligns it.

    Both EMAs are seeded at bar slow - 1: the slow one with the SMA of the first `slow` values, the
    fast one with the SMA of the `fast` values ending at that same bar (TA-Lib starts the fast EMA
    late rather than early, so its seed ignores bars 0..slow-fast-1). The signal line is an EMA of
    the MACD line seeded with the mean of its first `signal` values, and all three outputs start at
    bar slow + signal - 2; hist = macd - signal. Requires 1 <= fast < slow, signal >= 1."""
    lookback = macd_lookback(fast, slow, signal)
    x = _checks.series(values, "MACD", "values")
    _checks.enough_bars("MACD", x.size, lookback, f"periods {fast}/{slow}/{signal}")
    line = kernels.ema(x, fast, slow - 1) - kernels.ema(x, slow, slow - 1)
    signal_line = kernels.ema(line, signal, lookback)
    line[:lookback] = np.nan
    return MACD(line, signal_line, line - signal_line)


class ADX(NamedTuple):
    """Wilder's average directional index and the directional indicators it is built from."""

    adx: FloatArray
    plus_di: FloatArray
    minus_di: FloatArray


def adx_lookback(period: int = 14) -> int:
    """Bars before the first ADX value: 2·period - 1 (+DI and -DI start earlier, see `di_lookback`)."""
    return 2 * _checks.period("ADX", "period", period, 2) - 1


def di_lookback(period: int = 14) -> int:
    """Bars before the first +DI / -DI value: period."""
    return _checks.period("ADX", "period", period, 2)


def adx(high: ArrayLike, low: ArrayLike, close: ArrayLike, period: int = 14) -> ADX:
    """Wilder's ADX with +DI and -DI (TA_ADX, TA_PLUS_DI, TA_MINUS_DI).

    +DI/-DI = 100·(smoothed ±DM)/(smoothed TR) from bar `period`; DX = 100·|+DI - -DI|/(+DI + -DI);
    ADX = mean of the first `period` DX values at bar 2·period - 1, then Wilder-smoothed
    (details and TA-Lib's seeding in `kernels.directional_movement`). `period` >= 2."""
    lookback = adx_lookback(period)
    h = _checks.series(high, "ADX", "high")
    lo = _checks.series(low, "ADX", "low")
    c = _checks.series(close, "ADX", "close")
    bars = _checks.same_length("ADX", high=h, low=lo, close=c)
    _checks.enough_bars("ADX", bars, lookback, f"period {period}")
    return ADX(*kernels.directional_movement(h, lo, c, period))
