"""The price series as the kernels read them: one tuple of per-bar arrays, with the close's returns and
their running sums computed once per call (not once per run).

Several symbols are laid end to end (symbol k's bars at bounds[k]:bounds[k + 1]) so that one parallel
kernel can walk them all; `symbol_bars` cuts one symbol's view out of that.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit


class Bars(NamedTuple):
    """Per-bar float64 arrays, all C-contiguous (so one series cut out of several has the same numba type
    as a series alone, and the kernels compile once for both). `high`/`low` may be empty when no intrabar
    level can trigger and `atr` when no stop is set (the kernels then never read them); `prefix` has
    bars + 1 rows of 3 per series (see `return_prefix`)."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    rets: np.ndarray
    prefix: np.ndarray
    atr: np.ndarray


def series_bars(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    atr: np.ndarray,
    bounds: np.ndarray,
) -> Bars:
    """The kernels' view of the series laid end to end at `bounds` (np.array([0, n]) for one)."""
    rets = close_returns(close, bounds[:-1])
    return Bars(open_, high, low, close, rets, return_prefix(rets, bounds), atr)


@njit(cache=True, inline="always")
def symbol_bars(bars: Bars, bounds: np.ndarray, k: int) -> Bars:
    """Series k of `bars` (views, no copy); an empty array stays empty."""
    lo, hi = bounds[k], bounds[k + 1]
    return Bars(
        bars.open[lo:hi],
        bars.high[lo:hi],
        bars.low[lo:hi],
        bars.close[lo:hi],
        bars.rets[lo:hi],
        bars.prefix[lo + k : hi + k + 1],
        bars.atr[lo:hi],
    )


def close_returns(close: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Bar-to-bar returns of the close, 0 at the first bar of each series (the bars at `starts`)."""
    out = np.zeros_like(close)
    out[1:] = (close[1:] - close[:-1]) / close[:-1]
    out[starts] = 0.0
    return out


@njit(cache=True)
def return_prefix(rets: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Running sums of rets, rets^2 and min(rets, 0)^2 before each bar (one row of 3 per bar), for the
    series laid end to end at `bounds` (k-th series: rets[bounds[k]:bounds[k + 1]]). Series k's n + 1
    rows are bounds[k] + k ... bounds[k + 1] + k, starting from zero, so a series gets the same numbers
    whether it is backtested alone or beside others, and a stretch's sums are two lookups."""
    out = np.empty((rets.shape[0] + bounds.shape[0] - 1, 3), dtype=np.float64)
    for k in range(bounds.shape[0] - 1):
        lo, hi = bounds[k], bounds[k + 1]
        row = lo + k
        total = 0.0
        squares = 0.0
        downs = 0.0
        out[row, 0] = 0.0
        out[row, 1] = 0.0
        out[row, 2] = 0.0
        for i in range(lo, hi):
            r = rets[i]
            down = r if r < 0.0 else 0.0
            total += r
            squares += r * r
            downs += down * down
            row += 1
            out[row, 0] = total
            out[row, 1] = squares
            out[row, 2] = downs
    return out
