"""Run metrics: computed online by the kernels, finished here, and shaped into Python values.

The kernels never keep the equity curve of a grid run; they accumulate a handful of sums while they
walk the bars (sum of returns, of squared returns, of squared losses, the running peak and the worst
drawdown) and `finish` turns those into the metrics below. The generic engine and the fused grid kernel
call the same code, so they agree to the last bit.

Conventions (the same as vectorbt's where vectorbt defines one):

* returns: one per bar, r_i = (equity_i - equity_{i-1}) / equity_{i-1} with equity_{-1} = initial cash
  (so r_0 = 0: nothing can trade at bar 0); equity is valued at each bar's close. Once equity is zero
  (a fully liquidated account) further returns are zero.
* sharpe = mean(r) / std(r, ddof=1) * sqrt(bars_per_year), risk-free rate 0.
* sortino = mean(r) * bars_per_year / (sqrt(mean(min(r, 0)^2)) * sqrt(bars_per_year)).
* bars_per_year = 365 days / bar length; bar length = the median spacing of the timestamps.
* cagr = (final / cash) ** (1 / years) - 1 with years = (last - first timestamp + one bar) / 365 days;
  -1 when the account is wiped out.
* max_drawdown: largest fall of the close-to-close equity curve from its running peak, a positive
  fraction. calmar = cagr / max_drawdown.
* win_rate, profit_factor: over all trades, a position still open at the end included (valued at the
  last close). profit_factor = gross profit / gross loss.
* exposure: fraction of bars that end with a position open.
* A ratio with a zero denominator is +inf or -inf following its numerator's sign, and NaN when the
  numerator is zero too (e.g. the Sharpe ratio of a run that never traded, the win rate without trades).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from numba import njit

YEAR_MS = 365 * 86_400_000  # vectorbt's default year_freq ("365 days"): crypto trades every day

METRIC_NAMES: tuple[str, ...] = (
    "final_equity",
    "total_return",
    "cagr",
    "sharpe",
    "sortino",
    "max_drawdown",
    "calmar",
    "win_rate",
    "profit_factor",
    "exposure",
    "n_trades",
)
N_METRICS = len(METRIC_NAMES)
(
    FINAL_EQUITY,
    TOTAL_RETURN,
    CAGR,
    SHARPE,
    SORTINO,
    MAX_DRAWDOWN,
    CALMAR,
    WIN_RATE,
    PROFIT_FACTOR,
    EXPOSURE,
    N_TRADES,
) = range(N_METRICS)


@dataclass(frozen=True, slots=True)
class Metrics:
    """The metrics of one run; see the module docstring for the exact definitions."""

    final_equity: float
    total_return: float
    cagr: float
    sharpe: float
    sortino: float
    max_drawdown: float
    calmar: float
    win_rate: float
    profit_factor: float
    exposure: float
    n_trades: int

    @classmethod
    def from_row(cls, row: np.ndarray) -> Metrics:
        values: list[Any] = [float(v) for v in row]  # floats but one: the trade count, an int
        values[N_TRADES] = int(values[N_TRADES])
        return cls(*values)


@dataclass(frozen=True, slots=True)
class Calendar:
    """What the metrics need to know about time: bars per year (for annualising) and the span in years."""

    bars_per_year: float
    years: float

    @classmethod
    def from_timestamps(cls, timestamps_ms: np.ndarray) -> Calendar:
        steps = np.diff(timestamps_ms)
        bar_ms = float(steps[0] if (steps == steps[0]).all() else np.median(steps))
        span_ms = float(timestamps_ms[-1] - timestamps_ms[0]) + bar_ms
        return cls(bars_per_year=YEAR_MS / bar_ms, years=span_ms / YEAR_MS)


@njit(cache=True, inline="always")
def ratio(num: float, den: float) -> float:
    """num / den, with the module's convention for a zero denominator."""
    if den > 0.0:
        return num / den
    if num > 0.0:
        return math.inf
    if num < 0.0:
        return -math.inf
    return math.nan


