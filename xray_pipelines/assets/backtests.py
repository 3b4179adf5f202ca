"""`backtests` and `filtered_symbols`: every strategy on every good symbol, then the keep/drop list."""

import dagster as dg
import polars as pl

from xray_core.backtest import BacktestConfig
from xray_core.candles.bars import Bars
from xray_core.research.backtests import BacktestRun, backtest_all, best_per_symbol, equity_curve
from xray_core.research.filtering import Thresholds, filter_symbols
from xray_core.research.inputs import good_series
from xray_core.research.plots import equity_curves_png
from xray_core.research.versions import backtest_code_version
from xray_core.strategies import RULE_STRATEGIES, STRATEGIES
from xray_pipelines.assets.candles import candles
from xray_pipelines.assets.markets import markets
from xray_pipelines.assets.quality import candle_quality
from xray_pipelines.metadata import image, markdown, table
from xray_pipelines.resources import ExchangeResource, LakeResource, MarketDataResource, ResearchResource

BACKTEST_TABLE = "backtest_results"
FILTER_TABLE = "filtered_symbols"


def backtest_config(research: ResearchResource) -> BacktestConfig:
    s = research.settings()
    return BacktestConfig(fee=s.fee, slippage=s.slippage, cash=s.cash, mode=s.mode)


@dg.asset(
    group_name="research",
    automation_condition=dg.AutomationCondition.eager(),
    kinds={"numba", "duckdb"},
    deps=[candles, candle_quality],
    code_version=backtest_code_version(),
)
def backtests(
    context: dg.AssetExecutionContext,
    exchange: ExchangeResource,
    lake: LakeResource,
    market_data: MarketDataResource,
    research: ResearchResource,
) -> dg.MaterializeResult:
    """Every rule strategy with its default parameters on every good symbol. A result is reused while
    its cache key (candle fingerprint, strategy, parameters, costs, code version) is unchanged, so only
    new data or new code is backtested again. A symbol that cannot be backtested gets its error row."""
    scope = {"exchange": exchange.exchange_id, "timeframe": market_data.timeframe}
    series = good_series(
        lake.candles(), exchange.exchange_id, market_data.timeframe, market_data.history_days
    )
    runs = [BacktestRun(s.symbol, Bars.from_frame(s.candles), s.data_version) for s in series]
    config = backtest_config(research)
    store = lake.research()
    summary = backtest_all(
        runs, [STRATEGIES[name] for name in RULE_STRATEGIES], config, store.read(BACKTEST_TABLE, scope)
    )
    store.write(BACKTEST_TABLE, summary.results, scope)
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
    group_name="research",
    automation_condition=dg.AutomationCondition.eager(),
    kinds={"duckdb"},
    deps=[backtests, markets, candle_quality],
)
def filtered_symbols(
    exchange: ExchangeResource,
    lake: LakeResource,
    market_data: MarketDataResource,
    research: ResearchResource,
) -> dg.MaterializeResult:
    """Every market of the universe, kept or dropped with the reason: not in the universe, data
    quality, liquidity, a failed backtest, or no strategy clearing the thresholds on return, Sharpe,
    drawdown and trade count. One symbol's problem never fails the asset (the TGTUSDT lesson)."""
    scope = {"exchange": exchange.exchange_id, "timeframe": market_data.timeframe}
    candle_store, store = lake.candles(), lake.research()
    decided = filter_symbols(
        candle_store.markets(exchange.exchange_id),
        candle_store.quality(exchange.exchange_id, market_data.timeframe),
        store.read(BACKTEST_TABLE, scope),
        Thresholds.from_settings(research.settings()),
    )
    store.write(FILTER_TABLE, decided, scope)
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
