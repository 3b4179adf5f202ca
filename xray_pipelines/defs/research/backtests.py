"""`backtests` and `filtered_symbols`: every strategy on every good symbol, then the keep/drop list."""

import dagster as dg
import polars as pl

from xray_core.backtest import BacktestConfig
from xray_core.candles.bars import Bars
from xray_core.research.backtests import BacktestRun, backtest_all, best_per_symbol, equity_curve
from xray_core.research.filtering import Thresholds, filter_symbols
from xray_core.research.plots import equity_curves_png
from xray_core.research.store import LakeTable
from xray_core.research.versions import backtest_code_version
from xray_core.strategies import RULE_STRATEGIES, STRATEGIES
from xray_pipelines.defs.market_data.candles import candles
from xray_pipelines.defs.market_data.markets import markets
from xray_pipelines.defs.market_data.quality import candle_quality
from xray_pipelines.groups import Group
from xray_pipelines.metadata import image, markdown, table
from xray_pipelines.resources import MarketScope, ResearchResource


def backtest_config(research: ResearchResource) -> BacktestConfig:
    s = research.settings()
    return BacktestConfig(fee=s.fee, slippage=s.slippage, cash=s.cash, mode=s.mode)


@dg.asset(
    group_name=Group.RESEARCH,
    automation_condition=dg.AutomationCondition.eager(),
    kinds={"numba", "duckdb"},
    deps=[candles, candle_quality],
    code_version=backtest_code_version(),
)
def backtests(
    context: dg.AssetExecutionContext, market: MarketScope, research: ResearchResource
) -> dg.MaterializeResult:
    """Every rule strategy with its default parameters on every good symbol. A result is reused while
    its cache key (candle fingerprint, strategy, parameters, costs, code version) is unchanged, so only
    new data or new code is backtested again. A symbol that cannot be backtested gets its error row."""
    runs = [BacktestRun(s.symbol, Bars.from_frame(s.candles), s.data_version) for s in market.good_series()]
    config = backtest_config(research)
    strategies = [STRATEGIES[name] for name in RULE_STRATEGIES]
    summary = backtest_all(runs, strategies, config, market.read(LakeTable.BACKTESTS))
    market.write(LakeTable.BACKTESTS, summary.results)
    context.log.info(f"{summary.computed} backtests computed, {summary.reused} reused from the cache")

    best = best_per_symbol(summary.results)
    top = sorted(best.values(), key=lambda r: -float(r["sharpe"]))[:6]  # type: ignore[arg-type]
    bars = {run.symbol: run.bars for run in runs}
    curves = {
        f"{r['symbol']} {r['strategy']}": equity_curve(
            bars[str(r["symbol"])], STRATEGIES[str(r["strategy"])], str(r["params"]), config
        )
        for r in top
    }
    shown = summary.results.select(
        "symbol", "strategy", "total_return", "sharpe", "max_drawdown", "n_trades", "error"
    ).sort("sharpe", descending=True, nulls_last=True)
    return dg.MaterializeResult(
        metadata={
            "symbols": len(runs),
            "computed": summary.computed,
            "reused_from_cache": summary.reused,
            "errors": summary.results.filter(pl.col("error").is_not_null()).height,
            "code_version": backtest_code_version(),
            "results": table(shown),
            "equity_curves": image(
                equity_curves_png(curves, "best strategy per symbol (top 6 by Sharpe)", config.cash),
                "equity curves",
            ),
        }
    )


@dg.asset(
    group_name=Group.RESEARCH,
    automation_condition=dg.AutomationCondition.eager(),
    kinds={"duckdb"},
    deps=[backtests, markets, candle_quality],
)
def filtered_symbols(market: MarketScope, research: ResearchResource) -> dg.MaterializeResult:
    """Every market of the universe, kept or dropped with the reason: not in the universe, data
    quality, liquidity, a failed backtest, or no strategy clearing the thresholds on return, Sharpe,
    drawdown and trade count. One symbol's problem never fails the asset (the TGTUSDT lesson)."""
    store = market.lake.candles()
    decided = filter_symbols(
        store.markets(market.exchange_id),
        store.quality(market.exchange_id, market.timeframe),
        market.read(LakeTable.BACKTESTS),
        Thresholds.from_settings(research.settings()),
    )
    market.write(LakeTable.FILTERED_SYMBOLS, decided)
    kept = decided.filter(pl.col("kept"))
    return dg.MaterializeResult(
        metadata={
            "kept": kept.height,
            "dropped": decided.height - kept.height,
            "kept_symbols": markdown(
                kept.select("symbol", "best_strategy", "total_return", "sharpe", "max_drawdown", "n_trades")
            ),
            "dropped_symbols": markdown(decided.filter(~pl.col("kept")).select("symbol", "reason")),
            "all": table(decided),
        }
    )
