"""`candles`: OHLCV bars per symbol partition, ingested incrementally into DuckDB and checked."""

from datetime import UTC, datetime

import dagster as dg

from xray_core.candles.store import SeriesKey
from xray_core.ingest import DAY_MS, ingest_symbol
from xray_pipelines.defs.market_data.candle_checks import candle_check_specs, check_results
from xray_pipelines.defs.market_data.markets import markets
from xray_pipelines.groups import Group
from xray_pipelines.partitions import symbol_partitions
from xray_pipelines.resources import MarketScope


@dg.asset(
    group_name=Group.CANDLES,
    kinds={"duckdb", "polars"},
    partitions_def=symbol_partitions,
    deps=[markets],
    check_specs=candle_check_specs("candles"),
    pool="duckdb_writer",  # DuckDB takes one writing process at a time
)
def candles(context: dg.AssetExecutionContext, market: MarketScope):
    """Bars of the configured timeframe for one symbol: backfills `history_days` on the first run,
    then fetches only what is new. Bad data is stored as received and flagged by the checks; the
    `candle_quality` asset turns the checks into a verdict that downstream assets respect."""
    symbol = context.partition_key
    client = market.exchange.client()
    store = market.lake.candles()
    result = ingest_symbol(client, store, symbol, market.market_data.ingest(), market.market_data.quality())
    if result.error is not None or result.report is None:
        raise dg.Failure(
            description=f"{symbol}: {result.error}",
            metadata={"symbol": symbol, "error": result.error or "no report"},
        )
    report = result.report
    key = SeriesKey(client.id, symbol, market.timeframe)  # as `ingest_symbol` stored it
    window_start = (report.last_ms or 0) - market.history_days * DAY_MS
    context.log.info(f"{symbol}: {result.fetched} bars fetched, verdict {report.verdict}: {report.reason}")
    yield dg.MaterializeResult(
        data_version=dg.DataVersion(store.fingerprint(key, window_start)),
        metadata={
            "dagster/row_count": report.bars,
            "fetched": result.fetched,
            "inserted": result.written.inserted if result.written else 0,
            "updated": result.written.updated if result.written else 0,
            "feed_repeats_identical": result.feed.identical_duplicates,
            "feed_repeats_conflicting": result.feed.conflicting_duplicates,
            "verdict": report.verdict,
            "reason": report.reason,
            "first_bar": _iso(report.first_ms),
            "last_bar": _iso(report.last_ms),
            "client_retries": client.retries,
        },
        check_results=check_results(report),
    )


def _iso(ms: int | None) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat() if ms is not None else "none"
