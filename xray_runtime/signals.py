"""One decision per symbol per bar, shared by every user.

The strategy code is the very code the backtests and the optimiser ran (`Strategy.positions`), on the
same closed bars. Spot trading is long-only: a target of +1 means hold the symbol, 0 means hold none.
A user *enters* only on the bar where the target turns from 0 to 1 — a user who joins mid-trend waits
for the next entry, as the backtest would have — and *exits* whenever the target is 0 while holding.
Both are functions of the bars alone, so a runtime restarted after a crash re-derives exactly the same
decisions for the same bar (and so the same client order ids).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import polars as pl

from xray_core.errors import XrayError
from xray_core.strategies import MarketContext, Mode, ModelStrategy
from xray_core.strategies.model import candles_of
from xray_core.trading.orders import Lineage
from xray_runtime.artefacts import Promoted, SymbolPlan
from xray_runtime.market import SymbolBars

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Signal:
    symbol: str
    bar_ms: int  # open time of the closed bar decided on
    close: float
    target: int  # 1 hold, 0 flat
    entry: bool  # the target turned 0 -> 1 on this bar
    lineage: Lineage


@dataclass(frozen=True)
class Skipped:
    symbol: str
    reason: str


def compute_signals(promoted: Promoted, data: dict[str, SymbolBars], model_kind: str,
                    benchmark: str = "BTC/USDT", sentiment: pl.DataFrame | None = None,
                    ) -> tuple[dict[str, Signal], list[Skipped]]:
    """Signals of every promoted symbol with fresh data; the others with the reason they were skipped.
    One symbol's failure never stops the others. `sentiment` (the lake's news_sentiment rows) reaches
    the models that were trained with it (the bundle says which), no other."""
    signals: dict[str, Signal] = {}
    skipped: list[Skipped] = []
    for symbol, plan in promoted.plans.items():
        bars = data.get(symbol)
        if bars is None or not bars.fresh:
            skipped.append(Skipped(symbol, bars.reason if bars else "no candles fetched"))
            continue
        try:
            signals[symbol] = _decide(promoted, plan, bars, data.get(benchmark), model_kind, sentiment)
        except (XrayError, ValueError, IndexError) as exc:
            skipped.append(Skipped(symbol, f"strategy failed: {exc}"))
            log.warning("signal failed",
                        extra={"event": "signal_failed", "symbol": symbol, "reason": str(exc)})
    return signals, skipped


def _decide(promoted: Promoted, plan: SymbolPlan, bars: SymbolBars, benchmark: SymbolBars | None,
            model_kind: str, sentiment: pl.DataFrame | None) -> Signal:
    strategy = plan.strategy
    model_version = None
    if isinstance(strategy, ModelStrategy):
        kind = plan.model_kind or model_kind
        trained_with_news = bool(promoted.models.get(kind, {}).get("sentiment"))
        bench = candles_of(benchmark.bars) if benchmark and benchmark.symbol != plan.symbol else None
        context = MarketContext(plan.symbol, bench, sentiment if trained_with_news else None)
        strategy = strategy.bind(promoted.predictors[kind], context)
        model_version = promoted.model_version(kind)
    positions = strategy.positions(bars.bars, plan.params, Mode.LONG_ONLY)
    target = int(positions[-1] > 0)
    previous = int(positions[-2] > 0) if len(positions) > 1 else 0
    bar_ms = int(bars.bars.timestamp[-1])
    lineage = Lineage(
        bundle_version=promoted.version, strategy=plan.strategy.name, params=plan.params_json,
        model_version=model_version, data_version=f"{plan.data_version}@{bar_ms}",
    )
    return Signal(plan.symbol, bar_ms, float(bars.bars.close[-1]), target, target == 1 and previous == 0,
                  lineage)
