"""Bad input fails loudly and says what to fix; nothing propagates a NaN silently.

Policy: a NaN/inf in any input raises DataError naming the indicator, the input and the first bad
index; fewer bars than the warm-up raises DataError naming the indicator, its window and the bar
count; a period below its minimum (or not an integer) raises ConfigError.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

import xray_core.indicators as ind
from xray_core.errors import ConfigError, DataError

Call = Callable[[np.ndarray], object]

# indicator name in messages -> (call on one series used for every input, its lookback)
INDICATORS: dict[str, tuple[Call, int]] = {
    "SMA": (lambda x: ind.sma(x, 20), ind.sma_lookback(20)),
    "EMA": (lambda x: ind.ema(x, 20), ind.ema_lookback(20)),
    "RSI": (lambda x: ind.rsi(x, 14), ind.rsi_lookback(14)),
    "MACD": (lambda x: ind.macd(x), ind.macd_lookback()),
    "BBANDS": (lambda x: ind.bollinger_bands(x, 20), ind.bollinger_lookback(20)),
    "TRANGE": (lambda x: ind.true_range(x + 1, x - 1, x), ind.true_range_lookback()),
    "ATR": (lambda x: ind.atr(x + 1, x - 1, x, 14), ind.atr_lookback(14)),
    "STOCH": (lambda x: ind.stochastic(x + 1, x - 1, x), ind.stochastic_lookback()),
    "ADX": (lambda x: ind.adx(x + 1, x - 1, x, 14), ind.adx_lookback(14)),
    "OBV": (lambda x: ind.obv(x, x), ind.obv_lookback()),
    "VWAP": (lambda x: ind.vwap(x + 1, x - 1, x, x), ind.vwap_lookback()),
    "rolling_VWAP": (lambda x: ind.rolling_vwap(x + 1, x - 1, x, x, 20), ind.rolling_vwap_lookback(20)),
    "log_returns": (lambda x: ind.log_returns(x), ind.log_returns_lookback()),
    "realized_volatility": (lambda x: ind.realized_volatility(x, 20), ind.realized_volatility_lookback(20)),
}


def prices(n: int) -> np.ndarray:
    return 100.0 + np.sin(np.arange(n, dtype=np.float64))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("name", INDICATORS)
def test_a_non_finite_input_raises_naming_indicator_and_index(name: str, bad: float):
    call, _ = INDICATORS[name]
    values = prices(100)
    values[57] = bad
    with pytest.raises(DataError, match=rf"^{name}: \w+ has a non-finite value \({bad}\) at index 57 — "):
        call(values)


@pytest.mark.parametrize("name", INDICATORS)
def test_the_first_value_needs_lookback_plus_one_bars(name: str):
    call, lookback = INDICATORS[name]
    call(prices(lookback + 1))  # just enough
    with pytest.raises(DataError, match=rf"^{name}: {lookback} bar\(s\) is too few for .+; "
                                        rf"the first value needs {lookback + 1} bars"):
        call(prices(lookback))


def test_too_few_bars_names_the_window():
    with pytest.raises(DataError, match=r"^SMA: 5 bar\(s\) is too few for period 20;"):
        ind.sma(prices(5), 20)
    with pytest.raises(DataError, match=r"^MACD: 30 bar\(s\) is too few for periods 12/26/9;"):
        ind.macd(prices(30))


def test_an_empty_series_is_too_few_bars():
    with pytest.raises(DataError, match=r"^OBV: 0 bar\(s\) is too few"):
        ind.obv(np.array([]), np.array([]))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: ind.sma(prices(50), 0), r"^SMA: period must be >= 1, got 0"),
        (lambda: ind.ema(prices(50), -3), r"^EMA: period must be >= 1, got -3"),
        (lambda: ind.rsi(prices(50), 1), r"^RSI: period must be >= 2, got 1"),
        (lambda: ind.bollinger_bands(prices(50), 1), r"^BBANDS: period must be >= 2, got 1"),
        (lambda: ind.atr(prices(50), prices(50), prices(50), 0), r"^ATR: period must be >= 1, got 0"),
        (lambda: ind.adx(prices(50), prices(50), prices(50), 1), r"^ADX: period must be >= 2, got 1"),
        (lambda: ind.stochastic(prices(50), prices(50), prices(50), 0), r"^STOCH: fastk_period must be >= 1"),
        (lambda: ind.macd(prices(50), 0, 26, 9), r"^MACD: fast must be >= 1, got 0"),
        (lambda: ind.macd(prices(50), 26, 12, 9), r"^MACD: fast period 26 must be shorter than slow"),
        (lambda: ind.macd(prices(50), 12, 12, 9), r"^MACD: fast period 12 must be shorter than slow"),
        (lambda: ind.realized_volatility(prices(50), 1), r"^realized_volatility: window must be >= 2, got 1"),
        (lambda: ind.rolling_vwap(*(prices(50),) * 4, 0), r"^rolling_VWAP: window must be >= 1, got 0"),
        (lambda: ind.sma(prices(50), 2.5), r"^SMA: period must be an integer, got 2.5"),
        (lambda: ind.sma(prices(50), True), r"^SMA: period must be an integer, got True"),
        (lambda: ind.sma_lookback(0), r"^SMA: period must be >= 1, got 0"),
        (lambda: ind.bollinger_bands(prices(50), 20, -1.0), r"^BBANDS: num_std must be finite and >= 0"),
        (lambda: ind.bollinger_bands(prices(50), 20, np.nan), r"^BBANDS: num_std must be finite and >= 0"),
        (lambda: ind.realized_volatility(prices(50), 20, 0.0),
         r"^realized_volatility: periods_per_year must be finite and > 0"),
    ],
)
def test_a_bad_parameter_raises_config_error(call: Callable[[], object], message: str):
    with pytest.raises(ConfigError, match=message):
        call()


def test_numpy_integer_periods_are_accepted():
    np.testing.assert_array_equal(ind.sma(prices(50), np.int64(5)), ind.sma(prices(50), 5))


def test_inputs_of_different_lengths_are_rejected():
    with pytest.raises(DataError, match=r"^ATR: inputs have different lengths \(high=50, low=49, close=50\)"):
        ind.atr(prices(50), prices(49), prices(50))


def test_a_two_dimensional_input_is_rejected():
    with pytest.raises(DataError, match=r"^EMA: values must be one-dimensional, got shape \(10, 2\)"):
        ind.ema(np.ones((10, 2)), 3)


def test_log_returns_need_positive_closes():
    values = prices(30)
    values[12] = 0.0
    with pytest.raises(DataError, match=r"^log_returns: close must be positive .+, got 0.0 at index 12"):
        ind.log_returns(values)


def test_volume_must_not_be_negative():
    volume = np.ones(30)
    volume[4] = -1.0
    with pytest.raises(DataError, match=r"^OBV: volume must be >= 0, got -1.0 at index 4"):
        ind.obv(prices(30), volume)
