"""Technical indicators on candle data, equal to TA-Lib where TA-Lib has them.

Pure functions on one-dimensional float arrays (`trend`, `momentum`, `volatility`, `volume`), with
the stateful recursions in numba kernels (`kernels`), and a polars layer (`frame.add_indicators`).

Conventions shared by every function:

* The output has the input's length; the first `*_lookback(...)` values are NaN (the warm-up), the
  rest are defined. Lookbacks are TA-Lib's: SMA/EMA/BBANDS period-1, RSI/ATR/+DI/-DI period,
  ADX 2·period-1, MACD slow+signal-2 (33), STOCH fastk+slowk+slowd-3 (8), TRANGE and log returns 1,
  OBV and cumulative VWAP 0, rolling VWAP window-1, realized volatility window.
* Value t depends on bars <= t only.
* NaN/inf in an input, mismatched lengths or fewer bars than the warm-up raise `DataError` naming the
  indicator (and the first bad index, or the window and bar count); a bad period raises
  `ConfigError`. Indicators never propagate a NaN silently.
"""

from xray_core.indicators.frame import IndicatorConfig, add_indicators, indicator_columns
from xray_core.indicators.momentum import Stochastic, rsi, rsi_lookback, stochastic, stochastic_lookback
from xray_core.indicators.trend import (
    ADX,
    MACD,
    adx,
    adx_lookback,
    di_lookback,
    ema,
    ema_lookback,
    macd,
    macd_lookback,
    sma,
    sma_lookback,
)
from xray_core.indicators.volatility import (
    BollingerBands,
    atr,
    atr_lookback,
    bollinger_bands,
    bollinger_lookback,
    log_returns,
    log_returns_lookback,
    realized_volatility,
    realized_volatility_lookback,
    true_range,
    true_range_lookback,
)
from xray_core.indicators.volume import (
    obv,
    obv_lookback,
    rolling_vwap,
    rolling_vwap_lookback,
    vwap,
    vwap_lookback,
)

__all__ = [
    "ADX",
    "MACD",
    "BollingerBands",
    "IndicatorConfig",
    "Stochastic",
    "add_indicators",
    "adx",
    "adx_lookback",
    "atr",
    "atr_lookback",
    "bollinger_bands",
    "bollinger_lookback",
    "di_lookback",
    "ema",
    "ema_lookback",
    "indicator_columns",
    "log_returns",
    "log_returns_lookback",
    "macd",
    "macd_lookback",
    "obv",
    "obv_lookback",
    "realized_volatility",
    "realized_volatility_lookback",
    "rolling_vwap",
    "rolling_vwap_lookback",
    "rsi",
    "rsi_lookback",
    "sma",
    "sma_lookback",
    "stochastic",
    "stochastic_lookback",
    "true_range",
    "true_range_lookback",
    "vwap",
    "vwap_lookback",
]
