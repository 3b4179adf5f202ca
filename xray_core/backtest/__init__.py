"""Backtest engine: target positions in, fills at the next open, metrics out — equal to vectorbt.

Semantics
---------
* Signals. A strategy emits, after bar t's close, a target position for bar t: +1 long, 0 flat,
  -1 short (int8). The order that moves the position to the target fills at bar t+1's **open**; nothing
  at or before bar t depends on bars after t. A signal on the last bar never fills. The engine trades
  only when the target *changes*: without stops the position is simply the target shifted by one bar;
  after a stop-loss, take-profit or liquidation exit it stays flat until the target changes again.
* Modes. `long_only` treats -1 as flat. `long_short` goes short on -1; a reversal closes the position
  and opens the opposite one at the same open (two trades, each paying its own fee).
* Sizing and costs (fee f, slippage s, size_fraction k, leverage L). Every entry starts from flat, so
  the margin committed is M = k x cash (= k x equity). A buy fills at open x (1 + s) and buys
  size = (L x M / (1 + f)) / (open x (1 + s)), paying fee L x M - L x M / (1 + f) (all-in at k = L = 1:
  size = cash / (open (1 + s)(1 + f))). A short sale fills at open x (1 - s) with
  size = L x M / (open x (1 - s) x (1 + f)) — vectorbt's `direction='both'` convention — and receives
  size x price x (1 - f). Closing a long receives size x open x (1 - s) x (1 - f); covering a short pays
  size x open x (1 + s) x (1 + f). Equity = cash + position x close (a short's position is negative).
* End of data. A position still open after the last bar is valued at the last close, without exit
  fee or slippage (vectorbt's valuation of an open position); it is reported as a trade with exit
  reason "end" and counts in n_trades, like vectorbt's open trades.
* Stop-loss / take-profit (`sl_atr`, `tp_atr`, in ATRs; the ATR array is passed in and its value at the
  signal bar t is used). For an entry at bar t+1's open O: long SL = O - sl_atr x ATR_t,
  TP = O + tp_atr x ATR_t (mirrored for shorts); a NaN ATR leaves that trade without stops. They are
  checked from bar t+2 on, after that bar's signal order (so an exit or reversal signalled for that
  open takes precedence): if the bar opens through a level the exit fills at the open, otherwise when
  low/high reaches it at the level itself; with slippage and fee like any exit. When SL and TP are both
  within one bar's range, the stop-loss is assumed first (the pessimistic choice). vectorbt differs in
  one corner: it checks stops before the bar's signal order and lets a stop override that signal.
* Leverage and liquidation (isolated margin). Notional = L x M; the long's borrowed (L - 1) x M, or
  the short's sale proceeds, stay with the position; the rest of the account (cash - M) is untouched.
  The position's own equity is M plus its unrealised pnl after the entry fee; it is liquidated when that
  falls to `maintenance_margin` x current notional: long at price debt / (size x (1 - mm)), short at
  (M + net sale proceeds) / (size x (1 + mm)). Liquidation is checked on every bar in which the
  position is held, the entry bar included, against the open (a gap through the level) and low/high;
  it exits at the liquidation price and the trade loses exactly its margin (pnl = -M: the maintenance
  remainder goes to the venue, a gap beyond the level costs nothing more). An adverse stop nearer than
  the liquidation price triggers first. An unlevered long can never be liquidated; an unlevered short
  is liquidated when the price roughly doubles.
* Metrics: see `xray_core.backtest.metrics` (per-bar returns, Sharpe/Sortino annualised with bars per
  365-day year, CAGR over the timestamps' span, drawdown on close-to-close equity, ...).

Equality with vectorbt 1.2.0 (tests/core/backtest/test_backtest_vectorbt.py, on every real candle
file): `vbt.Portfolio.from_signals(close=close, price=open, fees=f, slippage=s, init_cash=cash,
entries/exits = the target shifted by one bar)` — `direction='longonly'` for long_only; long and short
entries/exits for long_short (vectorbt's default `upon_opposite_entry='reversereduce'` is the
reversal above); `size=k, size_type='percent'` for a size fraction k — gives the same final equity
(1e-9 relative; ~1e-13 in practice), trade count, trade pnl, Sharpe, Sortino, max drawdown, exposure
and CAGR. `close=close` (not `close=open`) is what values a final open position at the last close.
ATR stops match vectorbt's `sl_stop`/`tp_stop` = multiple x ATR_t / O with `stop_entry_price='price'`,
`stop_exit_price='stopmarket'` and edge signals, except in the corner noted above.

The fused grid (`sma_cross_grid`) trades SMA(fast) vs SMA(slow) on the close: long while above,
short while below in long_short mode, flat on a tie and during the warm-up; its rows are identical to
`run_backtest` on `sma_cross_positions` (same moving average, bit for bit vectorbt's `MA`).

Public API
----------
BacktestConfig, run_backtest, run_many, sma_cross_grid, sma_cross_positions, Prices, BacktestResult,
RunsResult, Metrics, METRIC_NAMES.
"""

from xray_core.backtest.config import BacktestConfig, Mode
from xray_core.backtest.engine import MIN_BARS, BacktestResult, Prices, RunsResult, run_backtest, run_many
from xray_core.backtest.grid import sma_cross_grid, sma_cross_positions
from xray_core.backtest.metrics import METRIC_NAMES, Metrics

__all__ = [
    "METRIC_NAMES",
    "MIN_BARS",
    "BacktestConfig",
    "BacktestResult",
    "Metrics",
    "Mode",
    "Prices",
    "RunsResult",
    "run_backtest",
    "run_many",
    "sma_cross_grid",
    "sma_cross_positions",
]
