"""`news_sentiment`: headlines kept with their first-seen time, mapped to symbols and scored, one row
per symbol and ended hour (past rows never change: `xray_core.analysis.news_items`)."""

import time

import dagster as dg
import polars as pl

from xray_core.analysis.news import NewsConfig, sentiment_of
from xray_core.analysis.news_items import accumulate, as_headlines, last_closed_hour
from xray_core.analysis.news_sources import fetch_news, source_from_spec
from xray_core.research.inputs import DAY_MS
from xray_core.research.store import LakeTable
from xray_pipelines.automation import nightly_or_missing
from xray_pipelines.defs.market_data.markets import markets
from xray_pipelines.groups import Group
from xray_pipelines.metadata import markdown
from xray_pipelines.resources import MarketScope, ResearchResource


@dg.asset(
    group_name=Group.RESEARCH,
    automation_condition=nightly_or_missing("10 * * * *"),
    kinds={"vader", "duckdb"},
    deps=[markets],
)
def news_sentiment(
    context: dg.AssetExecutionContext, market: MarketScope, research: ResearchResource
) -> dg.MaterializeResult:
    """Headlines from the configured RSS/Atom feeds and JSON drops (XRAY_RESEARCH_NEWS_SOURCES), added
    to the ones kept from earlier runs (`news_items`, each with the time it was first seen), mapped to
    the universe's symbols (and "*" for market-wide news), scored with VADER plus a crypto lexicon, and
    aggregated per symbol and ended hour, with a decayed sentiment that uses only earlier news. An item
    counts from when it was first seen (after the first fetch), so a run never changes an hour an
    earlier run wrote. A broken source is reported and skipped; no sources at all gives an empty
    table, not a failure."""
    settings = research.settings()
    universe = market.lake.candles().markets(market.exchange_id)
    symbols = universe.filter(pl.col("kept"))["symbol"].to_list() if universe.height else []
    now_ms = int(time.time() * 1000)
    start_ms = now_ms - market.history_days * DAY_MS
    sources = [source_from_spec(spec) for spec in settings.news_sources]
    config = NewsConfig(half_life_hours=settings.news_half_life_hours)
    fetched, report = fetch_news(sources, max_workers=config.max_workers)
    items, new_items = accumulate(market.read(LakeTable.NEWS_ITEMS), fetched, now_ms)
    market.write(LakeTable.NEWS_ITEMS, items)
    frame = sentiment_of(as_headlines(items), symbols, config=config, start_ms=start_ms,
                         end_ms=last_closed_hour(now_ms))
    market.write(LakeTable.NEWS_SENTIMENT, frame)
    for source in report.failed:
        context.log.warning(source.line())
    with_news = frame.filter(pl.col("n_headlines") > 0)
    per_symbol = (
        with_news.group_by("symbol")
        .agg(pl.col("n_headlines").sum(), pl.col("sentiment_mean").mean())
        .sort("n_headlines", descending=True)
    )
    return dg.MaterializeResult(
        metadata={
            "sources": len(sources),
            "sources_failed": len(report.failed),
            "headlines": report.n_headlines,
            "duplicates_dropped": report.n_duplicates,
            "new_items": new_items,
            "items_kept": items.height,
            "fetch_report": dg.MetadataValue.md(f"```\n{report.summary()}\n```"),
            "per_symbol": markdown(per_symbol),
            "dagster/row_count": frame.height,
        }
    )
