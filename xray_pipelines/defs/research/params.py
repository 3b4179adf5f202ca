"""`strategy_params`: optimised parameters per cluster of kept symbols (Optuna NSGA-II, walk-forward)."""

import json

import dagster as dg
import polars as pl

from xray_core.candles.bars import Bars
from xray_core.errors import XrayError
from xray_core.optimize import FoldConfig, OptimizeConfig, optimize, pareto_plot_png
from xray_core.research.groups import group_symbols, study_name
from xray_core.research.store import LakeTable
from xray_pipelines.automation import nightly_or_missing
from xray_pipelines.defs.research.backtests import backtest_config, filtered_symbols
from xray_pipelines.defs.research.correlation import market_correlation
from xray_pipelines.groups import Group
from xray_pipelines.metadata import image, table
from xray_pipelines.resources import MarketScope, ResearchResource


@dg.asset(
    group_name=Group.RESEARCH,
    kinds={"optuna", "duckdb"},
    deps=[filtered_symbols, market_correlation],
    automation_condition=nightly_or_missing("0 3 * * *"),
)
def strategy_params(
    context: dg.AssetExecutionContext, market: MarketScope, research: ResearchResource
) -> dg.MaterializeResult:
    """For each cluster of kept symbols, the parameters of its members' favourite strategy found by a
    genetic multi-objective search (NSGA-II: maximise out-of-sample return, minimise drawdown) over
    walk-forward folds. Studies live in the instance's database (SQLite beside DAGSTER_HOME by default,
    Postgres via XRAY_RESEARCH_OPTUNA_STORAGE) and resume if interrupted. A group whose study fails is
    reported with its reason and keeps default parameters; the others continue."""
    settings = research.settings()
    series = {s.symbol: s for s in market.good_series()}
    groups = group_symbols(
        market.read(LakeTable.FILTERED_SYMBOLS), market.read(LakeTable.CORRELATION_CLUSTERS)
    )
    config = OptimizeConfig(
        n_trials=settings.optimize_trials,
        seed=settings.seed,
        population_size=20,
        folds=FoldConfig(n_folds=settings.optimize_folds, min_train_bars=500, embargo_bars=24),
    )
    rows, per_symbol, plots = [], [], {}
    for group in groups:
        symbols = [s for s in group.symbols if s in series]
        name = study_name(
            market.exchange_id, market.timeframe, group, {s: series[s].data_version for s in symbols}
        )
        row: dict[str, object] = {
            "group": group.name,
            "symbols": ", ".join(symbols),
            "strategy": group.strategy,
            "study": name,
        }
        try:
            result = optimize(
                group.strategy,
                {s: Bars.from_frame(series[s].candles) for s in symbols},
                config,
                backtest_config(research),
                research.optuna_url(),
                name,
            )
        except XrayError as exc:
            context.log.warning(f"{group.name}: study failed: {exc}")
            rows.append(
                row
                | {
                    "params": "{}",
                    "reason": f"study failed: {exc}",
                    "oos_return": None,
                    "oos_drawdown": None,
                    "oos_trades": None,
                    "trials": 0,
                }
            )
            continue
        summary = result.best_summary
        rows.append(
            row
            | {
                "params": json.dumps(result.best_params),
                "reason": result.best_reason,
                "oos_return": summary["mean_return"],
                "oos_drawdown": summary["mean_drawdown"],
                "oos_trades": summary["n_trades"],
                "trials": result.trials.height,
            }
        )
        per_symbol += [
            {
                "symbol": s,
                "group": group.name,
                "strategy": group.strategy,
                "params": json.dumps(result.best_params),
            }
            for s in symbols
        ]
        plots[f"pareto_{group.name}"] = image(pareto_plot_png(result), f"Pareto front {group.name}")
    frame = pl.DataFrame(rows, schema=_SCHEMA, orient="row") if rows else pl.DataFrame(schema=_SCHEMA)
    market.write(LakeTable.STRATEGY_PARAMS, frame)
    market.write(LakeTable.SYMBOL_PARAMS, pl.DataFrame(per_symbol, schema=_SYMBOL_SCHEMA))
    return dg.MaterializeResult(
        metadata={
            "groups": len(groups),
            "optimised_groups": len(plots),
            "params": table(frame),
            **plots,
        }
    )


_SCHEMA = {
    "group": pl.String,
    "symbols": pl.String,
    "strategy": pl.String,
    "study": pl.String,
    "params": pl.String,
    "reason": pl.String,
    "oos_return": pl.Float64,
    "oos_drawdown": pl.Float64,
    "oos_trades": pl.Int64,
    "trials": pl.Int64,
}
_SYMBOL_SCHEMA = {"symbol": pl.String, "group": pl.String, "strategy": pl.String, "params": pl.String}
