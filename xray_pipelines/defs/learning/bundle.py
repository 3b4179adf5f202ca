"""`promoted_bundle`: the manifest the trading runtime trades from."""

import json

import dagster as dg
import polars as pl

from xray_core.bundle import Bundle
from xray_core.research.store import LakeTable
from xray_core.research.versions import backtest_code_version, code_version
from xray_pipelines.defs.learning.promotion import model_promotion
from xray_pipelines.defs.learning.training import LEARNING_CODE
from xray_pipelines.defs.research.params import strategy_params
from xray_pipelines.defs.research.risk import risk_profiles
from xray_pipelines.groups import Group
from xray_pipelines.mlops.registry import CHAMPION, MODEL_NAMES, by_alias
from xray_pipelines.resources import MarketScope, ModelsResource


@dg.asset(
    group_name=Group.LEARNING,
    kinds={"json"},
    deps=[risk_profiles, model_promotion, strategy_params],
    # Republished whenever the research it carries changes (new candles -> risk profiles, nightly
    # parameters). The models' gate is not waited for: a universe traded on rule strategies is a
    # bundle too, and `training_job` (sensors, schedule) republishes it after every promotion.
    automation_condition=dg.AutomationCondition.eager().ignore(dg.AssetSelection.assets(model_promotion)),
)
def promoted_bundle(
    context: dg.AssetExecutionContext, market: MarketScope, models: ModelsResource
) -> dg.MaterializeResult:
    """The manifest the runtime trades from: symbols with their strategy and parameters, risk sizing
    per profile, champion models by alias, and the versions behind them. Published atomically; an
    unchanged bundle keeps its version."""
    kept = market.read(LakeTable.FILTERED_SYMBOLS)
    kept_symbols = set(kept.filter(pl.col("kept"))["symbol"]) if kept.height else set()
    chosen = market.read(LakeTable.SYMBOL_PARAMS)
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
    risk = market.read(LakeTable.RISK_PROFILES)
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
    candles = market.lake.candles()
    versions = {s["symbol"]: candles.fingerprint(market.series_key(s["symbol"])) for s in symbols}
    bundle = Bundle(
        exchange=market.exchange_id,
        timeframe=market.timeframe,
        symbols=symbols,
        risk_profiles=profiles,
        models=champions,
        feature_version=code_version(*LEARNING_CODE),
        code_version=backtest_code_version(),
        data_versions=versions,
        dagster_run_id=context.run.run_id,
    )
    location, changed = market.lake.bundles().publish(bundle)
    return dg.MaterializeResult(
        data_version=dg.DataVersion(bundle.version),
        metadata={
            "version": bundle.version,
            "changed": changed,
            "location": location,
            "symbols": len(symbols),
            "models": dg.MetadataValue.json(champions),
        },
    )
