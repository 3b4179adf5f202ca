"""`news_sentiment` keeps every headline with the time it was first seen: when the feed moves on (old
stories roll off, an old story is published late), the hours an earlier run wrote read the same."""

import dataclasses
import time

import dagster as dg
import polars as pl
import pytest

from xray_core.analysis.news_sources import HOUR_MS
from xray_core.research.store import LakeTable
from xray_pipelines.definitions import defs
from xray_pipelines.resources import (
    ExchangeResource,
    LakeResource,
    MarketDataResource,
    MarketScope,
    ResearchResource,
)
from xray_sim.news.feed import start_fake_feed

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
RESEARCH = [a for a in defs.assets if {k.to_user_string() for k in a.keys} & {"markets", "news_sentiment"}]


@pytest.fixture
def feed():
    with start_fake_feed(port=0, seed=5, days=3, per_day=30) as running:
        yield running


def _run(instance, resources, name):
    result = dg.materialize(RESEARCH, instance=instance, resources=resources, selection=[name],
                            run_config=QUIET)
    assert result.success
    return result.asset_materializations_for_node(name)[0].metadata


@pytest.mark.slow
def test_past_sentiment_never_changes_between_runs(instance, emulator, feed, tmp_path):
    market = MarketScope(
        exchange=ExchangeResource(exchange_id="mexc", url=emulator.base_url),
        lake=LakeResource(duckdb_path=str(tmp_path / "xray.duckdb"), lake_dir=str(tmp_path / "lake")),
        market_data=MarketDataResource(timeframe="1h", history_days=5, symbols=["BTC/USDT", "ETH/USDT"]),
    )
    resources = {"market": market, "research": ResearchResource(news_sources=[feed.rss_url, feed.atom_url])}
    _run(instance, resources, "markets")
    first = _run(instance, resources, "news_sentiment")
    before = market.read(LakeTable.NEWS_SENTIMENT)
    items = market.read(LakeTable.NEWS_ITEMS)
    assert first["new_items"].value == items.height > 20
    assert before.filter(pl.col("n_headlines") > 0).height > 5
    assert before["hour"].max().timestamp() * 1000 < time.time() * 1000 - HOUR_MS + 1  # ended hours only

    # The feed moves on: its older half rolls off, and a bullish Bitcoin story from two days ago is
    # published late (it is new to X-Ray, so it counts from now, not from two days ago).
    newest = sorted(feed.items, key=lambda i: -(i.published_ms or 0))
    late = dataclasses.replace(newest[0], id="late", title="Bitcoin soars as ETF inflows hit a record",
                               published_ms=newest[0].published_ms - 2 * 24 * HOUR_MS, in_rss=True)
    feed.serve([*newest[: len(newest) // 2], late])
    second = _run(instance, resources, "news_sentiment")
    after = market.read(LakeTable.NEWS_SENTIMENT)
    kept = market.read(LakeTable.NEWS_ITEMS)
    assert second["new_items"].value == 1 and kept.height == items.height + 1  # nothing forgotten
    assert after.filter(pl.col("hour") <= before["hour"].max()).sort("symbol", "hour").equals(
        before.sort("symbol", "hour"))
    row = kept.filter(pl.col("title") == late.title).row(0, named=True)
    assert row["available_ms"] == row["first_seen_ms"] > row["published_ms"]
