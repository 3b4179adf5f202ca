"""`promoted_bundle`: the manifest the trading runtime trades from."""

import json

import dagster as dg
import polars as pl
from mlflow import MlflowClient

from xray_core.bundle import Bundle
from xray_core.research.selection import Candidate, select_all, summary
from xray_core.research.store import LakeTable
from xray_core.research.versions import backtest_code_version, code_version
from xray_pipelines.defs.learning.promotion import model_promotion
from xray_pipelines.defs.learning.training import LEARNING_CODE
from xray_pipelines.defs.research.backtests import backtest_config
from xray_pipelines.defs.research.params import strategy_params
from xray_pipelines.defs.research.risk import risk_profiles
from xray_pipelines.groups import Group
from xray_pipelines.metadata import markdown
from xray_pipelines.mlops.oos import oos_predictions
from xray_pipelines.mlops.registry import CHALLENGER, CHAMPION, MODEL_NAMES, by_alias
from xray_pipelines.resources import MarketScope, ModelsResource, ResearchResource


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
    context: dg.AssetExecutionContext, market: MarketScope, models: ModelsResource, research: ResearchResource
) -> dg.MaterializeResult:
    """The manifest the runtime trades from: symbols with their strategy and parameters, risk sizing
    per profile, champion models by alias, the challengers it shadow-trades (by version) and the
    research costs it prices their books at, and the versions behind them. Published atomically; an
    unchanged bundle keeps its version.

    Models trade when they earn it: each kept symbol trades its rule strategy (optimised parameters)
    unless a champion model beat it there on the champion's walk-forward test windows, with the same
    engine and research costs (`xray_core.research.selection`); then it is planned on `model` with that
    champion. The bundle's `selection` keeps, per symbol, both scores and the reason."""
    kept = market.read(LakeTable.FILTERED_SYMBOLS)
    kept_symbols = set(kept.filter(pl.col("kept"))["symbol"]) if kept.height else set()
    chosen = market.read(LakeTable.SYMBOL_PARAMS)
    plans = [
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
    champions, candidates = {}, []
    for kind, name in MODEL_NAMES.items():
        version = by_alias(client, name, CHAMPION)
        if version is not None:
            champions[kind] = {
                "name": name,
                "uri": f"models:/{name}@{CHAMPION}",
                "version": int(version.version),
                "sentiment": version.tags.get("xray.sentiment") == "true",  # fed news at training
            }
            predictions = oos_predictions(client, version)
            if predictions is not None:
                candidates.append(Candidate(kind, int(version.version), predictions))
    challengers = _challengers(client, champions)
    costs = research.settings()
    candles = {s.symbol: s.candles for s in market.good_series()}
    symbols, selection = select_all(
        plans, candles, candidates, backtest_config(research), models.settings().min_trades_per_symbol
    )
    counts = summary(selection)
    context.log.info("strategies: " + ", ".join(f"{n} on {s}" for s, n in sorted(counts.items())))
    store = market.lake.candles()
    versions = {s["symbol"]: store.fingerprint(market.series_key(s["symbol"])) for s in symbols}
    bundle = Bundle(
        exchange=market.exchange_id,
        timeframe=market.timeframe,
        symbols=symbols,
        risk_profiles=profiles,
        models=champions,
        challengers=challengers,
        costs={"fee": costs.fee, "slippage": costs.slippage},
        feature_version=code_version(*LEARNING_CODE),
        code_version=backtest_code_version(),
        data_versions=versions,
        selection=selection,
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
            "on_model": counts.get("model", 0),
            "on_rules": len(symbols) - counts.get("model", 0),
            "selection": markdown(_selection_table(selection)),
            "challengers": dg.MetadataValue.json(challengers),
            "symbols_table": symbols_table(bundle),
        },
    )


def _selection_table(selection: dict[str, dict[str, object]]) -> pl.DataFrame:
    shown = ("chosen", "rule_sharpe", "model_sharpe", "reason")
    rows = [{"symbol": s, **{k: record.get(k) for k in shown}} for s, record in sorted(selection.items())]
    schema = {"symbol": pl.String, "chosen": pl.String, "rule_sharpe": pl.Float64, "model_sharpe": pl.Float64,
              "reason": pl.String}
    return pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)


Model = dict[str, object]


def _challengers(client: MlflowClient, champions: dict[str, Model]) -> dict[str, Model]:
    """Each model's challenger that is not its champion, by version (the alias moves on with the next
    training; the runtime's shadow book belongs to this version). A challenger the gate refused stays
    here until a newer one replaces it: its shadow record keeps growing for the next decision."""
    found = {}
    for kind, name in MODEL_NAMES.items():
        version = by_alias(client, name, CHALLENGER)
        if version is None or champions.get(kind, {}).get("version") == int(version.version):
            continue
        number = int(version.version)
        found[kind] = {"name": name, "uri": f"models:/{name}/{number}", "version": number}
    return found


def symbols_table(bundle: Bundle) -> dg.TableMetadataValue:
    """The bundle's symbols with the strategy, parameters, correlation group and data version each
    trades on, as a table in the Dagster UI."""
    schema = dg.TableSchema(columns=[
        dg.TableColumn("symbol", "string"), dg.TableColumn("strategy", "string"),
        dg.TableColumn("params", "string"), dg.TableColumn("group", "string"),
        dg.TableColumn("data_version", "string"),
    ])
    rows = [dg.TableRecord({"symbol": s["symbol"], "strategy": s["strategy"],
                            "params": json.dumps(s["params"], sort_keys=True), "group": str(s["group"]),
                            "data_version": bundle.data_versions.get(s["symbol"], "")})
            for s in bundle.symbols]
    return dg.MetadataValue.table(records=rows, schema=schema)
