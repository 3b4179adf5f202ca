"""The numba core: one run walked bar by bar, and the parallel driver over many runs.

`simulate` is the single definition of the trading semantics (see the package docstring). Both the
generic engine (targets given as an int8 array) and the fused SMA-cross grid (targets derived on the fly
from two moving averages) call it, which is what makes their numbers identical. It allocates nothing:
metrics go into a row of the caller's table, and the equity curve and trade records only when the
caller passes non-empty buffers for them.

Arithmetic mirrors vectorbt's `buy_nb`/`sell_nb` operation by operation (size = (cash / (1 + fee)) /
price for a buy, cash / (price * (1 + fee)) for a short sale, fee = value * fee on every other fill),
so the results agree with `Portfolio.from_signals` to rounding.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from xray_core.backtest import metrics as m
from xray_core.backtest import trades as t

INF = math.inf


@njit(cache=True, inline="always")
def _record(
    trades: np.ndarray,
    k: int,
    entry_bar: int,
    exit_bar: int,
    side: int,
    entry_px: float,
    exit_px: float,
    size: float,
    pnl: float,
    margin_base: float,
    reason: int,
) -> None:
    if k < trades.shape[0]:
        row = trades[k]
        row[t.ENTRY_BAR] = entry_bar
        row[t.EXIT_BAR] = exit_bar
        row[t.SIDE] = side
        row[t.ENTRY_PRICE] = entry_px
        row[t.EXIT_PRICE] = exit_px
        row[t.SIZE] = size
        row[t.PNL] = pnl
        row[t.RETURN] = pnl / margin_base
        row[t.REASON] = reason


@njit(cache=True, inline="always")
def _target(
    i: int, targets: np.ndarray, sma_fast: np.ndarray, sma_slow: np.ndarray, use_sma: bool, long_short: bool
) -> int:
    """The target decided at bar i's close."""
    if use_sma:
        f = sma_fast[i]
        s = sma_slow[i]
        target = 1 if f > s else (-1 if f < s else 0)  # NaN (warm-up) compares false: flat
    else:
        target = int(targets[i])
    if target < 0 and not long_short:
        target = 0
    return target


@njit(cache=True, inline="always")
def _target_changes(
    n: int,
    targets: np.ndarray,
    sma_fast: np.ndarray,
    sma_slow: np.ndarray,
    use_sma: bool,
    long_short: bool,
    out: np.ndarray,
) -> None:
    """Fill `out` with the bars j in [1, n) whose order target (decided at bar j - 1) differs from the
    one before (flat before bar 0), then n as a sentinel.

    One pass where an index is always stored and the count advances only on a change: no branch to
    mispredict at every crossing, so finding where the next order falls costs a fraction of testing
    the target bar by bar. Between two changes nothing but a level (stop, liquidation) can happen."""
    count = 0
    if use_sma and not long_short:  # the long-only cross: the target is just fast > slow
        prev_up = False
        for j in range(1, n):
            up = sma_fast[j - 1] > sma_slow[j - 1]
            out[count] = j
            count += up != prev_up
            prev_up = up
    else:
        prev = 0
        for j in range(1, n):
            target = _target(j - 1, targets, sma_fast, sma_slow, use_sma, long_short)
            out[count] = j
            count += target != prev
            prev = target
    out[count] = n  # the sentinel: no change before the end


@njit(cache=True, inline="always")
def _bar_return(eq: float, eq_prev: float) -> float:
    if eq == eq_prev or eq_prev <= 0.0:
        return 0.0
    return (eq - eq_prev) / eq_prev


@njit(cache=True, inline="always")
def _fold(
    r: float, eq: float, sum_r: float, sum_r2: float, sum_down2: float, peak: float, max_dd: float
) -> tuple[float, float, float, float, float]:
    """Fold one bar's return and closing equity into the accumulators (adding a zero return changes
    nothing, so flat bars may be skipped)."""
    down = r if r < 0.0 else 0.0  # branch-free: the sign of r is a coin flip
    sum_r += r
    sum_r2 += r * r
    sum_down2 += down * down
    peak = max(peak, eq)  # branch-free too: new peaks come at random in a rally
    if eq < peak * (1.0 - max_dd):  # rare: a deeper drawdown than any so far
        max_dd = 1.0 - eq / peak
    return sum_r, sum_r2, sum_down2, peak, max_dd


