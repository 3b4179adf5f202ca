"""The numba core: one run walked bar by bar, and the parallel driver over many runs.

`simulate` is the single definition of the trading semantics (see the package docstring). Both the
generic engine (targets given as an int8 array) and the fused SMA-cross grid (targets derived on the fly
from two moving averages) call it, which is what makes their numbers identical. It allocates nothing:
metrics go into a row of the caller's table, and the equity curve and trade records only when the
caller passes non-empty buffers for them. The fills themselves are in `fills`, the metrics'
accumulators in `metrics`.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from xray_core.backtest import metrics as m
from xray_core.backtest import trades as t
from xray_core.backtest.config import SimParams
from xray_core.backtest.fills import Position, book, end_pnl, flat, in_reach, on_levels, on_signal
from xray_core.backtest.series import Bars
from xray_core.backtest.signals import Signal, target_at, target_changes


@njit(cache=True, nogil=True)
def simulate(
    bars: Bars,
    signal: Signal,
    params: SimParams,
    bars_per_year: float,
    years: float,
    changes: np.ndarray,
    out: np.ndarray,
    equity: np.ndarray,
    trades: np.ndarray,
) -> None:
    """Run one backtest and write its metrics into `out`.

    The target for bar i comes from bar i-1 (see `signals.target_at`). `changes` is an int64 scratch
    buffer of n + 1 entries (see `signals.target_changes`). `equity` (length 0 or n) and `trades`
    (0 rows or exactly as many rows as trades) are filled only when non-empty.

    Each bar that may change something (a new target, a level within reach) goes through the full
    step; between such bars the simulation jumps to the next target change (listed once, up front):
    see `_fast_forward`.
    """
    n = bars.close.shape[0]
    record_equity = equity.shape[0] > 0
    cash = params.cash
    p = flat()
    curve = m.start_curve(cash)
    stats = m.no_trades()
    prev_target = 0
    eq_prev = cash
    if record_equity:
        equity[0] = cash  # nothing can fill at bar 0
    target_changes(n, signal, params.long_short, changes)
    next_change = 0  # index into `changes` of the first change at or after bar i

    i = 1
    while i < n:
        # The full step. The order placed after bar i-1's close fills at bar i's open, then the levels
        # are checked within the bar (so a signal exit at the open takes precedence over a stop).
        target = target_at(i - 1, signal, params.long_short)
        if target != prev_target:
            prev_target = target
            if target != p.side:
                cash, p, stats = on_signal(bars, i, target, cash, p, stats, params, trades)
        if p.side != 0 and params.check_hl:
            cash, p, stats = on_levels(bars, i, cash, p, stats, params, trades)

        # Mark to the close.
        eq = cash + p.pos * bars.close[i]
        if record_equity:
            equity[i] = eq
        curve = m.fold(curve, m.bar_return(eq, eq_prev), eq, p.side * p.side)
        eq_prev = eq
        i += 1

        while changes[next_change] < i:
            next_change += 1
        i, eq_prev, curve = _fast_forward(
            bars, i, changes[next_change], cash, p, eq_prev, curve, params, equity
        )

    if p.side != 0:
        px = bars.close[n - 1]
        stats = book(trades, stats, p, n - 1, px, end_pnl(p, px), t.END, params.leverage)
    m.finish(out, eq_prev, params.cash, n, curve, stats, bars_per_year, years)


@njit(cache=True, inline="always")
def _fast_forward(
    bars: Bars,
    i: int,
    end: int,
    cash: float,
    p: Position,
    eq_prev: float,
    curve: m.CurveStats,
    params: SimParams,
    equity: np.ndarray,
) -> tuple[int, float, m.CurveStats]:
    """Walk bars i, i+1, ... before `end` (the next bar whose order target differs) where nothing can
    happen: (the bar to resume the full step at, the last equity, the curve's stats).

    Flat bars need nothing; held bars are marked to the close, and an all-in long that no level can
    stop (equity = size x close, so its returns are the close's own) takes its return sums for the
    whole stretch from `prefix` and only walks the closes for the drawdown."""
    if p.side == 0:  # flat: equity stays `cash`, returns are 0
        if equity.shape[0] > 0:
            equity[i:end] = cash
        return end, eq_prev, curve
    if p.side > 0 and cash == 0.0:  # all-in long: no cash left, none borrowed
        if params.check_hl:
            return _ride_watched(bars, i, end, p, curve, equity)
        return end, p.pos * bars.close[end - 1], _ride(bars, i, end, p, curve, equity)
    return _hold(bars, i, end, cash, p, eq_prev, curve, params.check_hl, equity)


@njit(cache=True, inline="always")
def _ride(bars: Bars, i: int, end: int, p: Position, curve: m.CurveStats, equity: np.ndarray) -> m.CurveStats:
    """An all-in long that no level can stop, from bar i to `end`: the stretch's return sums are two
    lookups; only the drawdown needs the closes walked."""
    prefix = bars.prefix
    close = bars.close
    record_equity = equity.shape[0] > 0
    peak = curve.peak
    max_dd = curve.max_dd
    for k in range(i, end):
        eq = p.pos * close[k]
        if record_equity:
            equity[k] = eq
        peak, max_dd = m.drawdown(peak, max_dd, eq)
    return m.CurveStats(
        curve.sum_r + (prefix[0, end] - prefix[0, i]),
        curve.sum_r2 + (prefix[1, end] - prefix[1, i]),
        curve.sum_down2 + (prefix[2, end] - prefix[2, i]),
        peak,
        max_dd,
        curve.exposed + (end - i),
    )


@njit(cache=True, inline="always")
def _ride_watched(
    bars: Bars, i: int, end: int, p: Position, curve: m.CurveStats, equity: np.ndarray
) -> tuple[int, float, m.CurveStats]:
    """The same with a level in reach: bar by bar (the close's own returns), until a bar that may hit
    a level, which goes back to the full step."""
    record_equity = equity.shape[0] > 0
    while i < end:
        if in_reach(bars, i, p):
            break
        eq = p.pos * bars.close[i]
        if record_equity:
            equity[i] = eq
        curve = m.fold(curve, bars.rets[i], eq, 1)
        i += 1
    return i, p.pos * bars.close[i - 1], curve


@njit(cache=True, inline="always")
def _hold(
    bars: Bars,
    i: int,
    end: int,
    cash: float,
    p: Position,
    eq_prev: float,
    curve: m.CurveStats,
    check_hl: bool,
    equity: np.ndarray,
) -> tuple[int, float, m.CurveStats]:
    """Any other held position: marked to each close (cash + position x close), until `end` or a bar
    that may hit a level."""
    record_equity = equity.shape[0] > 0
    while i < end:
        if check_hl and in_reach(bars, i, p):
            break
        eq = cash + p.pos * bars.close[i]
        if record_equity:
            equity[i] = eq
        curve = m.fold(curve, m.bar_return(eq, eq_prev), eq, 1)
        eq_prev = eq
        i += 1
    return i, eq_prev, curve


@njit(cache=True, parallel=True)
def run_many_kernel(
    bars: Bars,
    targets: np.ndarray,
    params: SimParams,
    bars_per_year: float,
    years: float,
    out: np.ndarray,
    equity: np.ndarray,
    trades: np.ndarray,
    trade_offsets: np.ndarray,
) -> None:
    """`simulate` for each row of `targets` (runs x bars, C-contiguous) in parallel.

    `equity` is (runs, n) or (runs, 0); `trades` holds the records of run j in rows
    trade_offsets[j]:trade_offsets[j + 1] (all zero when trades are not wanted)."""
    no_sma = np.empty(0, dtype=np.float64)
    for j in prange(targets.shape[0]):
        changes = np.empty(bars.close.shape[0] + 1, dtype=np.int64)
        signal = Signal(targets[j], no_sma, no_sma, False)
        run_trades = trades[trade_offsets[j] : trade_offsets[j + 1]]
        simulate(bars, signal, params, bars_per_year, years, changes, out[j], equity[j], run_trades)
