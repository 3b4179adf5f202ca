"""Volatility: true range, ATR, Bollinger Bands, log returns and realized volatility.

Same conventions as `trend`: float arrays in, float64 arrays of the same length out, NaN for the
`*_lookback(...)` warm-up bars. TRANGE, ATR and BBANDS equal TA-Lib's to within rounding; log returns
equal ln(TA_ROCR(close, 1)) and realized volatility is the sample standard deviation of log returns.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from xray_core.errors import DataError
from xray_core.indicators import _checks, kernels
from xray_core.indicators._checks import FloatArray
from xray_core.indicators.trend import sma


def true_range_lookback() -> int:
    """Bars before the first true range: 1 (it needs the previous close)."""
    return 1


def _true_range(high: FloatArray, low: FloatArray, close: FloatArray) -> FloatArray:
    out = np.full(close.size, np.nan)
    previous = close[:-1]
    out[1:] = np.maximum.reduce(
        [high[1:] - low[1:], np.abs(high[1:] - previous), np.abs(low[1:] - previous)]
    )
    return out


def _ohlc(indicator: str, high: ArrayLike, low: ArrayLike, close: ArrayLike) -> tuple[FloatArray, ...]:
    h = _checks.series(high, indicator, "high")
    lo = _checks.series(low, indicator, "low")
    c = _checks.series(close, indicator, "close")
    _checks.same_length(indicator, high=h, low=lo, close=c)
    return h, lo, c


def true_range(high: ArrayLike, low: ArrayLike, close: ArrayLike) -> FloatArray:
    """Wilder's true range, TR_t = max(H_t - L_t, |H_t - C_{t-1}|, |L_t - C_{t-1}|) (TA_TRANGE)."""
    h, lo, c = _ohlc("TRANGE", high, low, close)
    _checks.enough_bars("TRANGE", c.size, true_range_lookback(), "the previous close")
    return _true_range(h, lo, c)


def atr_lookback(period: int = 14) -> int:
    """Bars before the first ATR value: period (the seed averages TR over bars 1..period)."""
    return _checks.period("ATR", "period", period, 1)


def atr(high: ArrayLike, low: ArrayLike, close: ArrayLike, period: int = 14) -> FloatArray:
    """Wilder's average true range (TA_ATR): the mean TR of bars 1..period at bar `period`, then
    ATR_t = (ATR_{t-1}·(period - 1) + TR_t)/period. `period` >= 1 (1 gives the true range)."""
    lookback = atr_lookback(period)
    h, lo, c = _ohlc("ATR", high, low, close)
    _checks.enough_bars("ATR", c.size, lookback, f"period {period}")
    ranges = _true_range(h, lo, c)
    ranges[0] = 0.0  # never read: the smoothing starts at bar 1
    return kernels.wilder_average(ranges, period, 1)


class BollingerBands(NamedTuple):
    """middle = SMA; upper/lower = middle ± num_std · population standard deviation."""

    upper: FloatArray
    middle: FloatArray
    lower: FloatArray


def bollinger_lookback(period: int = 20) -> int:
    """Bars before the first band value: period - 1."""
    return _checks.period("BBANDS", "period", period, 2) - 1


def bollinger_bands(values: ArrayLike, period: int = 20, num_std: float = 2.0) -> BollingerBands:
    """Bollinger Bands as TA_BBANDS with an SMA middle band and equal up/down deviations.

    σ is the population standard deviation of the same `period` values (divide by `period`, not
    period - 1), computed with a stable rolling update rather than E[x²] - E[x]²; `period` >= 2,
    `num_std` finite and >= 0."""
    lookback = bollinger_lookback(period)
    width = _checks.positive_number("BBANDS", "num_std", num_std, allow_zero=True)
    x = _checks.series(values, "BBANDS", "values")
    _checks.enough_bars("BBANDS", x.size, lookback, f"period {period}")
    middle = sma(x, period)
    spread = width * np.sqrt(kernels.rolling_variance(x, period, 0))
    return BollingerBands(middle + spread, middle, middle - spread)


def log_returns_lookback() -> int:
    """Bars before the first log return: 1."""
    return 1


def _positive_close(indicator: str, close: ArrayLike) -> FloatArray:
    c = _checks.series(close, indicator, "close")
    if c.size and not (c > 0.0).all():
        index = int(np.argmin(c > 0.0))
        raise DataError(f"{indicator}: close must be positive for a log return, got {c[index]} "
                        f"at index {index}",
                        "indicators need quality-checked candles: repair or drop the bar")
    return c


def _log_returns(close: FloatArray) -> FloatArray:
    out = np.full(close.size, np.nan)
    previous = close[:-1]
    out[1:] = np.log1p((close[1:] - previous) / previous)
    return out


def log_returns(close: ArrayLike) -> FloatArray:
    """r_t = ln(C_t / C_{t-1}), computed as log1p((C_t - C_{t-1})/C_{t-1}) to keep small returns
    accurate. Close prices must be positive."""
    c = _positive_close("log_returns", close)
    _checks.enough_bars("log_returns", c.size, log_returns_lookback(), "the previous close")
    return _log_returns(c)


def realized_volatility_lookback(window: int = 20) -> int:
    """Bars before the first value: window (the first return is at bar 1)."""
    return _checks.period("realized_volatility", "window", window, 2)


def realized_volatility(close: ArrayLike, window: int = 20, periods_per_year: float = 1.0) -> FloatArray:
    """Rolling sample standard deviation (ddof=1) of the last `window` log returns, times
    sqrt(periods_per_year).

    `periods_per_year` annualises: 1 (the default) leaves the per-bar volatility; crypto trades all
    year, so 5m bars use 365·24·12 = 105120. `window` >= 2."""
    lookback = realized_volatility_lookback(window)
    scale = _checks.positive_number("realized_volatility", "periods_per_year", periods_per_year)
    c = _positive_close("realized_volatility", close)
    _checks.enough_bars("realized_volatility", c.size, lookback, f"window {window}")
    out = np.full(c.size, np.nan)
    out[1:] = np.sqrt(kernels.rolling_variance(_log_returns(c)[1:], window, 1) * scale)
    return out
