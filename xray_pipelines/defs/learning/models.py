"""`model_gbm`, `model_lstm`, `model_rl`: train, evaluate out of sample, log and register.

Each asset evaluates its model with purged walk-forward folds (a fresh model per fold, trained only on
the past), backtests the out-of-sample signals with the same engine as every strategy, then fits the
final model on all the data and logs it to MLflow — parameters, `oos_*` and `bh_*` metrics, lineage,
signature, an input example, the out-of-sample predictions and the out-of-sample equity against
buy-and-hold and flat per fold (`oos_equity/all_folds.png` and `oos_equity/fold_K.png`, also shown in
the asset's metadata) — as a new version of its registered model with the alias `challenger`. Whether
it becomes `champion` is `model_promotion`'s decision.

The gate's evidence is logged with it (`gate/evidence.json`): per-bar portfolio returns on the test
folds of the challenger, of buy-and-hold, of the challenger at twice the fees and slippage, and of the
current champion on the SAME folds — the champion's recipe (its constructor arguments, tag
`xray.recipe`) refitted fold by fold like the challenger. When the recipe is the challenger's own, the
refit would reproduce the challenger's returns, so they are reused: the folds cannot tell two fits of
one recipe apart, only the shadow books can.
"""

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

import dagster as dg
import polars as pl
from mlflow import MlflowClient

from xray_core.backtest import BacktestConfig
from xray_core.backtest.metrics import Calendar
from xray_core.learning.dataset import FEATURES
from xray_core.learning.evaluate import (
    EvalConfig,
    OosReport,
    evaluate_oos,
    fold_equity,
    fold_summary,
    walk_forward_evaluate,
)
from xray_core.learning.models.registry import DEMO_PARAMS, build_model
from xray_core.learning.skill import PairedReturns, equity_returns
from xray_core.learning.splits import Fold, purged_walk_forward
from xray_core.research.plots import oos_equity_figure, png
from xray_core.research.store import LakeSeries
from xray_core.research.versions import code_version
from xray_core.strategies import get_strategy
from xray_pipelines.defs.learning.training import LEARNING_CODE, training_data
from xray_pipelines.defs.research.backtests import backtest_config
from xray_pipelines.groups import Group
from xray_pipelines.metadata import image, markdown, table
from xray_pipelines.mlops.oos import log_oos_predictions
from xray_pipelines.mlops.registry import CHAMPION, FLAVORS, MODEL_NAMES, by_alias, log_model_version
from xray_pipelines.resources import MarketScope, ModelsResource, ResearchResource

RECIPE = "xray.recipe"
KIND_LIBRARIES = {
    "gbm": {"scikitlearn", "mlflow"},
    "lstm": {"pytorch", "mlflow"},
    "rl": {"pytorch", "mlflow"},
}


def model_params(kind: str, size: str, backtest: BacktestConfig) -> dict[str, Any]:
    """The classes' defaults are the tiny test settings; "demo" are sized for real runs. The agent,
    which trades while it learns, learns with the costs (research fee and slippage) and the entry
    threshold (the model strategy's long_above) it is then judged and traded with."""
    params = dict(DEMO_PARAMS[kind]) if size == "demo" else {}
    if kind == "rl":
        params |= {"fee": backtest.fee, "slippage": backtest.slippage, "long_above": LONG_ABOVE}
    return params


LONG_ABOVE = float(get_strategy("model").params().long_above)  # the model strategy's entry threshold


