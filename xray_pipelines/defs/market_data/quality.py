"""`candle_quality`: one verdict per kept symbol, the gate every downstream asset reads."""

import dagster as dg
import polars as pl

from xray_core.ingest import refresh_verdicts
from xray_pipelines.defs.market_data.candles import candles
from xray_pipelines.groups import Group
from xray_pipelines.metadata import markdown, table
from xray_pipelines.resources import MarketScope


@dg.asset(
    group_name=Group.QUALITY,
    kinds={"duckdb"},
    deps=[candles],
    automation_condition=dg.AutomationCondition.eager(),
)
def candle_quality(market: MarketScope) -> dg.MaterializeResult:
    """Good or bad, with the reason, for every symbol in the universe. A symbol is good only when
    its latest ingestion succeeded and every blocking check passed. Downstream assets use
    `CandleStore.good_symbols`, so a bad symbol is skipped with its reason and the rest continue."""
    verdicts = refresh_verdicts(market.lake.candles(), market.exchange_id, market.timeframe)
    good = verdicts.filter(pl.col("verdict") == "good")
    return dg.MaterializeResult(
        metadata={
            "good": good.height,
            "bad": verdicts.height - good.height,
            "verdicts": table(verdicts),
            "bad_symbols": markdown(verdicts.filter(pl.col("verdict") == "bad").select("symbol", "reason")),
        }
    )
