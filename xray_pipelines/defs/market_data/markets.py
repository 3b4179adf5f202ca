"""`markets`: the tradable universe, and the symbol partitions that follow it."""

import dagster as dg
import polars as pl

from xray_core.ingest import refresh_universe
from xray_pipelines.groups import Group
from xray_pipelines.metadata import table
from xray_pipelines.partitions import SYMBOLS
from xray_pipelines.resources import MarketScope


@dg.asset(group_name=Group.UNIVERSE, kinds={"duckdb", "ccxt"})
def markets(context: dg.AssetExecutionContext, market: MarketScope) -> dg.MaterializeResult:
    """Every spot market the exchange lists, kept or dropped with a reason (quote currency, status,
    24h volume, allow-list). The kept ones become the `symbols` partitions of `candles`."""
    frame = refresh_universe(market.exchange.client(), market.lake.candles(), market.market_data.ingest())
    kept = sorted(frame.filter(pl.col("kept"))["symbol"].to_list())
    added, removed = _sync_partitions(context.instance, kept)
    context.log.info(f"{len(kept)} of {frame.height} markets kept; partitions +{len(added)} -{len(removed)}")
    return dg.MaterializeResult(
        metadata={
            "kept": len(kept),
            "dropped": frame.height - len(kept),
            "partitions_added": dg.MetadataValue.json(added),
            "partitions_removed": dg.MetadataValue.json(removed),
            "universe": table(frame.sort(["kept", "quote_volume_24h"], descending=True)),
        }
    )


def _sync_partitions(instance: dg.DagsterInstance, kept: list[str]) -> tuple[list[str], list[str]]:
    """Make the `symbols` partitions equal the kept markets; a dropped market's stored candles stay."""
    current = set(instance.get_dynamic_partitions(SYMBOLS))
    added = sorted(set(kept) - current)
    removed = sorted(current - set(kept))
    if added:
        instance.add_dynamic_partitions(SYMBOLS, added)
    for key in removed:
        instance.delete_dynamic_partition(SYMBOLS, key)
    return added, removed
