"""Retraining triggers: a schedule, and sensors for new data, feature drift and a decaying champion.

Each sensor asks one question and answers with a RunRequest for `training_job` (run keys make a
trigger fire once per cause) or a SkipReason saying why not:
* `retrain_on_new_data`: have the symbols gained XRAY_MODELS_RETRAIN_NEW_BARS bars (median) since the
  training data was last built?
* `retrain_on_drift`: has a key feature's distribution over the recent bars drifted from the training
  data — PSI above XRAY_MODELS_DRIFT_PSI and above what windows of the same length normally show?
* `retrain_on_decay`: has the champion's Sharpe on the bars since it was trained (paper trading: its
  signals backtested on data it never saw) fallen XRAY_MODELS_DECAY_SHARPE_DROP below its out-of-sample
  Sharpe?
"""

import hashlib
import statistics

import dagster as dg
import polars as pl

from xray_core.learning.dataset import live_features
from xray_core.learning.drift import calibrated_drift
from xray_core.research.inputs import good_series
from xray_pipelines.assets.news import NEWS_TABLE
from xray_pipelines.assets.training import TRAINING, training_data
from xray_pipelines.jobs import training_job
from xray_pipelines.resources import ExchangeResource, LakeResource, MarketDataResource, ModelsResource

# The market's structure: volatility, volume, co-movement (momentum features swing by design).
KEY_FEATURES = ("realized_vol", "atr_norm", "bb_width", "volume_z", "bench_corr")
RECENT_BARS = 72  # the window compared with the training data

weekly_retraining = dg.ScheduleDefinition(
    name="weekly_retraining",
    job=training_job,
    cron_schedule="0 4 * * 1",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Retrain, evaluate and gate every model each Monday, whatever the sensors saw",
)


def _last_training_ms(instance: dg.DagsterInstance) -> int | None:
    event = instance.get_latest_materialization_event(training_data.key)
    return int(event.timestamp * 1000) if event is not None else None


@dg.sensor(job=training_job, minimum_interval_seconds=600, default_status=dg.DefaultSensorStatus.RUNNING)
def retrain_on_new_data(
    context: dg.SensorEvaluationContext,
    exchange: ExchangeResource,
    lake: LakeResource,
    market_data: MarketDataResource,
    models: ModelsResource,
):
    """Enough new candles since the training data was built (or never built, with candles to train on)."""
    since = _last_training_ms(context.instance)
    store = lake.candles()
    if since is None:
        if not store.good_symbols(exchange.exchange_id, market_data.timeframe):
            return dg.SkipReason("no training data yet, and no good candles to build it from")
        return dg.RunRequest(run_key="first-training", tags={"xray/trigger": "first training"})
    new = store.ingested_since(exchange.exchange_id, market_data.timeframe, since)
    median = statistics.median(new.values()) if new else 0
    needed = models.settings().retrain_new_bars
    if median < needed:
        return dg.SkipReason(f"{median:g} new bars per symbol since the last training, {needed} needed")
    return dg.RunRequest(
        run_key=f"new-data-{since}", tags={"xray/trigger": f"{median:g} new bars per symbol"}
    )


@dg.sensor(job=training_job, minimum_interval_seconds=3600, default_status=dg.DefaultSensorStatus.RUNNING)
def retrain_on_drift(
    context: dg.SensorEvaluationContext,
    exchange: ExchangeResource,
    lake: LakeResource,
    market_data: MarketDataResource,
    models: ModelsResource,
):
    """A key feature over the recent bars no longer looks like it did in the training data."""
    research = lake.research()
    reference = research.read_series(TRAINING, exchange.exchange_id, market_data.timeframe, "all")
    if reference is None:
        return dg.SkipReason("no training data to compare with")
    series = good_series(
        lake.candles(), exchange.exchange_id, market_data.timeframe, market_data.history_days
    )
    sentiment = research.read(NEWS_TABLE, {"exchange": exchange.exchange_id})
    recent = live_features(
        {s.symbol: s.candles for s in series}, sentiment if sentiment.height else None, last=RECENT_BARS
    )
    recent = recent.filter(pl.col("timestamp") > reference["timestamp"].max())  # only bars it never saw
    if recent.height < 2 * RECENT_BARS:
        return dg.SkipReason(f"{recent.height} bars since the training data: too few to judge drift")
    report = calibrated_drift(reference, recent, KEY_FEATURES, psi_threshold=models.settings().drift_psi)
    moved = report.filter(pl.col("drifted"))["feature"].to_list()
    if not moved:
        worst = report.sort(pl.col("psi") - pl.col("psi_normal"), descending=True).row(0, named=True)
        return dg.SkipReason(
            f"no drift (largest: {worst['feature']} PSI {worst['psi']:.3f}, "
            f"normally up to {worst['psi_normal']:.3f})"
        )
    key = hashlib.sha256(f"{reference['timestamp'].max()!s}{sorted(moved)}".encode()).hexdigest()[:12]
    return dg.RunRequest(run_key=f"drift-{key}", tags={"xray/trigger": f"drift in {', '.join(moved)}"})


PAPER_BARS = 168  # a week of hourly bars of paper trading


@dg.sensor(job=training_job, minimum_interval_seconds=3600, default_status=dg.DefaultSensorStatus.RUNNING)
def retrain_on_decay(
    context: dg.SensorEvaluationContext,
    exchange: ExchangeResource,
    lake: LakeResource,
    market_data: MarketDataResource,
    models: ModelsResource,
):
    """A champion whose signals, backtested on the bars since it was trained, have lost their edge."""
    import mlflow

    from xray_core.learning.evaluate import EvalConfig, evaluate_oos
    from xray_pipelines.mlops.registry import CHAMPION, MODEL_NAMES, by_alias, version_metrics

    settings = models.settings()
    client = models.tracking().client()
    series = good_series(
        lake.candles(), exchange.exchange_id, market_data.timeframe, market_data.history_days
    )
    candles = {s.symbol: s.candles for s in series}
    sentiment = lake.research().read(NEWS_TABLE, {"exchange": exchange.exchange_id})
    decayed, checked = [], []
    for name in MODEL_NAMES.values():
        champion = by_alias(client, name, CHAMPION)
        trained_until = champion.tags.get("xray.trained_until") if champion else None
        if champion is None or trained_until is None:
            continue
        frame = live_features(candles, sentiment if sentiment.height else None, last=2 * PAPER_BARS)
        model = mlflow.pyfunc.load_model(f"models:/{name}@{CHAMPION}")
        p_up = model.predict(frame.with_columns(pl.col("timestamp").dt.replace_time_zone(None)).to_pandas())
        paper = (
            frame.select("timestamp", "symbol")
            .with_columns(pl.Series("p_up", p_up))
            .filter(pl.col("timestamp").dt.epoch("ms") > int(trained_until))
        )
        if paper.height < PAPER_BARS:
            continue
        live = evaluate_oos(paper, candles, EvalConfig()).metrics["oos_sharpe"]
        promised = version_metrics(client, champion).get("oos_sharpe", float("nan"))
        checked.append(f"{name} v{champion.version}: paper Sharpe {live:.2f} vs {promised:.2f}")
        if live == live and promised == promised and live < promised - settings.decay_sharpe_drop:
            decayed.append(f"{name} v{champion.version}")
    if not decayed:
        return dg.SkipReason("; ".join(checked) or "no champion with enough paper-trading bars yet")
    return dg.RunRequest(
        run_key=f"decay-{'-'.join(decayed)}-{len(series)}",
        tags={"xray/trigger": f"decayed: {', '.join(decayed)}"},
    )
