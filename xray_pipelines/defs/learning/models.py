"""`model_gbm`, `model_lstm`, `model_rl`: train, evaluate out of sample, log and register.

Each asset evaluates its model with purged walk-forward folds (a fresh model per fold, trained only on
the past), backtests the out-of-sample signals with the same engine as every strategy, then fits the
final model on all the data and logs it to MLflow — parameters, `oos_*` and `bh_*` metrics, lineage,
signature, an input example and the out-of-sample equity against buy-and-hold and flat per fold
(`oos_equity/all_folds.png` and `oos_equity/fold_K.png`, also shown in the asset's metadata) — as a new
version of its registered model with the alias
`challenger`. Whether it becomes `champion` is `model_promotion`'s decision.
"""

from typing import Any

import dagster as dg
import polars as pl

from xray_core.learning.dataset import FEATURES
from xray_core.learning.evaluate import EvalConfig, fold_equity, fold_summary, walk_forward_evaluate
from xray_core.learning.models.registry import DEMO_PARAMS, build_model
from xray_core.learning.splits import purged_walk_forward
from xray_core.research.plots import oos_equity_figure, png
from xray_core.research.store import LakeSeries
from xray_core.research.versions import code_version
from xray_pipelines.defs.learning.training import LEARNING_CODE, training_data
from xray_pipelines.defs.research.backtests import backtest_config
from xray_pipelines.groups import Group
from xray_pipelines.metadata import image, markdown, table
from xray_pipelines.mlops.registry import FLAVORS, MODEL_NAMES, log_model_version
from xray_pipelines.resources import MarketScope, ModelsResource, ResearchResource

KIND_LIBRARIES = {
    "gbm": {"scikitlearn", "mlflow"},
    "lstm": {"pytorch", "mlflow"},
    "rl": {"pytorch", "mlflow"},
}


def model_params(kind: str, size: str) -> dict[str, Any]:
    """The classes' defaults are the tiny test settings; "demo" are sized for real runs."""
    return dict(DEMO_PARAMS[kind]) if size == "demo" else {}


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
        params = model_params(kind, settings.size)
        folds = purged_walk_forward(
            frame["timestamp"],
            n_folds=settings.folds,
            horizon_bars=settings.horizon_bars,
            embargo_bars=settings.embargo_bars,
        )
        report = walk_forward_evaluate(
            frame,
            candles,
            lambda train, test: build_model(kind, **params).fit(train).predict_proba(test),
            folds,
            EvalConfig(backtest=backtest_config(research)),
        )
        model = build_model(kind, **params).fit(frame)
        lineage = {
            "xray.trained_until": str(frame["timestamp"].dt.epoch("ms").max()),  # paper trading starts after
            "xray.data_version": _training_data_version(context),
            "xray.code_version": code_version(*LEARNING_CODE),
            "xray.dagster_run_id": context.run.run_id,
        }
        curves = fold_equity(report)
        title = f"{MODEL_NAMES[kind]}: out-of-sample equity vs buy and hold and flat"
        figures = {"oos_equity/all_folds.png": oos_equity_figure(curves, title)}
        for fold in sorted(set(curves["fold"].to_list())):
            figures[f"oos_equity/fold_{fold}.png"] = oos_equity_figure(curves, title, fold=fold)
        models.tracking().activate()
        version = log_model_version(
            kind,
            model,
            params=model.params(),
            metrics=report.metrics,
            tags=lineage,
            example=frame.select("timestamp", "symbol", *FEATURES).tail(64),
            figures=figures,
        )
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
                "training_rows": frame.height,
                "params": dg.MetadataValue.json(model.params()),
                "windows": markdown(report.windows.select(pl.all().exclude("^.*_ms$")).head(40)),
                "oos_equity": image(png(figures["oos_equity/all_folds.png"]), title),
                "oos_equity_by_fold": table(fold_summary(curves)),
                "mlflow_figures": dg.MetadataValue.json(sorted(figures)),
            }
        )

    return _model


def _training_data_version(context: dg.AssetExecutionContext) -> str:
    event = context.instance.get_latest_materialization_event(training_data.key)
    if event is None or event.asset_materialization is None:
        return "unknown"
    return event.asset_materialization.tags.get("dagster/data_version", "unknown")


model_gbm, model_lstm, model_rl = (build_model_asset(kind) for kind in ("gbm", "lstm", "rl"))
