"""The polars layer: add every indicator as a column to a candle frame.

`add_indicators(frame, config)` takes a candle frame (the schema of `xray_core.candles.schema`),
computes the indicators of `trend`, `momentum`, `volatility` and `volume` on its columns and returns
the candle columns followed by one Float64 column per indicator output, named after
`indicator_columns(config)`. Warm-up rows are NaN (not null): a NaN marks "not defined yet", while a
null would claim the data is missing.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, model_validator

from xray_core.candles.schema import CANDLE_SCHEMA, conform
from xray_core.errors import DataError
from xray_core.indicators import momentum, trend, volatility, volume
from xray_core.indicators._checks import FloatArray


class IndicatorConfig(BaseModel):
    """Periods and parameters of the indicator columns; the defaults are the textbook (and TA-Lib)
    ones. Frozen so one config can be shared, hashed and logged as a run parameter."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sma_period: int = Field(20, ge=1, description="SMA window, bars")
    ema_period: int = Field(20, ge=1, description="EMA period, k = 2/(period + 1)")
    rsi_period: int = Field(14, ge=2, description="Wilder RSI period")
    macd_fast: int = Field(12, ge=1, description="MACD fast EMA period")
    macd_slow: int = Field(26, ge=2, description="MACD slow EMA period, > macd_fast")
    macd_signal: int = Field(9, ge=1, description="MACD signal EMA period")
    bb_period: int = Field(20, ge=2, description="Bollinger window, bars")
    bb_num_std: float = Field(2.0, ge=0.0, allow_inf_nan=False, description="band width in population σ")
    atr_period: int = Field(14, ge=1, description="Wilder ATR period")
    stoch_fastk: int = Field(5, ge=1, description="stochastic %K look-back window")
    stoch_slowk: int = Field(3, ge=1, description="SMA smoothing of fast %K into %K")
    stoch_slowd: int = Field(3, ge=1, description="SMA of %K into %D")
    adx_period: int = Field(14, ge=2, description="Wilder ADX / DI period")
    vwap_window: int = Field(20, ge=1, description="rolling VWAP window, bars")
    realized_vol_window: int = Field(20, ge=2, description="realized volatility window, returns")
    periods_per_year: float = Field(
        1.0, gt=0.0, allow_inf_nan=False,
        description="annualisation of realized volatility (σ·√periods_per_year); 1 = per bar",
    )

    @model_validator(mode="after")
    def _fast_below_slow(self) -> IndicatorConfig:
        if self.macd_fast >= self.macd_slow:
            raise ValueError(f"macd_fast ({self.macd_fast}) must be below macd_slow ({self.macd_slow})")
        return self


def indicator_columns(config: IndicatorConfig | None = None) -> list[str]:
    """Names of the columns `add_indicators` appends, in order."""
    c = config or IndicatorConfig()
    return [
        f"sma_{c.sma_period}", f"ema_{c.ema_period}", f"rsi_{c.rsi_period}",
        "macd", "macd_signal", "macd_hist",
        "bb_upper", "bb_middle", "bb_lower",
        "trange", f"atr_{c.atr_period}",
        "stoch_k", "stoch_d",
        f"adx_{c.adx_period}", f"plus_di_{c.adx_period}", f"minus_di_{c.adx_period}",
        "obv", "vwap", f"vwap_{c.vwap_window}",
        "log_return", f"realized_vol_{c.realized_vol_window}",
    ]


def _checked_candles(frame: pl.DataFrame) -> pl.DataFrame:
    """The candle columns of `frame`, refusing missing values and bars out of time order."""
    candles = conform(frame, "add_indicators")
    for name in CANDLE_SCHEMA:
        column = candles[name]
        bad = column.is_null() if name == "timestamp" else column.is_null() | column.is_nan()
        if bad.any():
            row = int(bad.arg_max() or 0)  # first True (never None: some value is True)
            raise DataError(f"add_indicators: column {name!r} has a missing value at row {row}",
                            "run the candle quality checks and repair or drop the bar first")
    stamps = candles["timestamp"].cast(pl.Int64).to_numpy()
    steps = np.diff(stamps)
    if (steps <= 0).any():
        row = int(np.argmax(steps <= 0)) + 1
        raise DataError(f"add_indicators: timestamps are not strictly increasing at row {row}",
                        "sort the candles by timestamp and drop duplicate bars")
    return candles


def add_indicators(frame: pl.DataFrame, config: IndicatorConfig | None = None) -> pl.DataFrame:
    """The candle columns of `frame` followed by the indicator columns of `indicator_columns(config)`.

    Rows must be bars in strictly increasing time order with no missing values; a frame shorter than
    an indicator's warm-up raises the DataError of that indicator. Every value in row t depends on
    rows <= t only."""
    c = config or IndicatorConfig()
    candles = _checked_candles(frame)
    high, low, close, vol = (candles[name].to_numpy() for name in ("high", "low", "close", "volume"))
    macd = trend.macd(close, c.macd_fast, c.macd_slow, c.macd_signal)
    bands = volatility.bollinger_bands(close, c.bb_period, c.bb_num_std)
    stoch = momentum.stochastic(high, low, close, c.stoch_fastk, c.stoch_slowk, c.stoch_slowd)
    directional = trend.adx(high, low, close, c.adx_period)
    values: list[FloatArray] = [
        trend.sma(close, c.sma_period), trend.ema(close, c.ema_period), momentum.rsi(close, c.rsi_period),
        macd.macd, macd.signal, macd.hist,
        bands.upper, bands.middle, bands.lower,
        volatility.true_range(high, low, close), volatility.atr(high, low, close, c.atr_period),
        stoch.k, stoch.d,
        directional.adx, directional.plus_di, directional.minus_di,
        volume.obv(close, vol), volume.vwap(high, low, close, vol),
        volume.rolling_vwap(high, low, close, vol, c.vwap_window),
        volatility.log_returns(close),
        volatility.realized_volatility(close, c.realized_vol_window, c.periods_per_year),
    ]
    names = indicator_columns(c)
    return candles.with_columns(
        pl.Series(name, array, dtype=pl.Float64, nan_to_null=False)
        for name, array in zip(names, values, strict=True)
    )
