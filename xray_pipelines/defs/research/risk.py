"""`risk_profiles`: how hard each profile may trade each kept symbol; the trading runtime reads it."""

import json

import dagster as dg

from xray_core.backtest import BacktestConfig
from xray_core.candles.bars import Bars
from xray_core.errors import XrayError
from xray_core.research.store import LakeTable
from xray_core.risk.profiles import DEFAULT_PROFILES, size_all
from xray_core.risk.states import market_state
from xray_pipelines.defs.research.backtests import filtered_symbols
from xray_pipelines.defs.research.params import strategy_params
from xray_pipelines.groups import Group
from xray_pipelines.metadata import table
from xray_pipelines.resources import MarketScope


@dg.asset(
    group_name=Group.RESEARCH,
    kinds={"duckdb"},
    deps=[strategy_params, filtered_symbols],
    automation_condition=dg.AutomationCondition.eager(),
)
def risk_profiles(context: dg.AssetExecutionContext, market: MarketScope) -> dg.MaterializeResult:
    """Per profile (conservative, balanced, aggressive) and kept symbol: leverage by volatility
    targeting, trade percentage by capped fractional Kelly from the strategy's recent trades, a
    drawdown brake and a margin multiplier — each within the profile's bounds. The runtime sizes every
    user's orders from the row of the user's profile."""
    chosen = market.read(LakeTable.SYMBOL_PARAMS)
    bars = {s.symbol: Bars.from_frame(s.candles) for s in market.good_series()}
    states = []
    for row in chosen.iter_rows(named=True) if chosen.height else []:
        try:
            states.append(
                market_state(
                    row["symbol"],
                    bars[row["symbol"]],
                    row["strategy"],
                    json.loads(row["params"]),
                    BacktestConfig(),
                )
            )
        except (KeyError, XrayError) as exc:  # one symbol's data never stops the others
            context.log.warning(f"{row['symbol']}: no risk state ({exc})")
    frame = size_all(DEFAULT_PROFILES, states)
    market.write(LakeTable.RISK_PROFILES, frame)
    return dg.MaterializeResult(
        metadata={"symbols": len(states), "profiles": len(DEFAULT_PROFILES), "sizing": table(frame)}
    )
