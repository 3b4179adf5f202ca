"""`training_data`: point-in-time features and market labels for every good symbol, weighted by what
the runtime traded.

How the runtime's trades teach the models (`live_fills`): they add weight, not labels. The bar an
order was decided on (its lineage's bar, the row whose features the decision saw) weighs 1 +
FILL_BONUS instead of 1, for every symbol the runtime traded. Labels stay the market's forward return,
for every bar, because a label from a realised trade return would (a) exist only on the few bars
someone traded, (b) mix the market with execution (fill prices, fees, the risk layer's sizing and
exits), and (c) select on the model's own past decisions, so a model would learn to agree with itself.
Weighting keeps the label honest and still makes the models pay most attention to the situations in
which they are actually used."""

import hashlib
import json

import dagster as dg
import polars as pl

from xray_core.learning.dataset import FEATURES, LabelConfig, build_training_frame, check_trainable
from xray_core.research.store import LakeSeries, LakeTable
from xray_core.research.versions import code_version
from xray_pipelines.defs.learning.live_fills import live_fills
from xray_pipelines.defs.market_data.quality import candle_quality
from xray_pipelines.defs.research.news import news_sentiment
from xray_pipelines.groups import Group
from xray_pipelines.metadata import markdown
from xray_pipelines.resources import MarketScope, ModelsResource

LEARNING_CODE = ("xray_core.learning", "xray_core.indicators")
FILL_BONUS = 1.0  # a traded bar counts twice


def label_config(models: ModelsResource) -> LabelConfig:
    settings = models.settings()
    return LabelConfig(horizon=settings.horizon_bars, threshold=settings.label_threshold)


@dg.asset(
    group_name=Group.LEARNING,
    kinds={"polars", "parquet"},
    deps=[candle_quality, news_sentiment, live_fills],
    code_version=code_version(*LEARNING_CODE),
)
def training_data(
    context: dg.AssetExecutionContext, market: MarketScope, models: ModelsResource
) -> dg.MaterializeResult:
    """One row per (symbol, bar) of every good symbol: scale-free indicator features, cross-asset
    features against BTC/USDT and news sentiment, all computed from data up to the bar's close, and
    the label the market gave afterwards (forward return over XRAY_MODELS_HORIZON_BARS). Training never
    waits for users to trade: the runtime's fills (`live_fills`) only add weight to the bars it traded."""
    series = market.good_series()
    sentiment = market.read(LakeTable.NEWS_SENTIMENT)
    fills = market.read(LakeTable.LIVE_FILLS)
    labels = label_config(models)
    frame = build_training_frame(
        {s.symbol: s.candles for s in series},
        sentiment if sentiment.height else None,
        traded_bars(fills),
        labels=labels,
        fill_bonus=FILL_BONUS,
    )
    check_trainable(frame)
    path = market.write_series(LakeSeries.TRAINING, frame)
    version = _data_version([(s.symbol, s.data_version) for s in series], sentiment, fills, labels)
    balance = frame.group_by("symbol").agg(pl.len().alias("rows"), pl.col("label").mean().alias("up_share"))
    context.log.info(f"{frame.height} rows over {len(series)} symbols, data version {version}")
    return dg.MaterializeResult(
        data_version=dg.DataVersion(version),
        metadata={
            "dagster/row_count": frame.height,
            "symbols": len(series),
            "features": dg.MetadataValue.json(list(FEATURES)),
            "label": f"forward return over {labels.horizon} bars > {labels.threshold:g}",
            "up_share": float(frame["label"].mean()),  # type: ignore[arg-type]
            "live_fills": fills.height,
            "weighted_rows": frame.filter(pl.col("weight") > 1.0).height,
            "first_bar": str(frame["timestamp"].min()),
            "last_bar": str(frame["timestamp"].max()),
            "path": dg.MetadataValue.path(str(path)),
            "per_symbol": markdown(balance.sort("symbol")),
        },
    )


def traded_bars(fills: pl.DataFrame) -> pl.DataFrame | None:
    """(timestamp, symbol) of the bar each live fill's order was decided on; a fill without a known
    order falls back to the bar it traded in. None without fills."""
    if not fills.height:
        return None
    return fills.select(pl.coalesce("bar", "timestamp").alias("timestamp"), "symbol")


def _data_version(
    series: list[tuple[str, str]], sentiment: pl.DataFrame, fills: pl.DataFrame, labels: LabelConfig
) -> str:
    """Equal exactly when the candles, the news, the fills and the label definition are equal."""
    digest = hashlib.sha256(json.dumps(sorted(series)).encode())
    for frame in (sentiment, fills):
        digest.update(str(frame.hash_rows().sum() if frame.height else 0).encode())
    digest.update(repr(labels).encode())
    return digest.hexdigest()[:16]
