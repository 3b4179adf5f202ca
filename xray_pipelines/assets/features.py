"""`features`: indicator columns per symbol partition, written to the lake as Parquet."""

import dagster as dg
import polars as pl

from xray_core.candles.store import SeriesKey
from xray_core.indicators import add_indicators
from xray_core.research.inputs import DAY_MS
from xray_core.research.versions import code_version
from xray_pipelines.assets.candles import candles
from xray_pipelines.assets.quality import candle_quality
from xray_pipelines.metadata import markdown
from xray_pipelines.partitions import symbol_partitions
from xray_pipelines.resources import ExchangeResource, LakeResource, MarketDataResource

FEATURES = "features"


@dg.asset(
    group_name="research",
    automation_condition=dg.AutomationCondition.eager(),
    kinds={"polars", "parquet"},
    partitions_def=symbol_partitions,
    deps=[candles, candle_quality],
    code_version=code_version("xray_core.indicators"),
)
def features(
    context: dg.AssetExecutionContext,
    exchange: ExchangeResource,
    lake: LakeResource,
    market_data: MarketDataResource,
) -> dg.MaterializeResult:
    """Candles plus the TA-Lib-exact indicators (SMA, EMA, RSI, MACD, Bollinger, ATR, stochastic, ADX,
    OBV, VWAP, returns, realized volatility) for one symbol. A symbol the quality gate calls bad is
    skipped with its reason, and its old features are removed so nothing downstream uses them."""
    symbol, timeframe, exchange_id = context.partition_key, market_data.timeframe, exchange.exchange_id
    store, research = lake.candles(), lake.research()
    verdicts = store.quality(exchange_id, timeframe).filter(pl.col("symbol") == symbol)
    if verdicts.is_empty() or verdicts["verdict"][0] != "good":
        reason = verdicts["reason"][0] if verdicts.height else "no quality verdict yet"
        removed = research.drop_series(FEATURES, exchange_id, timeframe, symbol)
        context.log.info(f"{symbol} skipped: {reason}")
        return dg.MaterializeResult(
            metadata={"skipped": True, "reason": reason, "stale_file_removed": removed}
        )
    key = SeriesKey(exchange_id, symbol, timeframe)
    start = (store.last_timestamp_ms(key) or 0) - market_data.history_days * DAY_MS
    frame = add_indicators(store.read(key, start_ms=start))
    path = research.write_series(FEATURES, exchange_id, timeframe, symbol, frame)
    return dg.MaterializeResult(
        data_version=dg.DataVersion(store.fingerprint(key, start)),
        metadata={
            "skipped": False,
            "dagster/row_count": frame.height,
            "columns": dg.MetadataValue.json(frame.columns),
            "path": dg.MetadataValue.path(str(path)),
            "latest": markdown(
                frame.tail(3).select(
                    "timestamp", "close", "rsi_14", "macd_hist", "atr_14", "bb_upper", "bb_lower"
                )
            ),
        },
    )
