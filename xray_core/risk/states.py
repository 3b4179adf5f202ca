"""Measuring what risk sizing adapts to: a symbol's realised volatility, and the drawdown, win rate
and payoff of the strategy it trades, over a recent window."""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from xray_core.backtest import BacktestConfig, run_backtest
from xray_core.backtest.metrics import Calendar
from xray_core.candles.bars import Bars
from xray_core.risk.profiles import MarketState
from xray_core.strategies import Mode, get_strategy


def market_state(
    symbol: str,
    bars: Bars,
    strategy_name: str,
    params: dict[str, object],
    config: BacktestConfig,
    recent_bars: int = 720,
) -> MarketState:
    """The symbol's state over its last `recent_bars` bars (default: 30 days of hourly bars); the
    strategy is run on the whole history so its indicators are warm, and judged on the recent part."""
    strategy = get_strategy(strategy_name)
    positions = strategy.positions(bars, strategy.params(params), Mode(config.mode))
    result = run_backtest(
        bars.open, bars.high, bars.low, bars.close, bars.timestamp, positions, config, with_trades=True
    )
    start = max(0, len(bars) - recent_bars)
    equity = result.equity[start:]
    drawdown = float(1.0 - equity[-1] / equity.max()) if len(equity) and equity.max() > 0 else 0.0
    trades = result.trades
    recent = (
        trades.filter(pl.col("exit_time").dt.epoch("ms") >= int(bars.timestamp[start]))
        if trades is not None
        else None
    )
    pnl = recent["pnl"].to_numpy() if recent is not None and recent.height else np.empty(0)
    wins, losses = pnl[pnl > 0], -pnl[pnl < 0]
    win_rate = float(len(wins) / len(pnl)) if len(pnl) else 0.0
    payoff = (
        float(wins.mean() / losses.mean()) if len(wins) and len(losses) else (math.inf if len(wins) else 0.0)
    )
    returns = np.diff(np.log(bars.close[start:]))
    bars_per_year = Calendar.from_timestamps(bars.timestamp).bars_per_year
    vol = float(returns.std(ddof=1) * math.sqrt(bars_per_year)) if len(returns) > 2 else math.nan
    return MarketState(symbol, vol, drawdown, win_rate, payoff)