class CurveStats(NamedTuple):
    """What the kernels keep of the equity curve while they walk it."""

    sum_r: float
    sum_r2: float
    sum_down2: float  # of min(r, 0)^2
    peak: float
    max_dd: float
    exposed: int  # bars that end with a position open


class TradeStats(NamedTuple):
    n_trades: int
    wins: int
    gross_win: float
    gross_loss: float  # positive


@njit(cache=True, inline="always")
def start_curve(cash: float) -> CurveStats:
    return CurveStats(0.0, 0.0, 0.0, cash, 0.0, 0)


@njit(cache=True, inline="always")
def no_trades() -> TradeStats:
    return TradeStats(0, 0, 0.0, 0.0)


@njit(cache=True, inline="always")
def bar_return(eq: float, eq_prev: float) -> float:
    if eq == eq_prev or eq_prev <= 0.0:
        return 0.0
    return (eq - eq_prev) / eq_prev


@njit(cache=True, inline="always")
def drawdown(peak: float, max_dd: float, eq: float) -> tuple[float, float]:
    """The running peak and worst drawdown after a close at equity `eq`."""
    peak = max(peak, eq)  # branch-free: new peaks come at random in a rally
    if eq < peak * (1.0 - max_dd):  # rare: a deeper drawdown than any so far
        max_dd = 1.0 - eq / peak
    return peak, max_dd


@njit(cache=True, inline="always")
def fold(curve: CurveStats, r: float, eq: float, held: int) -> CurveStats:
    """Fold one bar's return, closing equity and exposure (0 or 1) into the curve's stats (adding a
    zero return changes nothing, so flat bars may be skipped)."""
    down = r if r < 0.0 else 0.0  # branch-free: the sign of r is a coin flip
    peak, max_dd = drawdown(curve.peak, curve.max_dd, eq)
    return CurveStats(
        curve.sum_r + r,
        curve.sum_r2 + r * r,
        curve.sum_down2 + down * down,
        peak,
        max_dd,
        curve.exposed + held,
    )


@njit(cache=True, inline="always")
def count_trade(stats: TradeStats, pnl: float) -> TradeStats:
    wins = stats.wins
    gross_win = stats.gross_win
    gross_loss = stats.gross_loss
    if pnl > 0.0:
        wins += 1
        gross_win += pnl
    elif pnl < 0.0:
        gross_loss -= pnl
    return TradeStats(stats.n_trades + 1, wins, gross_win, gross_loss)


@njit(cache=True, inline="always")
def finish(
    out: np.ndarray,
    final_equity: float,
    cash: float,
    n_bars: int,
    curve: CurveStats,
    trades: TradeStats,
    bars_per_year: float,
    years: float,
) -> None:
    """Write the metrics of one run into `out` (length N_METRICS) from the kernel's accumulators."""
    n = float(n_bars)
    mean = curve.sum_r / n
    var = (curve.sum_r2 - curve.sum_r * mean) / (n - 1.0) if n_bars > 1 else 0.0
    std = math.sqrt(var) if var > 0.0 else 0.0
    downside = math.sqrt(curve.sum_down2 / n) * math.sqrt(bars_per_year)
    growth = final_equity / cash
    cagr = growth ** (1.0 / years) - 1.0 if growth > 0.0 else -1.0
    out[FINAL_EQUITY] = final_equity
    out[TOTAL_RETURN] = growth - 1.0
    out[CAGR] = cagr
    out[SHARPE] = ratio(mean, std) * math.sqrt(bars_per_year)
    out[SORTINO] = ratio(mean * bars_per_year, downside)
    out[MAX_DRAWDOWN] = curve.max_dd
    out[CALMAR] = ratio(cagr, curve.max_dd)
    out[WIN_RATE] = ratio(float(trades.wins), float(trades.n_trades))
    out[PROFIT_FACTOR] = ratio(trades.gross_win, trades.gross_loss)
    out[EXPOSURE] = curve.exposed / n
    out[N_TRADES] = trades.n_trades
