"""Indicators TA-Lib lacks (VWAP, rolling VWAP, realized volatility) against direct computations, and
small hand-worked cases that spell out the conventions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from indicator_data import Bars
from numpy.lib.stride_tricks import sliding_window_view

import xray_core.indicators as ind
from xray_core.indicators import kernels


def test_cumulative_vwap_is_traded_value_over_traded_volume(bars: Bars):
    typical = (bars.high + bars.low + bars.close) / 3.0
    got = ind.vwap(bars.high, bars.low, bars.close, bars.volume)
    assert np.isfinite(got).all()
    for t in range(0, bars.close.size, 97):  # exact (fsum) reference at every 97th bar
        value = math.fsum(typical[: t + 1] * bars.volume[: t + 1])
        traded = math.fsum(bars.volume[: t + 1])
        assert got[t] == pytest.approx(value / traded, rel=1e-9), t


@pytest.mark.parametrize("window", [1, 20, 288])
def test_rolling_vwap_is_the_vwap_of_the_last_window_bars(bars: Bars, window: int):
    typical = (bars.high + bars.low + bars.close) / 3.0
    value = sliding_window_view(typical * bars.volume, window).sum(axis=1)
    traded = sliding_window_view(bars.volume, window).sum(axis=1)
    got = ind.rolling_vwap(bars.high, bars.low, bars.close, bars.volume, window)
    assert np.isnan(got[: window - 1]).all()
    np.testing.assert_allclose(got[window - 1 :], value / traded, rtol=1e-9)


def test_vwap_is_undefined_while_nothing_has_traded():
    high, low, close = np.full(6, 12.0), np.full(6, 6.0), np.full(6, 9.0)  # typical price 9
    volume = np.array([0.0, 0.0, 2.0, 0.0, 0.0, 0.0])
    close[2] = 12.0  # typical price 10 on the only bar with volume
    np.testing.assert_array_equal(ind.vwap(high, low, close, volume), [np.nan, np.nan, 10, 10, 10, 10])
    np.testing.assert_array_equal(ind.rolling_vwap(high, low, close, volume, 2),
                                  [np.nan, np.nan, 10, 10, np.nan, np.nan])


def test_rolling_vwap_after_huge_volumes_keeps_tiny_ones_accurate():
    """A running sum without compensation would keep the rounding error of the 1e12 bars."""
    volume = np.array([1e12, 3e12, 1e12, 1e-8, 2e-8, 1e-8, 3e-8])
    close = np.array([1.0, 1.1, 0.7, 2.0, 4.0, 2.0, 3.0])
    got = ind.rolling_vwap(close, close, close, volume, 3)
    assert got[-1] == pytest.approx((4.0 * 2e-8 + 2.0 * 1e-8 + 3.0 * 3e-8) / 6e-8, rel=1e-12)


@pytest.mark.parametrize(("window", "periods_per_year"), [(20, 1.0), (5, 365 * 24 * 12)])
def test_realized_volatility_is_the_sample_std_of_log_returns(bars: Bars, window: int,
                                                              periods_per_year: float):
    returns = np.log(bars.close[1:] / bars.close[:-1])
    expected = sliding_window_view(returns, window).std(axis=1, ddof=1) * math.sqrt(periods_per_year)
    got = ind.realized_volatility(bars.close, window, periods_per_year)
    assert np.isnan(got[:window]).all()
    np.testing.assert_allclose(got[window:], expected, rtol=1e-7, atol=1e-12 * expected.max())


def test_log_returns_by_hand():
    np.testing.assert_allclose(ind.log_returns([100.0, 110.0, 99.0, 99.0]),
                               [np.nan, math.log(1.1), math.log(0.9), 0.0], rtol=1e-15)


def test_obv_starts_at_the_first_volume_and_follows_the_close():
    close = [10.0, 11.0, 11.0, 9.0, 12.0]
    volume = [5.0, 2.0, 7.0, 3.0, 1.0]
    np.testing.assert_array_equal(ind.obv(close, volume), [5.0, 7.0, 7.0, 4.0, 5.0])


def test_true_range_takes_gaps_from_the_previous_close():
    high = [10.0, 12.0, 9.0]
    low = [9.0, 11.0, 8.5]
    close = [9.5, 11.5, 8.8]  # bar 1 gaps up from 9.5, bar 2 gaps down from 11.5
    np.testing.assert_array_equal(ind.true_range(high, low, close), [np.nan, 12.0 - 9.5, 11.5 - 8.5])


def test_flat_prices_give_zero_rsi_stochastic_and_bands_of_zero_width():
    flat = np.full(40, 5.0)
    assert (ind.rsi(flat, 14)[14:] == 0.0).all()  # TA-Lib's convention for 0/0
    stoch = ind.stochastic(flat, flat, flat)
    assert (stoch.k[8:] == 0.0).all() and (stoch.d[8:] == 0.0).all()
    bands = ind.bollinger_bands(flat, 20)
    assert (bands.upper[19:] == 5.0).all() and (bands.lower[19:] == 5.0).all()


def test_ema_is_seeded_with_the_sma_of_the_first_period_values():
    values = np.array([1.0, 2.0, 3.0, 4.0, 10.0])
    k = 2 / 4
    np.testing.assert_allclose(ind.ema(values, 3), [np.nan, np.nan, 2.0, 2.0 + k * 2.0, 3.0 + k * 7.0])


def test_rsi_seed_and_wilder_step_by_hand():
    close = np.array([1.0, 2.0, 1.0, 3.0, 2.0])  # changes +1, -1, +2, -1
    gain, loss = 3.0 / 3, 1.0 / 3  # means over bars 1..3
    seed = 100 * gain / (gain + loss)
    gain, loss = gain * 2 / 3, (loss * 2 + 1.0) / 3  # Wilder step with the -1 of bar 4
    np.testing.assert_allclose(ind.rsi(close, 3), [np.nan, np.nan, np.nan, seed, 100 * gain / (gain + loss)])


def test_rolling_extremes_match_a_direct_window_scan():
    rng = np.random.default_rng(3)
    values = np.round(rng.normal(size=2_000), 1)  # many ties
    for window in (1, 2, 5, 64):
        windows = sliding_window_view(values, window)
        np.testing.assert_array_equal(kernels.rolling_extreme(values, window, True)[window - 1 :],
                                      windows.max(axis=1))
        np.testing.assert_array_equal(kernels.rolling_extreme(values, window, False)[window - 1 :],
                                      windows.min(axis=1))


def test_rolling_variance_stays_accurate_for_large_levels_and_calm_windows():
    """E[x²] - E[x]² would lose every digit here: level 1e6, σ about 1e-3."""
    rng = np.random.default_rng(5)
    values = 1e6 + np.cumsum(rng.normal(scale=1e-3, size=5_000))
    values[3_000:3_100] = values[2_999]  # a flat stretch has variance 0
    expected = sliding_window_view(values, 20).var(axis=1)
    got = kernels.rolling_variance(values, 20, 0)[19:]
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-12)
    assert (got[3_000 : 3_100 - 19] == 0.0).all()
