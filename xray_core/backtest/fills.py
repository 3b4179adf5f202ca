"""Fills: opening a position at an open, closing it at market or at a level, and booking the trade.

Arithmetic mirrors vectorbt's `buy_nb`/`sell_nb` operation by operation (size = (cash / (1 + fee)) /
price for a buy, cash / (price * (1 + fee)) for a short sale, fee = value * fee on every other fill),
so the results agree with `Portfolio.from_signals` to rounding. A position is an immutable tuple that
each step replaces; numba keeps its fields in registers.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

from xray_core.backtest import trades as t
from xray_core.backtest.config import SimParams

INF = math.inf


class Position(NamedTuple):
    """The open position (side 0: flat, and then no other field is read)."""

    side: int  # -1, 0, +1
    size: float
    pos: float  # side * size, for valuation; 0.0 when flat
    entry_bar: int
    entry_px: float
    entry_fees: float
    margin: float
    free: float  # cash outside the position's margin (isolated margin)
    sl: float
    tp: float
    liq: float
    lower: float  # while held, nothing can happen unless open/low <= lower or open/high >= upper
    upper: float


@njit(cache=True, inline="always")
def flat() -> Position:
    return Position(0, 0.0, 0.0, -1, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -INF, INF)


@njit(cache=True, inline="always")
def open_position(
    target: int, o: float, a: float, i: int, cash: float, params: SimParams
) -> tuple[float, Position]:
    """Enter `target` (+1/-1) at bar i's open `o` from flat, with `a` the ATR at the signal bar (NaN:
    no stops): (cash after, the position)."""
    fee = params.fee
    slip = params.slippage
    margin = params.size_fraction * cash
    free = cash - margin
    notional = params.leverage * margin
    if target > 0:
        entry_px = o * (1.0 + slip)
        base = notional / (1.0 + fee)
        size = base / entry_px
        entry_fees = notional - base
        cash = cash - notional
        debt = free - cash  # borrowed: (lev - 1) * margin
        liq = debt / (size * (1.0 - params.maintenance_margin)) if debt > 0.0 else -INF
    else:
        entry_px = o * (1.0 - slip)
        size = notional / (entry_px * (1.0 + fee))
        value = size * entry_px
        entry_fees = value * fee
        cash = cash + (value - entry_fees)
        liq = (cash - free) / (size * (1.0 + params.maintenance_margin))
    side = target
    sl_k = params.sl_atr
    tp_k = params.tp_atr
    sl = o - side * sl_k * a if sl_k == sl_k and a == a else -side * INF
    tp = o + side * tp_k * a if tp_k == tp_k and a == a else side * INF
    if side > 0:
        lower, upper = max(sl, liq), tp
    else:
        lower, upper = tp, min(sl, liq)
    return cash, Position(
        side, size, side * size, i, entry_px, entry_fees, margin, free, sl, tp, liq, lower, upper
    )


@njit(cache=True, inline="always")
def exit_fill(p: Position, price: float, cash: float, params: SimParams) -> tuple[float, float, float]:
    """Close `p` at market `price`: (cash after, fill price, trade pnl)."""
    fee = params.fee
    if p.side > 0:
        px = price * (1.0 - params.slippage)
        value = p.size * px
        fees = value * fee
        return cash + (value - fees), px, (value - p.size * p.entry_px) - p.entry_fees - fees
    px = price * (1.0 + params.slippage)
    value = p.size * px
    fees = value * fee
    return cash - (value + fees), px, (p.size * p.entry_px - value) - p.entry_fees - fees


@njit(cache=True, inline="always")
def in_reach(o: float, hi: float, lo: float, p: Position) -> bool:
    """Whether a bar's open or range touches a level of `p` (a stop, a take-profit, the liquidation)."""
    return min(o, lo) <= p.lower or max(o, hi) >= p.upper


@njit(cache=True, inline="always")
def level_hit(p: Position, i: int, o: float, hi: float, lo: float) -> tuple[int, float]:
    """The level `p` exits at in bar i, if any: (reason, fill price before slippage), reason -1 for
    none. Liquidation from the entry bar on, stops from the bar after; a gap through a level fills at
    the open; an adverse stop nearer than the liquidation comes first, SL before TP in one bar."""
    side = p.side
    liq = p.liq
    s_lvl = p.sl if p.entry_bar < i else -side * INF
    t_lvl = p.tp if p.entry_bar < i else side * INF
    reason = -1
    px = 0.0
    if side > 0:
        if o <= liq:
            reason = t.LIQUIDATION
        elif o <= s_lvl:
            reason, px = t.STOP_LOSS, o
        elif o >= t_lvl:
            reason, px = t.TAKE_PROFIT, o
        elif s_lvl > liq and lo <= s_lvl:
            reason, px = t.STOP_LOSS, s_lvl
        elif lo <= liq:
            reason = t.LIQUIDATION
        elif hi >= t_lvl:
            reason, px = t.TAKE_PROFIT, t_lvl
    else:
        if o >= liq:
            reason = t.LIQUIDATION
        elif o >= s_lvl:
            reason, px = t.STOP_LOSS, o
        elif o <= t_lvl:
            reason, px = t.TAKE_PROFIT, o
        elif s_lvl < liq and hi >= s_lvl:
            reason, px = t.STOP_LOSS, s_lvl
        elif hi >= liq:
            reason = t.LIQUIDATION
        elif lo <= t_lvl:
            reason, px = t.TAKE_PROFIT, t_lvl
    return reason, px


@njit(cache=True, inline="always")
def level_exit(
    p: Position, reason: int, px: float, cash: float, params: SimParams
) -> tuple[float, float, float]:
    """Close `p` at the level `level_hit` found: (cash after, fill price, trade pnl)."""
    if reason == t.LIQUIDATION:
        return p.free, p.liq, -p.margin  # the margin is lost, whatever the gap
    return exit_fill(p, px, cash, params)


@njit(cache=True, inline="always")
def end_pnl(p: Position, px: float) -> float:
    """The pnl of `p` still open at the end, valued at `px` (the last close) without exit fee or slippage."""
    if p.side > 0:
        return (p.size * px - p.size * p.entry_px) - p.entry_fees
    return (p.size * p.entry_px - p.size * px) - p.entry_fees


@njit(cache=True)
def record(
    trades: np.ndarray,
    k: int,
    p: Position,
    exit_bar: int,
    px: float,
    pnl: float,
    reason: int,
    leverage: float,
) -> None:
    """Write trade k, which closes `p` at `px`, into row k of `trades` (the caller checks there is one:
    a check in here would leave numba a reference count on `trades` at every trade)."""
    trades[k, t.ENTRY_BAR] = p.entry_bar
    trades[k, t.EXIT_BAR] = exit_bar
    trades[k, t.SIDE] = p.side
    trades[k, t.ENTRY_PRICE] = p.entry_px
    trades[k, t.EXIT_PRICE] = px
    trades[k, t.SIZE] = p.size
    trades[k, t.PNL] = pnl
    trades[k, t.RETURN] = pnl / (p.size * p.entry_px / leverage)  # on the margin, before the fee
    trades[k, t.REASON] = reason
