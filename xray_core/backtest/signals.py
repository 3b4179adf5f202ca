"""Where a run's target positions come from: a given int8 series, or the sign of SMA(fast) - SMA(slow).

The fused grid derives its targets on the fly from two moving averages instead of materialising a
bars x runs matrix; both sources go through `target_at`, so the kernel above them is one and the same.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit


class Signal(NamedTuple):
    """`targets` (int8 per bar; empty when `use_sma`) or the two averages (empty when not)."""

    targets: np.ndarray
    fast: np.ndarray
    slow: np.ndarray
    use_sma: bool


@njit(cache=True)
def target_at(i: int, signal: Signal, long_short: bool) -> int:
    """The target decided at bar i's close."""
    if signal.use_sma:
        f = signal.fast[i]
        s = signal.slow[i]
        target = 1 if f > s else (-1 if f < s else 0)  # NaN (warm-up) compares false: flat
    else:
        target = int(signal.targets[i])  # int64 in numba, as the literals above
    if target < 0 and not long_short:
        target = 0
    return target


@njit(cache=True)
def target_changes(n: int, signal: Signal, long_short: bool, out: np.ndarray) -> None:
    """Fill `out` with the bars j in [1, n) whose order target (decided at bar j - 1) differs from the
    one before (flat before bar 0), then n as a sentinel.

    One pass where an index is always stored and the count advances only on a change: no branch to
    mispredict at every crossing, so finding where the next order falls costs a fraction of testing
    the target bar by bar. Between two changes nothing but a level (stop, liquidation) can happen."""
    count = 0
    if signal.use_sma and not long_short:  # the long-only cross: the target is just fast > slow
        fast = signal.fast
        slow = signal.slow
        prev_up = False
        for j in range(1, n):
            up = fast[j - 1] > slow[j - 1]
            out[count] = j
            count += up != prev_up
            prev_up = up
    else:
        prev = 0
        for j in range(1, n):
            target = target_at(j - 1, signal, long_short)
            out[count] = j
            count += target != prev
            prev = target
    out[count] = n  # the sentinel: no change before the end