@njit(cache=True, inline="always")
def _exit_fill(
    side: int,
    size: float,
    price: float,
    fee: float,
    slip: float,
    cash: float,
    entry_px: float,
    entry_fees: float,
) -> tuple[float, float, float]:
    """Close `size` at market `price`: (cash after, fill price, trade pnl)."""
    if side > 0:
        px = price * (1.0 - slip)
        value = size * px
        fees = value * fee
        return cash + (value - fees), px, (value - size * entry_px) - entry_fees - fees
    px = price * (1.0 + slip)
    value = size * px
    fees = value * fee
    return cash - (value + fees), px, (size * entry_px - value) - entry_fees - fees


@njit(cache=True, nogil=True)
def simulate(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    rets: np.ndarray,
    prefix: np.ndarray,
    changes: np.ndarray,
    targets: np.ndarray,
    sma_fast: np.ndarray,
    sma_slow: np.ndarray,
    use_sma: bool,
    atr: np.ndarray,
    fee: float,
    slip: float,
    cash0: float,
    frac: float,
    lev: float,
    mmr: float,
    sl_k: float,
    tp_k: float,
    long_short: bool,
    check_hl: bool,
    bars_per_year: float,
    years: float,
    out: np.ndarray,
    equity: np.ndarray,
    trades: np.ndarray,
) -> None:
    """Run one backtest and write its metrics into `out`.

    `rets[i]` is (close[i] - close[i-1]) / close[i-1] (see `close_returns`), `prefix` (3, n + 1) the
    running sums of rets, rets^2 and min(rets, 0)^2 before each bar (see `return_prefix`), and
    `changes` an int64 scratch buffer of n + 1 entries (see `_target_changes`). The target for
    bar i comes from bar i-1: `targets[i-1]`, or the sign of
    `sma_fast[i-1] - sma_slow[i-1]` when `use_sma`. `sl_k`/`tp_k` are NaN when disabled. `equity`
    (length 0 or n) and `trades` (0 rows or exactly as many rows as trades) are filled only when
    non-empty.

    Each bar that may change something (a new target, a level within reach) goes through the full
    step; between such bars the simulation jumps to the next target change (listed once, up front):
    flat bars need nothing; held bars are marked to the close, and an all-in long that no level can stop
    (equity = size x close, so its returns are the close's own) takes its return sums for the whole
    stretch from `prefix` and only walks the closes for the drawdown.
    """
    n = close.shape[0]
    record_equity = equity.shape[0] > 0
    cash = cash0
    side = 0  # -1, 0, +1
    size = 0.0
    pos = 0.0  # side * size, for valuation; 0.0 when flat
    free = 0.0  # cash outside the position's margin (isolated margin)
    margin = 0.0
    entry_px = 0.0
    entry_fees = 0.0
    entry_bar = -1
    sl_lvl = 0.0
    tp_lvl = 0.0
    liq_lvl = 0.0
    lower = -INF  # while held, nothing can happen unless open/low <= lower or open/high >= upper
    upper = INF
    prev_target = 0
    eq_prev = cash0
    sum_r = 0.0
    sum_r2 = 0.0
    sum_down2 = 0.0
    peak = cash0
    max_dd = 0.0
    exposed = 0
    n_trades = 0
    wins = 0
    gross_win = 0.0
    gross_loss = 0.0
    if record_equity:
        equity[0] = cash0  # nothing can fill at bar 0
    _target_changes(n, targets, sma_fast, sma_slow, use_sma, long_short, changes)
    next_change = 0  # index into `changes` of the first change at or after bar i

    i = 1
    while i < n:
        # ---- full step. The order placed after bar i-1's close fills at bar i's open ----------------
        target = _target(i - 1, targets, sma_fast, sma_slow, use_sma, long_short)
        if target != prev_target:
            prev_target = target
            if target != side:
                o = open_[i]
                if side != 0:
                    cash, px, pnl = _exit_fill(side, size, o, fee, slip, cash, entry_px, entry_fees)
                    _record(
                        trades,
                        n_trades,
                        entry_bar,
                        i,
                        side,
                        entry_px,
                        px,
                        size,
                        pnl,
                        size * entry_px / lev,
                        t.SIGNAL,
                    )
                    n_trades += 1
                    if pnl > 0.0:
                        wins += 1
                        gross_win += pnl
                    elif pnl < 0.0:
                        gross_loss -= pnl
                    side = 0
                    size = 0.0
                    pos = 0.0
                if target != 0 and cash > 0.0:
                    margin = frac * cash
                    free = cash - margin
                    notional = lev * margin
                    if target > 0:
                        entry_px = o * (1.0 + slip)
                        base = notional / (1.0 + fee)
                        size = base / entry_px
                        entry_fees = notional - base
                        cash = cash - notional
                        debt = free - cash  # borrowed: (lev - 1) * margin
                        liq_lvl = debt / (size * (1.0 - mmr)) if debt > 0.0 else -INF
                    else:
                        entry_px = o * (1.0 - slip)
                        size = notional / (entry_px * (1.0 + fee))
                        value = size * entry_px
                        entry_fees = value * fee
                        cash = cash + (value - entry_fees)
                        liq_lvl = (cash - free) / (size * (1.0 + mmr))
                    side = target
                    pos = side * size
                    entry_bar = i
                    a = atr[i - 1] if atr.shape[0] > 0 else math.nan
                    sl_lvl = o - side * sl_k * a if sl_k == sl_k and a == a else -side * INF
                    tp_lvl = o + side * tp_k * a if tp_k == tp_k and a == a else side * INF
                    if side > 0:
                        lower, upper = max(sl_lvl, liq_lvl), tp_lvl
                    else:
                        lower, upper = tp_lvl, min(sl_lvl, liq_lvl)

        # ---- intrabar exits: liquidation from the entry bar on, stops from the bar after ------------
        if side != 0 and check_hl:
            o = open_[i]
            hi = high[i]
            lo = low[i]
            s_lvl = sl_lvl if entry_bar < i else -side * INF
            t_lvl = tp_lvl if entry_bar < i else side * INF
            reason = -1
            px = 0.0
            if side > 0:
                if o <= liq_lvl:
                    reason = t.LIQUIDATION
                elif o <= s_lvl:
                    reason, px = t.STOP_LOSS, o
                elif o >= t_lvl:
                    reason, px = t.TAKE_PROFIT, o
                elif s_lvl > liq_lvl and lo <= s_lvl:
                    reason, px = t.STOP_LOSS, s_lvl
                elif lo <= liq_lvl:
                    reason = t.LIQUIDATION
                elif hi >= t_lvl:
                    reason, px = t.TAKE_PROFIT, t_lvl
            else:
                if o >= liq_lvl:
                    reason = t.LIQUIDATION
                elif o >= s_lvl:
                    reason, px = t.STOP_LOSS, o
                elif o <= t_lvl:
                    reason, px = t.TAKE_PROFIT, o
                elif s_lvl < liq_lvl and hi >= s_lvl:
                    reason, px = t.STOP_LOSS, s_lvl
                elif hi >= liq_lvl:
                    reason = t.LIQUIDATION
                elif lo <= t_lvl:
                    reason, px = t.TAKE_PROFIT, t_lvl
            if reason >= 0:
                if reason == t.LIQUIDATION:
                    px = liq_lvl
                    pnl = -margin  # the margin is lost, whatever the gap
                    cash = free
                else:
                    cash, px, pnl = _exit_fill(side, size, px, fee, slip, cash, entry_px, entry_fees)
                _record(
                    trades,
                    n_trades,
                    entry_bar,
                    i,
                    side,
                    entry_px,
                    px,
                    size,
                    pnl,
                    size * entry_px / lev,
                    reason,
                )
                n_trades += 1
                if pnl > 0.0:
                    wins += 1
                    gross_win += pnl
                elif pnl < 0.0:
                    gross_loss -= pnl
                side = 0
                size = 0.0
                pos = 0.0

        # ---- mark to the close ----------------------------------------------------------------------
        eq = cash + pos * close[i]
        if record_equity:
            equity[i] = eq
        sum_r, sum_r2, sum_down2, peak, max_dd = _fold(
            _bar_return(eq, eq_prev), eq, sum_r, sum_r2, sum_down2, peak, max_dd
        )
        exposed += side * side
        eq_prev = eq
        i += 1

        # ---- fast-forward over bars where nothing can happen ----------------------------------------
        while changes[next_change] < i:
            next_change += 1
        end = changes[next_change]  # the next bar whose order target differs
        if side == 0:  # flat: equity stays `cash`, returns are 0
            if record_equity:
                equity[i:end] = cash
            i = end
        elif side > 0 and cash == 0.0 and not check_hl:
            # All-in long (no cash left, none borrowed) that no level can stop: equity = size x close,
            # so the stretch's returns are the close's own and their sums are two lookups; only the
            # drawdown needs the closes walked.
            sum_r += prefix[0, end] - prefix[0, i]
            sum_r2 += prefix[1, end] - prefix[1, i]
            sum_down2 += prefix[2, end] - prefix[2, i]
            for k in range(i, end):
                eq = pos * close[k]
                if record_equity:
                    equity[k] = eq
                peak = max(peak, eq)
                if eq < peak * (1.0 - max_dd):  # rare: a deeper drawdown than any so far
                    max_dd = 1.0 - eq / peak
            exposed += end - i
            i = end
            eq_prev = pos * close[i - 1]
        elif side > 0 and cash == 0.0:
            # The same with a level in reach: bar by bar, and the full step takes a bar that may hit it.
            while i < end:
                if min(open_[i], low[i]) <= lower or max(open_[i], high[i]) >= upper:
                    break
                eq = pos * close[i]
                if record_equity:
                    equity[i] = eq
                sum_r, sum_r2, sum_down2, peak, max_dd = _fold(
                    rets[i], eq, sum_r, sum_r2, sum_down2, peak, max_dd
                )
                exposed += 1
                i += 1
            eq_prev = pos * close[i - 1]
        else:
            while i < end:
                if check_hl and (min(open_[i], low[i]) <= lower or max(open_[i], high[i]) >= upper):
                    break
                eq = cash + pos * close[i]
                if record_equity:
                    equity[i] = eq
                r = _bar_return(eq, eq_prev)
                sum_r, sum_r2, sum_down2, peak, max_dd = _fold(r, eq, sum_r, sum_r2, sum_down2, peak, max_dd)
                eq_prev = eq
                exposed += 1
                i += 1

    if side != 0:  # still open: valued at the last close, no exit fee or slippage
        px = close[n - 1]
        if side > 0:
            pnl = (size * px - size * entry_px) - entry_fees
        else:
            pnl = (size * entry_px - size * px) - entry_fees
        _record(
            trades, n_trades, entry_bar, n - 1, side, entry_px, px, size, pnl, size * entry_px / lev, t.END
        )
        n_trades += 1
        if pnl > 0.0:
            wins += 1
            gross_win += pnl
        elif pnl < 0.0:
            gross_loss -= pnl
    m.finish(
        out,
        eq_prev,
        cash0,
        n,
        sum_r,
        sum_r2,
        sum_down2,
        max_dd,
        exposed,
        n_trades,
        wins,
        gross_win,
        gross_loss,
        bars_per_year,
        years,
    )


