"""Strategies: one interface (`base.Strategy`) for backtest, optimisation and live trading."""

from xray_core.errors import ConfigError
from xray_core.strategies.base import Mode, ParamRange, Strategy, StrategyParams
from xray_core.strategies.model import MarketContext, ModelStrategy, Predictor
from xray_core.strategies.rules import BbBreakout, MacdTrend, RsiReversion, SmaCross

STRATEGIES: dict[str, Strategy] = {
    strategy.name: strategy
    for strategy in (SmaCross(), RsiReversion(), BbBreakout(), MacdTrend(), ModelStrategy())
}
RULE_STRATEGIES = ("sma_cross", "rsi_reversion", "bb_breakout", "macd_trend")


def get_strategy(name: str) -> Strategy:
    try:
        return STRATEGIES[name]
    except KeyError:
        raise ConfigError(f"unknown strategy {name!r}", f"use one of: {', '.join(STRATEGIES)}") from None


__all__ = [
    "RULE_STRATEGIES",
    "STRATEGIES",
    "MarketContext",
    "Mode",
    "ModelStrategy",
    "ParamRange",
    "Predictor",
    "Strategy",
    "StrategyParams",
    "get_strategy",
]
