"""`risk_profiles` and `promoted_bundle`: what the trading runtime reads."""

import json

import dagster as dg
import polars as pl

from xray_core.backtest import BacktestConfig
from xray_core.bundle import Bundle, publish
from xray_core.candles.bars import Bars
from xray_core.candles.store import SeriesKey
from xray_core.errors import XrayError
from xray_core.research.inputs import good_series
from xray_core.research.versions import backtest_code_version, code_version
from xray_core.risk.profiles import DEFAULT_PROFILES, size_all
from xray_core.risk.states import market_state
from xray_pipelines.assets.backtests import FILTER_TABLE, filtered_symbols
from xray_pipelines.assets.params import SYMBOL_PARAMS_TABLE, strategy_params
from xray_pipelines.assets.promotion import model_promotion
from xray_pipelines.assets.training import LEARNING_CODE
from xray_pipelines.metadata import table
from xray_pipelines.mlops.registry import CHAMPION, MODEL_NAMES, by_alias
from xray_pipelines.resources import ExchangeResource, LakeResource, MarketDataResource, ModelsResource

RISK_TABLE = "risk_profiles"


@dg.asset(
    group_name="handoff",
    kinds={"duckdb"},
    deps=[strategy_params, filtered_symbols],
    automation_condition=dg.AutomationCondition.eager(),
)
def risk_profiles(
    context: dg.AssetExecutionContext,
    exchange: ExchangeResource,
    lake: LakeResource,
    market_data: MarketDataResource,
) -> dg.MaterializeResult:
    """Per profile (conservative, balanced, aggressive) and kept symbol: leverage by volatility
    targeting, trade percentage by capped fractional Kelly from the strategy's recent trades, a
    drawdown brake and a margin multiplier — each within the profile's bounds. The runtime sizes every
    user's orders from the row of the user's profile."""
    scope = {"exchange": exchange.exchange_id, "timeframe": market_data.timeframe}
    chosen = lake.research().read(SYMBOL_PARAMS_TABLE, scope)
    bars = {
        s.symbol: Bars.from_frame(s.candles)
        for s in good_series(
            lake.candles(), exchange.exchange_id, market_data.timeframe, market_data.history_days
        )
    }
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
    lake.research().write(RISK_TABLE, frame, scope)
    return dg.MaterializeResult(
        metadata={"symbols": len(states), "profiles": len(DEFAULT_PROFILES), "sizing": table(frame)}
    )


@dg.asset(group_name="handoff", kinds={"json"}, deps=[risk_profiles, model_promotion, strategy_params])
def promoted_bundle(
    context: dg.AssetExecutionContext,
    exchange: ExchangeResource,
    lake: LakeResource,
    market_data: MarketDataResource,
    models: ModelsResource,
) -> dg.MaterializeResult:
    """The manifest the runtime trades from: symbols with their strategy and parameters, risk sizing
    per profile, champion models by alias, and the versions behind them. Published atomically; an
    unchanged bundle keeps its version."""
    scope = {"exchange": exchange.exchange_id, "timeframe": market_data.timeframe}
    research = lake.research()
    kept = research.read(FILTER_TABLE, scope)
    kept_symbols = set(kept.filter(pl.col("kept"))["symbol"]) if kept.height else set()
    chosen = research.read(SYMBOL_PARAMS_TABLE, scope)
    symbols = [
        {
            "symbol": r["symbol"],
            "strategy": r["strategy"],
            "params": json.loads(r["params"]),
            "group": r["group"],
        }
        for r in chosen.iter_rows(named=True)
        if r["symbol"] in kept_symbols
    ]
    risk = research.read(RISK_TABLE, scope)
    profiles: dict[str, dict[str, dict[str, float]]] = {}
    for r in risk.iter_rows(named=True) if risk.height else []:
        profiles.setdefault(r["profile"], {})[r["symbol"]] = {
            k: r[k] for k in ("leverage", "trade_percentage", "margin_multiplier")
        }
    client = models.tracking().client()
    champions = {}
    for kind, name in MODEL_NAMES.items():
        version = by_alias(client, name, CHAMPION)
        if version is not None:
            champions[kind] = {
                "name": name,
                "uri": f"models:/{name}@{CHAMPION}",
                "version": int(version.version),
            }
    candles = lake.candles()
    versions = {
        s["symbol"]: candles.fingerprint(SeriesKey(exchange.exchange_id, s["symbol"], market_data.timeframe))
        for s in symbols
    }
    bundle = Bundle(
        exchange=exchange.exchange_id,
        timeframe=market_data.timeframe,
        symbols=symbols,
        risk_profiles=profiles,
        models=champions,
        feature_version=code_version(*LEARNING_CODE),
        code_version=backtest_code_version(),
        data_versions=versions,
        dagster_run_id=context.run.run_id,
    )
    directory = lake.research().lake_dir.parent / "bundles"
    path, changed = publish(bundle, directory)
    return dg.MaterializeResult(
        data_version=dg.DataVersion(bundle.version),
        metadata={
            "version": bundle.version,
            "changed": changed,
            "path": dg.MetadataValue.path(str(path)),
            "symbols": len(symbols),
            "models": dg.MetadataValue.json(champions),
        },
    )