def build_model_asset(kind: str) -> dg.AssetsDefinition:
    @dg.asset(
        name=f"model_{kind}",
        group_name=Group.LEARNING,
        kinds=KIND_LIBRARIES[kind],
        deps=[training_data],
        code_version=code_version(*LEARNING_CODE),
        pool="model_training",
        description=f"The {FLAVORS[kind]} signal model ({MODEL_NAMES[kind]}): walk-forward evaluated, "
        "logged and registered as the challenger.",
    )
    def _model(
        context: dg.AssetExecutionContext,
        market: MarketScope,
        models: ModelsResource,
        research: ResearchResource,
    ) -> dg.MaterializeResult:
        settings = models.settings()
        frame = market.read_series(LakeSeries.TRAINING)
        if frame is None:
            raise dg.Failure("no training data: materialize `training_data` first")
        candles = {s.symbol: s.candles for s in market.good_series()}
        if kind == "rl":  # the agent trades: its environment needs each bar's open and close
            from xray_core.learning.models.rl import with_prices

            frame = with_prices(frame, candles)
        costs = backtest_config(research)
        params = model_params(kind, settings.size, costs)
        folds = purged_walk_forward(
            frame["timestamp"],
            n_folds=settings.folds,
            horizon_bars=settings.horizon_bars,
            embargo_bars=settings.embargo_bars,
        )
        config = EvalConfig(long_above=LONG_ABOVE, backtest=costs)
        report = walk_forward_evaluate(
            frame,
            candles,
            lambda train, test: build_model(kind, **params).fit(train).predict_proba(test),
            folds,
            config,
        )
        models.tracking().activate()
        evidence = paired_evidence(
            kind, params, report, models.tracking().client(), frame, candles, folds, config
        )
        model = build_model(kind, **params).fit(frame)
        lineage = {
            "xray.trained_until": str(frame["timestamp"].dt.epoch("ms").max()),  # paper trading starts after
            "xray.data_version": _training_data_version(context),
            "xray.code_version": code_version(*LEARNING_CODE),
            "xray.dagster_run_id": context.run.run_id,
            # Whether it learnt from news: the runtime then feeds it the lake's sentiment (no skew).
            "xray.sentiment": str(trained_with_news(frame)).lower(),
            # The constructor's arguments, so that a later challenger can refit this one on its folds.
            RECIPE: json.dumps(params, sort_keys=True),
        }
        curves = fold_equity(report)
        title = f"{MODEL_NAMES[kind]}: out-of-sample equity vs buy and hold and flat"
        figures = {"oos_equity/all_folds.png": oos_equity_figure(curves, title)}
        for fold in sorted(set(curves["fold"].to_list())):
            figures[f"oos_equity/fold_{fold}.png"] = oos_equity_figure(curves, title, fold=fold)
        version = log_model_version(
            kind,
            model,
            params=model.params(),
            metrics=report.metrics,
            tags=lineage,
            example=frame.select("timestamp", "symbol", *FEATURES).tail(64),
            evidence=evidence,
            figures=figures,
        )
        # Its walk-forward record, for strategy selection at bundle time (xray_core.research.selection).
        log_oos_predictions(models.tracking().client(), version, report.predictions)
        context.log.info(
            f"{MODEL_NAMES[kind]} version {version.version}: "
            + ", ".join(f"{k}={v:.3f}" for k, v in report.metrics.items())
        )
        return dg.MaterializeResult(
            metadata={
                **{k: float(v) for k, v in report.metrics.items()},
                "registered_model": MODEL_NAMES[kind],
                "version": int(version.version),
                "mlflow_run_id": version.run_id or "",
                "folds": len(folds),
                "gate_evidence": "; ".join(evidence.notes),
                "training_rows": frame.height,
                "params": dg.MetadataValue.json(model.params()),
                "windows": markdown(report.windows.select(pl.all().exclude("^.*_ms$")).head(40)),
                "oos_equity": image(png(figures["oos_equity/all_folds.png"]), title),
                "oos_equity_by_fold": table(fold_summary(curves)),
                "mlflow_figures": dg.MetadataValue.json(sorted(figures)),
            }
        )

    return _model


def trained_with_news(frame: pl.DataFrame) -> bool:
    """Whether any training row had news (a sentiment feature not 0, the "no news" value)."""
    news = [name for name in FEATURES if "sent_" in name]
    return bool(frame.select(pl.any_horizontal(pl.col(news).fill_nan(0).fill_null(0) != 0).any()).item())


def paired_evidence(
    kind: str,
    params: dict[str, Any],
    report: OosReport,
    client: MlflowClient,
    frame: pl.DataFrame,
    candles: Mapping[str, pl.DataFrame],
    folds: list[Fold],
    config: EvalConfig,
) -> PairedReturns:
    """The challenger's, buy-and-hold's, its 2x-costs and the champion's per-bar returns on these folds."""
    backtest = config.backtest
    doubled = dataclasses.replace(
        config, backtest=dataclasses.replace(backtest, fee=2 * backtest.fee, slippage=2 * backtest.slippage)
    )
    at_2x = evaluate_oos(report.predictions, candles, doubled).equity["oos"].to_numpy()
    trades = report.windows.group_by("symbol").agg(pl.col("n_trades").sum()).rows()
    stamps = report.equity["timestamp"].dt.epoch("ms").to_numpy()
    per_year = float(Calendar.from_timestamps(stamps).bars_per_year)
    incumbent = by_alias(client, MODEL_NAMES[kind], CHAMPION)
    champion, notes = None, []
    if incumbent is not None:
        # A champion logged without its recipe was built from these settings' recipe.
        recipe = json.loads(incumbent.tags.get(RECIPE, "null")) or params
        # Refitted with today's code (its own code cannot run here): the same arguments would give
        # the same fits, so their returns are these.
        if recipe == json.loads(json.dumps(params, sort_keys=True)):
            champion = equity_returns(report.equity["oos"].to_numpy())
            notes.append(f"champion v{incumbent.version} has the same recipe: its fold returns are these")
        else:
            def refit(train: pl.DataFrame, test: pl.DataFrame) -> Any:
                return build_model(kind, **recipe).fit(train).predict_proba(test)

            theirs = walk_forward_evaluate(frame, candles, refit, folds, config)
            champion = equity_returns(theirs.equity["oos"].to_numpy())
            notes.append(f"champion v{incumbent.version} refitted on these {len(folds)} folds")
    else:
        notes.append("no champion: judged against flat and buy-and-hold")
    ours, bh = (equity_returns(report.equity[key].to_numpy()) for key in ("oos", "bh"))
    return PairedReturns(
        ours, champion, bh, equity_returns(at_2x), {str(s): float(n) for s, n in trades}, per_year,
        champion_version=None if incumbent is None else str(incumbent.version), notes=tuple(notes),
    )


def _training_data_version(context: dg.AssetExecutionContext) -> str:
    event = context.instance.get_latest_materialization_event(training_data.key)
    if event is None or event.asset_materialization is None:
        return "unknown"
    return event.asset_materialization.tags.get("dagster/data_version", "unknown")


model_gbm, model_lstm, model_rl = (build_model_asset(kind) for kind in ("gbm", "lstm", "rl"))
