"""Numba loops of the learning dataset: trailing-window statistics and triple-barrier labels.

Loops rather than vectorised numpy because a loop makes the no-lookahead property obvious (the value
at t reads indices t-window+1 .. t only, in a fixed order, so it is bit-identical whatever comes after
t) and needs no (bars x window) temporary.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True)
def rolling_corr_beta(
    x: np.ndarray, y: np.ndarray, window: int, min_periods: int
) -> tuple[np.ndarray, np.ndarray]:
    """Correlation and beta (cov(x, y) / var(y)) of x on y over the trailing `window` values ending at
    each t, using only the pairs where both are finite; NaN where fewer than `min_periods` pairs.

    A window with zero variance in y (or x, for the correlation) gives 0: "no co-movement measurable"
    is the neutral value, and a NaN would silently drop the row."""
    n = x.shape[0]
    corr = np.full(n, np.nan)
    beta = np.full(n, np.nan)
    for t in range(n):
        lo = max(0, t - window + 1)
        count = 0
        sx = 0.0
        sy = 0.0
        for i in range(lo, t + 1):
            if math.isfinite(x[i]) and math.isfinite(y[i]):
                count += 1
                sx += x[i]
                sy += y[i]
        if count < min_periods or t - lo + 1 < window:
            continue
        mx = sx / count
        my = sy / count
        sxy = 0.0
        sxx = 0.0
        syy = 0.0
        for i in range(lo, t + 1):
            if math.isfinite(x[i]) and math.isfinite(y[i]):
                dx = x[i] - mx
                dy = y[i] - my
                sxy += dx * dy
                sxx += dx * dx
                syy += dy * dy
        beta[t] = sxy / syy if syy > 0.0 else 0.0
        corr[t] = sxy / math.sqrt(sxx * syy) if sxx > 0.0 and syy > 0.0 else 0.0
    return corr, beta


@njit(cache=True)
def rolling_zscore(x: np.ndarray, window: int) -> np.ndarray:
    """(x_t - mean) / std (population) over the trailing `window` values ending at t; 0 when the
    window is constant; NaN before the first full window."""
    n = x.shape[0]
    out = np.full(n, np.nan)
    for t in range(window - 1, n):
        s = 0.0
        for i in range(t - window + 1, t + 1):
            s += x[i]
        mean = s / window
        ss = 0.0
        for i in range(t - window + 1, t + 1):
            d = x[i] - mean
            ss += d * d
        std = math.sqrt(ss / window)
        out[t] = (x[t] - mean) / std if std > 0.0 else 0.0
    return out


@njit(cache=True)
def triple_barrier(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    atr: np.ndarray,
    horizon: int,
    up_atr: float,
    down_atr: float,
    threshold: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Triple-barrier return and label for every bar t whose exit bar t+1+horizon exists.

    Entry E = open[t+1] (the fill of a decision at t's close); barriers E ± multiple x ATR_t. Bars
    t+1 .. t+horizon are scanned in order; in each the lower barrier is tested first (the pessimistic
    assumption the backtest also makes). A bar opening beyond a barrier exits at its open. Touching the
    upper barrier gives label 1, the lower 0; otherwise the vertical barrier exits at open[t+1+horizon]
    and the label is return > threshold. NaN return / label -1 where ATR_t is NaN or the exit is unknown."""
    n = open_.shape[0]
    ret = np.full(n, np.nan)
    label = np.full(n, -1, dtype=np.int64)
    for t in range(n - horizon - 1):
        a = atr[t]
        if not math.isfinite(a):
            continue
        entry = open_[t + 1]
        up = entry + up_atr * a
        down = entry - down_atr * a
        done = False
        for j in range(t + 1, t + 1 + horizon):
            if low[j] <= down:
                ret[t] = min(open_[j], down) / entry - 1.0
                label[t] = 0
                done = True
                break
            if high[j] >= up:
                ret[t] = max(open_[j], up) / entry - 1.0
                label[t] = 1
                done = True
                break
        if not done:
            ret[t] = open_[t + 1 + horizon] / entry - 1.0
            label[t] = 1 if ret[t] > threshold else 0
    return ret, label
