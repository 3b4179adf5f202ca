"""Retraining triggers: a schedule, and sensors for new data, feature drift and a decaying champion.

Each sensor asks one question and answers with a RunRequest for `training_job` (run keys make a
trigger fire once per cause) or a SkipReason saying why not:
* `retrain_on_new_data`: have the symbols gained XRAY_MODELS_RETRAIN_NEW_BARS bars (median) since the
  training data was last built?
* `retrain_on_drift`: has a key feature's distribution over the recent bars drifted from the training
  data — PSI above XRAY_MODELS_DRIFT_PSI and above what windows of the same length normally show?
* `retrain_on_decay`: has the champion's live record fallen XRAY_MODELS_DECAY_SHARPE_DROP below the
  out-of-sample Sharpe it was promoted on, or below that Sharpe's lower confidence bound (the gate's
  `oos_sharpe_ci_low`; `model_promotion` then demotes it)? Judged only on bars whose labels it never
  saw (after `trained_until` + XRAY_MODELS_HORIZON_BARS), on the symbols that have
  XRAY_MODELS_DECAY_MIN_BARS such bars each, at the research costs the gate used; its positions are its
  fills where the runtime traded it (`live_fills`) and its own replayed signals elsewhere
  (`xray_core.learning.live_record`).
"""

import hashlib
import math
import statistics
from dataclasses import dataclass
from typing import Any

import dagster as dg
import numpy as np
import polars as pl

from xray_core.learning.dataset import live_features
from xray_core.learning.drift import calibrated_drift
from xray_core.learning.evaluate import EvalConfig, evaluate_oos
from xray_core.learning.gate import decayed
from xray_core.learning.live_record import Replay, champion_record, fresh_after_ms, fresh_bars
from xray_core.research.store import LakeSeries, LakeTable
from xray_core.timeframes import TIMEFRAME_MS
from xray_pipelines.automation import cron_schedule
from xray_pipelines.defs.jobs import training_job
from xray_pipelines.defs.learning.training import training_data
from xray_pipelines.defs.research.backtests import backtest_config
from xray_pipelines.resources import MarketScope, ModelsResource, ResearchResource, RuntimeJournalResource

# The market's structure: volatility, volume, co-movement (momentum features swing by design).
KEY_FEATURES = ("realized_vol", "atr_norm", "bb_width", "volume_z", "bench_corr")
RECENT_BARS = 72  # the window compared with the training data

weekly_retraining = cron_schedule(
    "weekly_retraining",
    training_job,
    "0 4 * * 1",
    "Retrain, evaluate and gate every model each Monday, whatever the sensors saw",
)


def _last_training_ms(instance: dg.DagsterInstance) -> int | None:
    event = instance.get_latest_materialization_event(training_data.key)
    return int(event.timestamp * 1000) if event is not None else None


@dg.sensor(job=training_job, minimum_interval_seconds=600, default_status=dg.DefaultSensorStatus.RUNNING)
def retrain_on_new_data(context: dg.SensorEvaluationContext, market: MarketScope, models: ModelsResource):
    """Enough new candles since the training data was built (or never built, with candles to train on)."""
    since = _last_training_ms(context.instance)
    store = market.lake.candles()
    if since is None:
        if not store.good_symbols(market.exchange_id, market.timeframe):
            return dg.SkipReason("no training data yet, and no good candles to build it from")
        return dg.RunRequest(run_key="first-training", tags={"xray/trigger": "first training"})
    new = store.ingested_since(market.exchange_id, market.timeframe, since)
    median = statistics.median(new.values()) if new else 0
    needed = models.settings().retrain_new_bars
    if median < needed:
        return dg.SkipReason(f"{median:g} new bars per symbol since the last training, {needed} needed")
    return dg.RunRequest(
        run_key=f"new-data-{since}", tags={"xray/trigger": f"{median:g} new bars per symbol"}
    )


