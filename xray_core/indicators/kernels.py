"""Numba kernels: the O(n) loops that carry state from bar to bar.

Every kernel reads bar t's inputs only when it writes bar t's output and walks the series forward
once, so a value at t never depends on data after t (no lookahead by construction). Kernels expect
validated, finite, contiguous float64 input (see `_checks`) and write NaN where a value is not yet
defined. The recursions (EMA, Wilder smoothing, RSI, ADX) mirror TA-Lib's C code operation by
operation (same seeds, same order of arithmetic), which keeps them within a few ULPs of TA-Lib rather
than merely close. The window statistics (rolling sum, variance) are more careful than TA-Lib's plain
running sums: compensated, re-anchored, exact on flat windows; they agree with TA-Lib to ~1e-11.

Compiled with `cache=True`: the first import on a machine compiles once and stores the machine code
next to this file; later processes load it in milliseconds.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from xray_core.indicators._checks import FloatArray

# TA-Lib's TA_IS_ZERO band (ta_utility.h, TA_EPSILON): ADX skips a DX update whose true range or
# DI sum lies inside it, RSI writes 0 when average gain + loss lies inside it.
TA_EPSILON = 1e-14


@njit(cache=True)
def _is_zero(value: float) -> bool:
    return -TA_EPSILON < value < TA_EPSILON


@njit(cache=True)
def rolling_sum(x: FloatArray, window: int) -> FloatArray:
    """Sum of the last `window` values, NaN for the first `window - 1` bars.

    A running sum (add the new value, subtract the one leaving) with Neumaier compensation: an
    uncompensated running sum keeps the rounding error of every value that ever passed through it,
    which after a burst of large volumes swamps a window of small ones. O(n)."""
    n = x.size
    out = np.full(n, np.nan)
    total = 0.0
    carry = 0.0
    for i in range(n):
        value = x[i]
        step = total + value
        if abs(total) >= abs(value):
            carry += (total - step) + value
        else:
            carry += (value - step) + total
        total = step
        if i >= window:
            value = -x[i - window]
            step = total + value
            if abs(total) >= abs(value):
                carry += (total - step) + value
            else:
                carry += (value - step) + total
            total = step
        if i >= window - 1:
            out[i] = total + carry
    return out


@njit(cache=True)
def rolling_variance(x: FloatArray, window: int, ddof: int) -> FloatArray:
    """Variance of the last `window` values with `window - ddof` in the denominator (ddof=0: the
    population variance Bollinger uses; ddof=1: the sample variance). NaN before bar `window - 1`.

    Welford's add-one/remove-one update, M2 += (x_new - x_old)·(x_new - mean_new + x_old - mean_old),
    on values shifted by a recent value so that the running mean stays small and its rounding
    follows the spread of the window rather than the price level. The state is re-anchored by an
    exact two-pass computation once every `window` bars, so rounding cannot build up over a long
    series, and a window of identical values (a quiet market) is exactly 0. Unlike E[x²] - E[x]²,
    nothing cancels catastrophically when prices are large and the window calm.
    O(n): one O(window) pass per `window` bars."""
    n = x.size
    out = np.full(n, np.nan)
    shift = 0.0  # x is handled as x - shift
    mean = 0.0  # mean of the shifted window
    m2 = 0.0
    run = 1  # how many values up to the current one are equal to it
    for i in range(1, window - 1):
        run = run + 1 if x[i] == x[i - 1] else 1
    for end in range(window - 1, n):
        if end > 0:
            run = run + 1 if x[end] == x[end - 1] else 1
        if run >= window:
            shift = x[end]
            mean = 0.0
            m2 = 0.0
        elif (end - window + 1) % window == 0:
            start = end - window + 1
            shift = x[start]
            total = 0.0
            for j in range(start, end + 1):
                total += x[j] - shift
            mean = total / window
            m2 = 0.0
            for j in range(start, end + 1):
                deviation = (x[j] - shift) - mean
                m2 += deviation * deviation
        else:
            new = x[end] - shift
            old = x[end - window] - shift
            delta = new - old
            new_mean = mean + delta / window
            m2 += delta * ((new - new_mean) + (old - mean))
            mean = new_mean
            if m2 < 0.0:
                m2 = 0.0
        out[end] = m2 / (window - ddof)
    return out


@njit(cache=True)
def rolling_extreme(x: FloatArray, window: int, maximum: bool) -> FloatArray:
    """Highest (`maximum`) or lowest value of the last `window` values, NaN before bar `window - 1`.

    A monotonic deque of indices: each index enters and leaves once, so O(n) for any window."""
    n = x.size
    out = np.full(n, np.nan)
    queue = np.empty(n, dtype=np.int64)
    head = 0
    tail = 0
    for i in range(n):
        value = x[i]
        while tail > head and ((x[queue[tail - 1]] <= value) if maximum else (x[queue[tail - 1]] >= value)):
            tail -= 1
        queue[tail] = i
        tail += 1
        if queue[head] <= i - window:
            head += 1
        if i >= window - 1:
            out[i] = x[queue[head]]
    return out


@njit(cache=True)
def ema(x: FloatArray, period: int, seed_end: int) -> FloatArray:
    """Exponential moving average with k = 2 / (period + 1), NaN before `seed_end`.

    Seeded at `seed_end` with the simple mean of x[seed_end - period + 1 .. seed_end] (TA-Lib's
    default, non-Metastock, seeding), then EMA_t = (x_t - EMA_{t-1})·k + EMA_{t-1} (TA_INT_EMA).
    A plain EMA has seed_end = period - 1; MACD seeds its fast EMA later to align it with the slow."""
    n = x.size
    out = np.full(n, np.nan)
    if seed_end >= n:
        return out
    k = 2.0 / (period + 1)
    total = 0.0
    for i in range(seed_end - period + 1, seed_end + 1):
        total += x[i]
    previous = total / period
    out[seed_end] = previous
    for i in range(seed_end + 1, n):
        previous = (x[i] - previous) * k + previous
        out[i] = previous
    return out


@njit(cache=True)
def wilder_average(values: FloatArray, period: int, first: int) -> FloatArray:
    """Wilder's smoothing (an EMA with k = 1/period) of values[first:], NaN before first + period - 1.

    Seeded with the simple mean of the first `period` values, then
    A_t = (A_{t-1}·(period - 1) + v_t) / period (Wilder 1978; TA-Lib's ATR)."""
    n = values.size
    out = np.full(n, np.nan)
    seed = first + period - 1
    if seed >= n:
        return out
    total = 0.0
    for i in range(first, seed + 1):
        total += values[i]
    previous = total / period
    out[seed] = previous
    for i in range(seed + 1, n):
        previous = (previous * (period - 1) + values[i]) / period
        out[i] = previous
    return out


@njit(cache=True)
def wilder_rsi(close: FloatArray, period: int) -> FloatArray:
    """Wilder's RSI = 100·AvgGain / (AvgGain + AvgLoss), NaN before bar `period` (TA_RSI).

    The averages start as the plain mean of the first `period` gains and losses (bars 1..period),
    then follow Wilder's smoothing. A flat history (AvgGain + AvgLoss inside TA-Lib's zero band)
    gives 0, as TA-Lib does."""
    n = close.size
    out = np.full(n, np.nan)
    if period >= n:
        return out
    gain = 0.0
    loss = 0.0
    for i in range(1, period + 1):
        change = close[i] - close[i - 1]
        if change < 0.0:
            loss -= change
        else:
            gain += change
    loss /= period
    gain /= period
    total = gain + loss
    out[period] = 0.0 if _is_zero(total) else 100.0 * (gain / total)
    for i in range(period + 1, n):
        change = close[i] - close[i - 1]
        loss *= period - 1
        gain *= period - 1
        if change < 0.0:
            loss -= change
        else:
            gain += change
        loss /= period
        gain /= period
        total = gain + loss
        out[i] = 0.0 if _is_zero(total) else 100.0 * (gain / total)
    return out


@njit(cache=True)
def directional_movement(
    high: FloatArray, low: FloatArray, close: FloatArray, period: int
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Wilder's ADX, +DI and -DI (TA_ADX, TA_PLUS_DI, TA_MINUS_DI), in one pass.

    +DM_t = H_t - H_{t-1} when that exceeds L_{t-1} - L_t and 0 (likewise -DM with the roles
    swapped); TR is the true range. DM and TR are summed over bars 1..period-1, then smoothed with
    S_t = S_{t-1} - S_{t-1}/period + v_t from bar `period` on; DI = 100·DM/TR (valid from bar
    `period`), DX = 100·|+DI - -DI| / (+DI + -DI). ADX is the mean of the first `period` DX
    values (valid at bar 2·period - 1), then Wilder-smoothed. A bar whose smoothed TR or DI sum is
    inside TA-Lib's zero band leaves ADX unchanged and gives DI 0, as in TA-Lib."""
    n = close.size
    adx = np.full(n, np.nan)
    plus_di = np.full(n, np.nan)
    minus_di = np.full(n, np.nan)
    plus_dm = 0.0
    minus_dm = 0.0
    true_range = 0.0
    sum_dx = 0.0
    average = 0.0
    for i in range(1, n):
        up = high[i] - high[i - 1]
        down = low[i - 1] - low[i]
        bar_range = high[i] - low[i]
        gap = abs(high[i] - close[i - 1])
        if gap > bar_range:
            bar_range = gap
        gap = abs(low[i] - close[i - 1])
        if gap > bar_range:
            bar_range = gap
        if i >= period:
            minus_dm -= minus_dm / period
            plus_dm -= plus_dm / period
        if down > 0 and up < down:
            minus_dm += down
        elif up > 0 and up > down:
            plus_dm += up
        if i < period:
            true_range += bar_range
            continue
        true_range = true_range - true_range / period + bar_range
        dx = np.nan
        if _is_zero(true_range):
            plus_di[i] = 0.0
            minus_di[i] = 0.0
        else:
            minus = 100.0 * (minus_dm / true_range)
            plus = 100.0 * (plus_dm / true_range)
            plus_di[i] = plus
            minus_di[i] = minus
            total = minus + plus
            if not _is_zero(total):
                dx = 100.0 * (abs(minus - plus) / total)
        if i < 2 * period - 1:
            if not np.isnan(dx):
                sum_dx += dx
        elif i == 2 * period - 1:
            if not np.isnan(dx):
                sum_dx += dx
            average = sum_dx / period
            adx[i] = average
        else:
            if not np.isnan(dx):
                average = (average * (period - 1) + dx) / period
            adx[i] = average
    return adx, plus_di, minus_di
