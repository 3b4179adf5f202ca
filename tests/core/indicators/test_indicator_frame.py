"""`add_indicators`: the candle columns followed by one Float64 column per indicator output."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from pydantic import ValidationError

import xray_core.indicators as ind
from xray_core.candles.schema import CANDLE_SCHEMA
from xray_core.errors import DataError
from xray_core.indicators import IndicatorConfig, add_indicators, indicator_columns

DEFAULT_COLUMNS = [
    "sma_20", "ema_20", "rsi_14", "macd", "macd_signal", "macd_hist", "bb_upper", "bb_middle", "bb_lower",
    "trange", "atr_14", "stoch_k", "stoch_d", "adx_14", "plus_di_14", "minus_di_14", "obv", "vwap",
    "vwap_20", "log_return", "realized_vol_20",
]


def test_the_default_columns_and_their_types(btc_frame: pl.DataFrame):
    out = add_indicators(btc_frame)
    assert indicator_columns() == DEFAULT_COLUMNS
    assert out.columns == [*CANDLE_SCHEMA.names(), *DEFAULT_COLUMNS]
    assert out.schema == pl.Schema({**CANDLE_SCHEMA, **dict.fromkeys(DEFAULT_COLUMNS, pl.Float64)})
    assert out.height == btc_frame.height
    assert out.select(*CANDLE_SCHEMA.names()).equals(btc_frame)


def test_warm_up_rows_are_nan_not_null_and_end_at_the_lookback(btc_frame: pl.DataFrame):
    out = add_indicators(btc_frame)
    assert out.null_count().sum_horizontal().item() == 0
    expected_lookback = {
        "sma_20": 19, "ema_20": 19, "rsi_14": 14, "macd": 33, "macd_signal": 33, "macd_hist": 33,
        "bb_upper": 19, "bb_middle": 19, "bb_lower": 19, "trange": 1, "atr_14": 14, "stoch_k": 8,
        "stoch_d": 8, "adx_14": 27, "plus_di_14": 14, "minus_di_14": 14, "obv": 0, "vwap": 0, "vwap_20": 19,
        "log_return": 1, "realized_vol_20": 20,
    }
    for name, lookback in expected_lookback.items():
        values = out[name].to_numpy()
        assert np.isnan(values[:lookback]).all(), name
        assert np.isfinite(values[lookback:]).all(), name


def test_columns_equal_the_array_functions(btc_frame: pl.DataFrame):
    out = add_indicators(btc_frame)
    high, low, close, volume = (btc_frame[c].to_numpy() for c in ("high", "low", "close", "volume"))
    np.testing.assert_array_equal(out["rsi_14"].to_numpy(), ind.rsi(close, 14))
    np.testing.assert_array_equal(out["macd_hist"].to_numpy(), ind.macd(close).hist)
    np.testing.assert_array_equal(out["bb_lower"].to_numpy(), ind.bollinger_bands(close).lower)
    np.testing.assert_array_equal(out["minus_di_14"].to_numpy(), ind.adx(high, low, close).minus_di)
    np.testing.assert_array_equal(out["vwap_20"].to_numpy(), ind.rolling_vwap(high, low, close, volume, 20))


def test_periods_come_from_the_config_and_name_the_columns(btc_frame: pl.DataFrame):
    config = IndicatorConfig(sma_period=50, ema_period=9, rsi_period=7, atr_period=21, adx_period=10,
                             vwap_window=48, realized_vol_window=30, periods_per_year=105_120.0)
    out = add_indicators(btc_frame, config)
    names = indicator_columns(config)
    assert out.columns[len(CANDLE_SCHEMA):] == names
    for name in ("sma_50", "ema_9", "rsi_7", "atr_21", "adx_10", "plus_di_10", "minus_di_10", "vwap_48",
                 "realized_vol_30"):
        assert name in names
    close = btc_frame["close"].to_numpy()
    np.testing.assert_array_equal(out["sma_50"].to_numpy(), ind.sma(close, 50))
    np.testing.assert_array_equal(out["realized_vol_30"].to_numpy(),
                                  ind.realized_volatility(close, 30, 105_120.0))


def test_other_columns_are_dropped_and_types_normalised(btc_frame: pl.DataFrame):
    extra = btc_frame.with_columns(pl.lit("x").alias("note"), pl.col("volume").cast(pl.Float32))
    out = add_indicators(extra)
    assert "note" not in out.columns
    assert out.schema["volume"] == pl.Float64


def test_the_config_is_frozen_and_bounded():
    config = IndicatorConfig()
    with pytest.raises(ValidationError):
        config.rsi_period = 5  # type: ignore[misc]
    with pytest.raises(ValidationError, match="rsi_period"):
        IndicatorConfig(rsi_period=1)
    with pytest.raises(ValidationError, match="bb_num_std"):
        IndicatorConfig(bb_num_std=float("nan"))
    with pytest.raises(ValidationError, match=r"macd_fast \(26\) must be below macd_slow \(12\)"):
        IndicatorConfig(macd_fast=26, macd_slow=12)
    with pytest.raises(ValidationError, match="unknown"):
        IndicatorConfig(unknown=3)  # type: ignore[call-arg]
    assert hash(config) == hash(IndicatorConfig())


def candles(n: int) -> pl.DataFrame:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    close = 100.0 + np.sin(np.arange(n))
    return pl.DataFrame({
        "timestamp": [start + timedelta(minutes=5 * i) for i in range(n)],
        "open": close, "high": close + 1.0, "low": close - 1.0, "close": close, "volume": np.full(n, 3.0),
    }).cast(dict(CANDLE_SCHEMA))


def test_a_missing_value_names_column_and_row():
    frame = candles(60).with_columns(
        pl.when(pl.int_range(pl.len()) == 41).then(None).otherwise(pl.col("close")).alias("close"))
    with pytest.raises(DataError, match=r"^add_indicators: column 'close' has a missing value at row 41"):
        add_indicators(frame)
    frame = candles(60).with_columns(
        pl.when(pl.int_range(pl.len()) == 7).then(float("nan")).otherwise(pl.col("high")).alias("high"))
    with pytest.raises(DataError, match=r"^add_indicators: column 'high' has a missing value at row 7"):
        add_indicators(frame)


@pytest.mark.parametrize("reorder", ["unsorted", "duplicate"])
def test_bars_out_of_time_order_are_refused(reorder: str):
    frame = candles(60)
    if reorder == "unsorted":
        frame = pl.concat([frame.slice(0, 30), frame.slice(31, 1), frame.slice(30, 1), frame.slice(32)])
    else:
        frame = pl.concat([frame.slice(0, 31), frame.slice(30)])
    with pytest.raises(DataError, match=r"^add_indicators: timestamps are not strictly increasing at row 31"):
        add_indicators(frame)


def test_a_missing_column_is_named():
    with pytest.raises(DataError, match=r"^add_indicators: missing column\(s\) volume"):
        add_indicators(candles(60).drop("volume"))


def test_too_short_a_frame_names_the_indicator_that_cannot_start():
    add_indicators(candles(34))  # MACD's 33-bar warm-up is the longest of the defaults
    with pytest.raises(DataError, match=r"^MACD: 33 bar\(s\) is too few for periods 12/26/9"):
        add_indicators(candles(33))