@dg.sensor(job=training_job, minimum_interval_seconds=3600, default_status=dg.DefaultSensorStatus.RUNNING)
def retrain_on_drift(context: dg.SensorEvaluationContext, market: MarketScope, models: ModelsResource):
    """A key feature over the recent bars no longer looks like it did in the training data."""
    reference = market.read_series(LakeSeries.TRAINING)
    if reference is None:
        return dg.SkipReason("no training data to compare with")
    sentiment = market.read(LakeTable.NEWS_SENTIMENT)
    recent = live_features(
        {s.symbol: s.candles for s in market.good_series()},
        sentiment if sentiment.height else None,
        last=RECENT_BARS,
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


@dg.sensor(job=training_job, minimum_interval_seconds=3600, default_status=dg.DefaultSensorStatus.RUNNING)
def retrain_on_decay(
    context: dg.SensorEvaluationContext,
    market: MarketScope,
    models: ModelsResource,
    research: ResearchResource,
    journal: RuntimeJournalResource,
):
    """A champion whose live record — its fills where the runtime traded it, its own positions replayed
    on the candles elsewhere — on bars it never saw a label of has lost its out-of-sample edge."""
    from xray_pipelines.mlops.registry import MODEL_NAMES

    settings = models.settings()
    client = models.tracking().client()
    candles = {s.symbol: s.candles for s in market.good_series()}
    fills = journal.fills()  # the journal now, not the last `live_fills` snapshot
    due, notes = [], []
    for name in MODEL_NAMES.values():
        check = live_check(client, name, market, candles, fills, settings, research)
        if check is None:
            continue
        notes.append(check.note)
        if check.lost_edge(settings.decay_sharpe_drop) or check.broke_promise():
            due.append((name, check.version, check.note))
    if not due:
        return dg.SkipReason("; ".join(notes) or "no champion to judge yet")
    return dg.RunRequest(
        run_key="decay-" + "-".join(f"{name}-{version}" for name, version, _ in due),
        tags={"xray/trigger": "decayed: " + "; ".join(note for _, _, note in due)},
    )


@dataclass(frozen=True, slots=True)
class LiveCheck:
    """A champion's live record against what it promised: live is None when too few bars were fresh."""

    version: str
    live: float | None
    promised: float
    promised_ci_low: float
    note: str

    def lost_edge(self, drop: float) -> bool:
        if self.live is None or not math.isfinite(self.promised):
            return False
        return not self.live >= self.promised - drop

    def broke_promise(self) -> bool:
        """Below the lower confidence bound of the Sharpe it was promoted with (`gate.decayed`)."""
        return self.live is not None and decayed(self.live, self.promised_ci_low)


def live_check(
    client: Any,
    name: str,
    market: MarketScope,
    candles: dict[str, pl.DataFrame],
    fills: pl.DataFrame,
    settings: Any,
    research: ResearchResource,
) -> LiveCheck | None:
    """The champion of `name` on bars whose labels it never saw, at the research costs the gate used
    (its promise was measured with them); None without a champion with a known `trained_until`."""
    from xray_pipelines.mlops.registry import CHAMPION, by_alias, version_metrics

    champion = by_alias(client, name, CHAMPION)
    trained_until = champion.tags.get("xray.trained_until") if champion else None
    if champion is None or trained_until is None:
        return None
    label = f"{name} v{champion.version}"
    metrics = version_metrics(client, champion)
    promised = metrics.get("oos_sharpe", math.nan)
    ci_low = metrics.get("oos_sharpe_ci_low", math.nan)
    after = fresh_after_ms(int(trained_until), settings.horizon_bars, TIMEFRAME_MS[market.timeframe])
    counts = fresh_bars(candles, after)
    judged = {s: c for s, c in candles.items() if counts[s] >= settings.decay_min_bars}
    if not judged:
        most = max(counts.values(), default=0)
        why = (f"{label}: too few new bars per symbol after trained_until + {settings.horizon_bars} "
               f"bars (at most {most}, {settings.decay_min_bars} needed)")
        return LiveCheck(str(champion.version), None, promised, ci_low, why)
    mine = fills.filter(pl.col("model_version") == f"{name}/{champion.version}")
    replay = _replay(market, candles, f"models:/{name}/{champion.version}")
    record = champion_record(judged, mine, after, replay)
    live = evaluate_oos(record, judged, EvalConfig(backtest=backtest_config(research))).metrics["oos_sharpe"]
    shares = record.group_by("source").len().sort("source").rows()
    how = ", ".join(f"{n} {source}" for source, n in shares)
    fewest = min(counts[s] for s in judged)
    note = (f"{label}: live Sharpe {live:.2f} vs promised {promised:.2f} (lower bound {ci_low:.2f}) "
            f"on {len(judged)} symbols (min {fewest} new bars each; bars: {how})")
    return LiveCheck(str(champion.version), live, promised, ci_low, note)


def _replay(market: MarketScope, candles: dict[str, pl.DataFrame], uri: str) -> Replay:
    """The model's P(up) on the given bars of each symbol (a bar it has no features for: 0, flat);
    the model is loaded only when some bar needs it."""

    def predict(needed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import mlflow

        sentiment = market.read(LakeTable.NEWS_SENTIMENT)
        # Enough of each symbol's last bars to reach its earliest bar to replay (not always the tail:
        # the bars before the runtime first traded a symbol come before its live ones).
        last = max(
            candles[s].filter(pl.col("timestamp").dt.epoch("ms") >= int(stamps.min())).height
            for s, stamps in needed.items()
        )
        # Every symbol's candles: the cross-asset features need the benchmark's, traded or not.
        frame = live_features(candles, sentiment if sentiment.height else None, last=last)
        frame = frame.filter(pl.col("symbol").is_in(list(needed)))
        naive = frame.with_columns(pl.col("timestamp").dt.replace_time_zone(None)).to_pandas()
        p_up = mlflow.pyfunc.load_model(uri).predict(naive)
        scored = frame.select(pl.col("timestamp").dt.epoch("ms").alias("ms"), "symbol").with_columns(
            pl.Series("p_up", np.asarray(p_up, dtype=np.float64).reshape(-1)))
        out = {}
        for symbol, stamps in needed.items():
            bars = pl.DataFrame({"ms": stamps, "symbol": symbol})
            out[symbol] = bars.join(scored, on=["ms", "symbol"], how="left")["p_up"].fill_null(0.0).to_numpy()
        return out

    return predict