@njit(cache=True)
def return_prefix(rets: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Running sums of rets, rets^2 and min(rets, 0)^2 before each bar, for the series laid end to end
    at `bounds` (k-th series: rets[bounds[k]:bounds[k + 1]]). Series k's n + 1 prefixes sit in columns
    bounds[k] + k ... bounds[k + 1] + k, starting from zero, so a series gets the same numbers whether
    it is backtested alone or beside others, and a stretch's sums are two lookups."""
    out = np.empty((3, rets.shape[0] + bounds.shape[0] - 1), dtype=np.float64)
    for k in range(bounds.shape[0] - 1):
        lo, hi = bounds[k], bounds[k + 1]
        col = lo + k
        total = 0.0
        squares = 0.0
        downs = 0.0
        out[0, col] = 0.0
        out[1, col] = 0.0
        out[2, col] = 0.0
        for i in range(lo, hi):
            r = rets[i]
            down = r if r < 0.0 else 0.0
            total += r
            squares += r * r
            downs += down * down
            col += 1
            out[0, col] = total
            out[1, col] = squares
            out[2, col] = downs
    return out


def close_returns(close: np.ndarray, starts: np.ndarray | None = None) -> np.ndarray:
    """Bar-to-bar returns of the close, 0 at the first bar (of each series starting at `starts`)."""
    out = np.zeros_like(close)
    out[1:] = (close[1:] - close[:-1]) / close[:-1]
    if starts is not None:
        out[starts] = 0.0
    return out


@njit(cache=True, parallel=True)
def run_many_kernel(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    rets: np.ndarray,
    prefix: np.ndarray,
    targets: np.ndarray,
    atr: np.ndarray,
    fee: float,
    slip: float,
    cash0: float,
    frac: float,
    lev: float,
    mmr: float,
    sl_k: float,
    tp_k: float,
    long_short: bool,
    check_hl: bool,
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
        changes = np.empty(close.shape[0] + 1, dtype=np.int64)
        simulate(
            open_,
            high,
            low,
            close,
            rets,
            prefix,
            changes,
            targets[j],
            no_sma,
            no_sma,
            False,
            atr,
            fee,
            slip,
            cash0,
            frac,
            lev,
            mmr,
            sl_k,
            tp_k,
            long_short,
            check_hl,
            bars_per_year,
            years,
            out[j],
            equity[j],
            trades[trade_offsets[j] : trade_offsets[j + 1]],
        )
