"""Every indicator TA-Lib also has equals TA-Lib's output on every real candle file.

"Equals" means: NaN exactly where TA-Lib has no value (the warm-up, whose length is our
`*_lookback(...)`), and every other value within 1e-6 relative (plus an absolute slack of 1e-9 of the
series' largest magnitude, for values that cross zero). We compare from the first valid bar, not only
after a long warm-up, because the seeding conventions (SMA-seeded EMA, Wilder seeds, MACD's late fast
EMA, STOCH's aligned outputs) are part of what is specified.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pytest
import talib
from indicator_data import CANDLE_FILES, Bars, load_bars

import xray_core.indicators as ind

Outputs = Sequence[np.ndarray]
Case = tuple[Callable[[Bars], Outputs], Callable[[Bars], Outputs], int]


def assert_matches_talib(ours: Outputs, theirs: Outputs, lookback: int) -> None:
    assert len(ours) == len(theirs)
    for mine, reference in zip(ours, theirs, strict=True):
        assert mine.dtype == np.float64
        assert mine.shape == reference.shape
        assert np.isnan(mine[:lookback]).all(), "warm-up must be NaN"
        assert np.isfinite(mine[lookback:]).all(), "every bar after the warm-up must have a value"
        np.testing.assert_array_equal(np.isnan(mine), np.isnan(reference),
                                      err_msg="warm-up differs from TA-Lib")
        scale = float(np.max(np.abs(reference[lookback:])))
        np.testing.assert_allclose(mine[lookback:], reference[lookback:], rtol=1e-6, atol=1e-9 * scale)


def hlc(b: Bars) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return b.high, b.low, b.close


def log_return(b: Bars) -> np.ndarray:
    return talib.LN(talib.ROCR(b.close, 1))


# name -> (ours, TA-Lib's, lookback), with TA-Lib's default parameters.
DEFAULTS: dict[str, Case] = {
    "SMA(20)": (lambda b: [ind.sma(b.close, 20)], lambda b: [talib.SMA(b.close, 20)], ind.sma_lookback(20)),
    "EMA(20)": (lambda b: [ind.ema(b.close, 20)], lambda b: [talib.EMA(b.close, 20)], ind.ema_lookback(20)),
    "RSI(14)": (lambda b: [ind.rsi(b.close, 14)], lambda b: [talib.RSI(b.close, 14)], ind.rsi_lookback(14)),
    "MACD(12,26,9)": (lambda b: ind.macd(b.close), lambda b: talib.MACD(b.close, 12, 26, 9),
                      ind.macd_lookback()),
    "BBANDS(20,2)": (lambda b: ind.bollinger_bands(b.close, 20, 2.0),
                     lambda b: talib.BBANDS(b.close, 20, 2.0, 2.0, 0), ind.bollinger_lookback(20)),
    "TRANGE": (lambda b: [ind.true_range(*hlc(b))], lambda b: [talib.TRANGE(*hlc(b))],
               ind.true_range_lookback()),
    "ATR(14)": (lambda b: [ind.atr(*hlc(b), 14)], lambda b: [talib.ATR(*hlc(b), 14)], ind.atr_lookback(14)),
    "STOCH(5,3,3)": (lambda b: ind.stochastic(*hlc(b)), lambda b: talib.STOCH(*hlc(b), 5, 3, 0, 3, 0),
                     ind.stochastic_lookback()),
    "OBV": (lambda b: [ind.obv(b.close, b.volume)], lambda b: [talib.OBV(b.close, b.volume)],
            ind.obv_lookback()),
    "ADX(14)": (lambda b: [ind.adx(*hlc(b), 14).adx], lambda b: [talib.ADX(*hlc(b), 14)],
                ind.adx_lookback(14)),
    "+DI/-DI(14)": (lambda b: ind.adx(*hlc(b), 14)[1:],
                    lambda b: [talib.PLUS_DI(*hlc(b), 14), talib.MINUS_DI(*hlc(b), 14)], ind.di_lookback(14)),
    "log return = LN(ROCR(1))": (lambda b: [ind.log_returns(b.close)], lambda b: [log_return(b)],
                                 ind.log_returns_lookback()),
    # TA-Lib's STDDEV is the population σ; the sample σ of w values is it times √(w/(w-1)).
    "realized vol(20) = STDDEV(log return, 20)·√(20/19)": (
        lambda b: [ind.realized_volatility(b.close, 20)],
        lambda b: [talib.STDDEV(log_return(b), 20, 1.0) * np.sqrt(20 / 19)],
        ind.realized_volatility_lookback(20)),
}


@pytest.mark.parametrize("name", DEFAULTS)
@pytest.mark.parametrize("file", CANDLE_FILES)
def test_default_indicator_equals_talib_on_real_candles(file: str, name: str):
    bars = load_bars(file)
    ours, theirs, lookback = DEFAULTS[name]
    assert_matches_talib(ours(bars), theirs(bars), lookback)


# Other periods, so the seeding is shown to follow the parameters rather than the defaults.
VARIANTS: dict[str, Case] = {
    "SMA(1)": (lambda b: [ind.sma(b.close, 1)], lambda b: [b.close], ind.sma_lookback(1)),
    "SMA(200)": (lambda b: [ind.sma(b.close, 200)], lambda b: [talib.SMA(b.close, 200)],
                 ind.sma_lookback(200)),
    "EMA(2)": (lambda b: [ind.ema(b.close, 2)], lambda b: [talib.EMA(b.close, 2)], ind.ema_lookback(2)),
    "EMA(100)": (lambda b: [ind.ema(b.close, 100)], lambda b: [talib.EMA(b.close, 100)],
                 ind.ema_lookback(100)),
    "RSI(2)": (lambda b: [ind.rsi(b.close, 2)], lambda b: [talib.RSI(b.close, 2)], ind.rsi_lookback(2)),
    "RSI(50)": (lambda b: [ind.rsi(b.close, 50)], lambda b: [talib.RSI(b.close, 50)], ind.rsi_lookback(50)),
    "MACD(5,35,5)": (lambda b: ind.macd(b.close, 5, 35, 5), lambda b: talib.MACD(b.close, 5, 35, 5),
                     ind.macd_lookback(5, 35, 5)),
    "MACD(3,4,1)": (lambda b: ind.macd(b.close, 3, 4, 1), lambda b: talib.MACD(b.close, 3, 4, 1),
                    ind.macd_lookback(3, 4, 1)),
    "BBANDS(10,1.5)": (lambda b: ind.bollinger_bands(b.close, 10, 1.5),
                       lambda b: talib.BBANDS(b.close, 10, 1.5, 1.5, 0), ind.bollinger_lookback(10)),
    "ATR(1)": (lambda b: [ind.atr(*hlc(b), 1)], lambda b: [talib.ATR(*hlc(b), 1)], ind.atr_lookback(1)),
    "ATR(30)": (lambda b: [ind.atr(*hlc(b), 30)], lambda b: [talib.ATR(*hlc(b), 30)], ind.atr_lookback(30)),
    "STOCH(14,3,5)": (lambda b: ind.stochastic(*hlc(b), 14, 3, 5),
                      lambda b: talib.STOCH(*hlc(b), 14, 3, 0, 5, 0), ind.stochastic_lookback(14, 3, 5)),
    "STOCH(1,1,1)": (lambda b: ind.stochastic(*hlc(b), 1, 1, 1),
                     lambda b: talib.STOCH(*hlc(b), 1, 1, 0, 1, 0), ind.stochastic_lookback(1, 1, 1)),
    "ADX(2)": (lambda b: ind.adx(*hlc(b), 2)[:1], lambda b: [talib.ADX(*hlc(b), 2)], ind.adx_lookback(2)),
    "ADX(30)": (lambda b: ind.adx(*hlc(b), 30)[:1], lambda b: [talib.ADX(*hlc(b), 30)],
                ind.adx_lookback(30)),
    "+DI/-DI(30)": (lambda b: ind.adx(*hlc(b), 30)[1:],
                    lambda b: [talib.PLUS_DI(*hlc(b), 30), talib.MINUS_DI(*hlc(b), 30)], ind.di_lookback(30)),
}


@pytest.mark.parametrize("name", VARIANTS)
@pytest.mark.parametrize("file", ["BTC_USDT-5m.parquet", "UNITTEST_BTC-1m.parquet"])
def test_non_default_periods_equal_talib(file: str, name: str):
    bars = load_bars(file)
    ours, theirs, lookback = VARIANTS[name]
    assert_matches_talib(ours(bars), theirs(bars), lookback)


def test_all_eight_candle_files_are_compared():
    assert len(CANDLE_FILES) == 8


def test_the_tolerance_tells_seeding_conventions_apart(btc_bars: Bars):
    """An EMA seeded with the first close (the Metastock convention) instead of the SMA of the first
    20 differs from TA-Lib's by more than the tolerance: the comparisons above can fail."""
    close = btc_bars.close
    seeded_with_first_close = np.empty(close.size)
    seeded_with_first_close[0] = close[0]
    for i in range(1, close.size):
        previous = seeded_with_first_close[i - 1]
        seeded_with_first_close[i] = previous + 2 / 21 * (close[i] - previous)
    seeded_with_first_close[:19] = np.nan
    with pytest.raises(AssertionError, match="Not equal to tolerance"):
        assert_matches_talib([seeded_with_first_close], [talib.EMA(close, 20)], 19)
