"""The numba core: one run walked bar by bar, and the parallel driver over many runs.

`simulate` is the single definition of the trading semantics (see the package docstring). Both the
generic engine (targets given as an int8 array) and the fused SMA-cross grid (targets derived on the fly
from two moving averages) call it, which is what makes their numbers identical. It allocates nothing:
metrics go into a row of the caller's table, and the equity curve and trade records only when the
caller passes non-empty buffers for them. The fills themselves are in `fills`, the metrics'
accumulators in `metrics`, the targets in `signals`, the price arrays in `series`.

numba's on-disk cache (`cache=True`) checks only the file of the function it caches: after editing a
helper in another module, clear the cache (`find . -name "*.nb[ic]" -delete`) or touch the files of its
callers (this one, `grid`), or they run the helper's old code.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from xray_core.backtest import metrics as m
from xray_core.backtest import trades as t
from xray_core.backtest.config import SimParams
from xray_core.backtest.fills import (
    Position,
    end_pnl,
    exit_fill,
    flat,
    in_reach,
    level_exit,
    level_hit,
    open_position,
    record,
)
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
    flat bars need nothing; held bars are marked to the close, and an all-in long that no level can stop
    (equity = size x close, so its returns are the close's own) takes its return sums for the whole
    stretch from `prefix` and only walks the closes for the drawdown.

    Only scalars cross the boundaries of the step helpers (`fills`, `metrics`), and the loops over a
    stretch are small njit functions of their own: numba prunes the reference counting of the arrays
    a function uses only within a small function, so arrays handed to helpers inlined into this one
    would cost atomic reference counts at every step.
    """
    open_, close, atr = bars.open, bars.close, bars.atr
    n = close.shape[0]
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
        # ---- full step. The order placed after bar i-1's close fills at bar i's open ----------------
        target = target_at(i - 1, signal, params.long_short)
        if target != prev_target:
            prev_target = target
            if target != p.side:
                o = open_[i]
                if p.side != 0:  # a reversal is two trades
                    cash, px, pnl = exit_fill(p, o, cash, params)
                    if stats.n_trades < trades.shape[0]:
                        record(trades, stats.n_trades, p, i, px, pnl, t.SIGNAL, params.leverage)
                    stats = m.count_trade(stats, pnl)
                    p = flat()
                if target != 0 and cash > 0.0:
                    a = atr[i - 1] if atr.shape[0] > 0 else math.nan  # the ATR at the signal bar
                    cash, p = open_position(target, o, a, i, cash, params)

        # ---- intrabar exits: liquidation from the entry bar on, stops from the bar after ------------
        if p.side != 0 and params.check_hl:
            reason, px = level_hit(p, i, open_[i], bars.high[i], bars.low[i])
            if reason >= 0:
                cash, px, pnl = level_exit(p, reason, px, cash, params)
                if stats.n_trades < trades.shape[0]:
                    record(trades, stats.n_trades, p, i, px, pnl, reason, params.leverage)
                stats = m.count_trade(stats, pnl)
                p = flat()

        # ---- mark to the close ----------------------------------------------------------------------
        eq = cash + p.pos * close[i]
        if record_equity:
            equity[i] = eq
        curve = m.fold(curve, m.bar_return(eq, eq_prev), eq, p.side * p.side)
        eq_prev = eq
        i += 1

        # ---- fast-forward over bars where nothing can happen ----------------------------------------
        while changes[next_change] < i:
            next_change += 1
        end = changes[next_change]  # the next bar whose order target differs
        if p.side == 0:  # flat: equity stays `cash`, returns are 0
            if record_equity:
                equity[i:end] = cash
            i = end
        elif p.side > 0 and cash == 0.0 and not params.check_hl:  # all-in long (no cash left, none borrowed)
            curve = _ride(bars, i, end, p.pos, curve, equity)
            i = end
            eq_prev = p.pos * close[i - 1]
        elif p.side > 0 and cash == 0.0:
            i, curve = _ride_watched(bars, i, end, p, curve, equity)
            eq_prev = p.pos * close[i - 1]
        else:
            i, eq_prev, curve = _hold(bars, i, end, cash, p, eq_prev, curve, params.check_hl, equity)

    if p.side != 0:  # still open: valued at the last close, no exit fee or slippage
        px = close[n - 1]
        pnl = end_pnl(p, px)
        if stats.n_trades < trades.shape[0]:
            record(trades, stats.n_trades, p, n - 1, px, pnl, t.END, params.leverage)
        stats = m.count_trade(stats, pnl)
    m.finish(out, eq_prev, params.cash, n, curve, stats, bars_per_year, years)


@njit(cache=True)
def _ride(bars: Bars, i: int, end: int, pos: float, curve: m.CurveStats, equity: np.ndarray) -> m.CurveStats:
    """An all-in long that no level can stop, over bars i to `end`: equity = size x close, so the
    stretch's return sums are two lookups in `prefix`; only the drawdown needs the closes walked."""
    prefix = bars.prefix
    close = bars.close
    record_equity = equity.shape[0] > 0
    peak = curve.peak
    max_dd = curve.max_dd
    for k in range(i, end):
        eq = pos * close[k]
        if record_equity:
            equity[k] = eq
        peak, max_dd = m.drawdown(peak, max_dd, eq)
    return m.CurveStats(
        curve.sum_r + (prefix[end, 0] - prefix[i, 0]),
        curve.sum_r2 + (prefix[end, 1] - prefix[i, 1]),
        curve.sum_down2 + (prefix[end, 2] - prefix[i, 2]),
        peak,
        max_dd,
        curve.exposed + (end - i),
    )


@njit(cache=True)
def _ride_watched(
    bars: Bars, i: int, end: int, p: Position, curve: m.CurveStats, equity: np.ndarray
) -> tuple[int, m.CurveStats]:
    """The same with a level in reach: bar by bar (the close's own returns), until `end` or a bar that
    may hit a level, which the full step then takes: (that bar, the curve's stats)."""
    open_, high, low, close, rets = bars.open, bars.high, bars.low, bars.close, bars.rets
    record_equity = equity.shape[0] > 0
    while i < end and not in_reach(open_[i], high[i], low[i], p):  # no `break`: it defeats numba's pruning
        eq = p.pos * close[i]
        if record_equity:
            equity[i] = eq
        curve = m.fold(curve, rets[i], eq, 1)
        i += 1
    return i, curve


@njit(cache=True)
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
    """Any other held position, marked to each close (cash + position x close) until `end` or a bar
    that may hit a level: (that bar, the last equity, the curve's stats)."""
    open_, high, low, close = bars.open, bars.high, bars.low, bars.close
    record_equity = equity.shape[0] > 0
    while i < end and not (check_hl and in_reach(open_[i], high[i], low[i], p)):
        eq = cash + p.pos * close[i]
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
