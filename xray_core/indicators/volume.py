"""Volume indicators: on-balance volume and volume-weighted average price.

Same conventions as `trend`. OBV equals TA_OBV; TA-Lib has no VWAP, so VWAP is specified here and
tested against a direct computation. Volumes must be >= 0.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from xray_core.errors import DataError
from xray_core.indicators import _checks, kernels
from xray_core.indicators._checks import FloatArray


def _volume(indicator: str, volume: ArrayLike) -> FloatArray:
    v = _checks.series(volume, indicator, "volume")
    if v.size and not (v >= 0.0).all():
        index = int(np.argmin(v >= 0.0))
        raise DataError(f"{indicator}: volume must be >= 0, got {v[index]} at index {index}",
                        "indicators need quality-checked candles: repair or drop the bar")
    return v


def obv_lookback() -> int:
    """OBV has no warm-up: 0."""
    return 0


def obv(close: ArrayLike, volume: ArrayLike) -> FloatArray:
    """Granville's on-balance volume as TA_OBV: OBV_0 = V_0, then OBV_t = OBV_{t-1} + V_t when the
    close rose, - V_t when it fell, unchanged when equal. The level is arbitrary (it starts at V_0,
    not 0); only its changes carry information."""
    c = _checks.series(close, "OBV", "close")
    v = _volume("OBV", volume)
    bars = _checks.same_length("OBV", close=c, volume=v)
    _checks.enough_bars("OBV", bars, obv_lookback(), "one bar")
    signed = np.empty(bars)
    signed[0] = v[0]
    signed[1:] = np.sign(c[1:] - c[:-1]) * v[1:]
    return np.cumsum(signed)


def _typical_volume(indicator: str, high: ArrayLike, low: ArrayLike, close: ArrayLike,
                    volume: ArrayLike) -> tuple[FloatArray, FloatArray]:
    h = _checks.series(high, indicator, "high")
    lo = _checks.series(low, indicator, "low")
    c = _checks.series(close, indicator, "close")
    v = _volume(indicator, volume)
    _checks.same_length(indicator, high=h, low=lo, close=c, volume=v)
    return (h + lo + c) / 3.0, v


def vwap_lookback() -> int:
    """The cumulative VWAP has no warm-up: 0."""
    return 0


def vwap(high: ArrayLike, low: ArrayLike, close: ArrayLike, volume: ArrayLike) -> FloatArray:
    """Cumulative VWAP_t = Σ_{i<=t} TP_i·V_i / Σ_{i<=t} V_i with typical price TP = (H + L + C)/3,
    anchored at the first bar (crypto trades around the clock, so there is no session to reset at).
    NaN while no volume has traded yet (0/0 has no price)."""
    typical, v = _typical_volume("VWAP", high, low, close, volume)
    _checks.enough_bars("VWAP", v.size, vwap_lookback(), "one bar")
    traded = np.cumsum(v)
    out = np.full(v.size, np.nan)
    np.divide(np.cumsum(typical * v), traded, out=out, where=traded > 0.0)
    return out


def rolling_vwap_lookback(window: int = 20) -> int:
    """Bars before the first rolling VWAP: window - 1."""
    return _checks.period("rolling_VWAP", "window", window, 1) - 1


def rolling_vwap(high: ArrayLike, low: ArrayLike, close: ArrayLike, volume: ArrayLike,
                 window: int = 20) -> FloatArray:
    """VWAP over the last `window` bars: Σ TP·V / Σ V over the window, TP = (H + L + C)/3.

    Window sums are compensated running sums (O(n)); a window in which nothing traded is NaN, decided
    by counting the bars with volume rather than by comparing a float sum with zero."""
    lookback = rolling_vwap_lookback(window)
    typical, v = _typical_volume("rolling_VWAP", high, low, close, volume)
    _checks.enough_bars("rolling_VWAP", v.size, lookback, f"window {window}")
    value = kernels.rolling_sum(typical * v, window)
    traded = kernels.rolling_sum(v, window)
    counts = np.cumsum(v > 0.0)
    active = np.zeros(v.size, dtype=bool)
    active[lookback:] = (counts[lookback:] - np.concatenate(([0], counts[: v.size - window]))) > 0
    out = np.full(v.size, np.nan)
    np.divide(value, traded, out=out, where=active)
    return out
