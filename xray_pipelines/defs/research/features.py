"""`features`: indicator columns per symbol partition, written to the lake as Parquet."""

import dagster as dg
import polars as pl

from xray_core.indicators import add_indicators
from xray_core.research.inputs import DAY_MS
from xray_core.research.store import LakeSeries
from xray_core.research.versions import code_version
from xray_pipelines.defs.market_data.candles import candles
from xray_pipelines.defs.market_data.quality import candle_quality
from xray_pipelines.groups import Group
from xray_pipelines.metadata import markdown
from xray_pipelines.partitions import symbol_partitions
from xray_pipelines.resources import MarketScope


@dg.asset(
    group_name=Group.FEATURES,
    automation_condition=dg.AutomationCondition.eager(),
    kinds={"polars", "parquet"},
    partitions_def=symbol_partitions,
    deps=[candles, candle_quality],
    code_version=code_version("xray_core.indicators"),
)
def features(context: dg.AssetExecutionContext, market: MarketScope) -> dg.MaterializeResult:
    """Candles plus the TA-Lib-exact indicators (SMA, EMA, RSI, MACD, Bollinger, ATR, stochastic, ADX,
    OBV, VWAP, returns, realized volatility) for one symbol. A symbol the quality gate calls bad is
    skipped with its reason, and its old features are removed so nothing downstream uses them."""
    symbol = context.partition_key
    store = market.lake.candles()
    verdicts = store.quality(market.exchange_id, market.timeframe).filter(pl.col("symbol") == symbol)
    if verdicts.is_empty() or verdicts["verdict"][0] != "good":
        reason = verdicts["reason"][0] if verdicts.height else "no quality verdict yet"
        removed = market.drop_series(LakeSeries.FEATURES, symbol)
        context.log.info(f"{symbol} skipped: {reason}")
        return dg.MaterializeResult(
            metadata={"skipped": True, "reason": reason, "stale_file_removed": removed}
        )
    key = market.series_key(symbol)
    start = (store.last_timestamp_ms(key) or 0) - market.history_days * DAY_MS
    frame = add_indicators(store.read(key, start_ms=start))
    path = market.write_series(LakeSeries.FEATURES, frame, symbol)
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
