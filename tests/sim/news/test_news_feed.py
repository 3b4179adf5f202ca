"""The fake news feed itself: deterministic for a seed and an end time, sane defaults, a clear failure
on a busy port, and its JSON drop carrying the same stories as its RSS feed.

How X-Ray reads, maps and scores what it serves is specified in tests/core/analysis/test_news.py."""

from __future__ import annotations

import urllib.request

import pytest

from xray_core.analysis.news import HOUR_MS, MARKET, JsonDropSource, RssSource, fetch_news
from xray_core.errors import ConfigError
from xray_sim.news.feed import FeedConfig, RunningFeed, start_fake_feed

END_MS = 1_767_225_600_000  # 2026-01-01T00:00Z: feeds end here so every run serves the same news
UNIVERSE = ("BTC/USDT", "ETH/USDT", "SOL/USDT", "OP/USDT", "UNI/USDT")


@pytest.fixture(scope="module")
def feed():
    with start_fake_feed(seed=11, symbols=UNIVERSE, days=3, per_day=30, end_ms=END_MS, malformed=2,
                         slow_s=3.0) as running:
        yield running


def dated(feed: RunningFeed, where: str) -> list:
    return [i for i in feed.items if i.published_ms is not None and getattr(i, f"in_{where}")]


def test_the_fake_feed_is_deterministic_for_a_seed_and_end_time(feed):
    with start_fake_feed(seed=11, symbols=UNIVERSE, days=3, per_day=30, end_ms=END_MS, malformed=2) as twin:
        for path in ("/rss.xml", "/atom.xml", "/news.json"):
            ours = urllib.request.urlopen(feed.base_url + path, timeout=5).read().decode()
            theirs = urllib.request.urlopen(twin.base_url + path, timeout=5).read().decode()
            assert ours.replace(feed.base_url, "") == theirs.replace(twin.base_url, "")
    other_seed = FeedConfig(seed=12, symbols=UNIVERSE, days=3, per_day=30, end_ms=END_MS)
    assert RunningFeed(other_seed).items != feed.items
    stamps = [i.published_ms for i in feed.items if i.published_ms is not None]
    assert min(stamps) >= END_MS - 3 * 24 * HOUR_MS
    assert max(stamps) <= END_MS
    assert {i.tone for i in feed.items} == {"bullish", "bearish", "neutral"}
    assert any(MARKET in i.assets for i in feed.items)


def test_the_fake_feed_starts_with_defaults_and_reports_a_busy_port(feed):
    with start_fake_feed() as default:
        headlines, report = fetch_news([RssSource(default.rss_url)])
        assert report.ok and len(headlines) == len(dated(default, "rss")) > 0
        assert {a for i in default.items for a in i.assets} <= {"BTC", "ETH", "SOL", MARKET}
    with pytest.raises(RuntimeError, match="failed to start"):
        start_fake_feed(port=int(feed.base_url.rsplit(":", 1)[1]))
    with pytest.raises(ConfigError):
        FeedConfig(days=0)


def test_the_fake_feeds_json_drop_matches_its_rss(feed, tmp_path):
    path = tmp_path / "news.json"
    path.write_bytes(urllib.request.urlopen(feed.json_url, timeout=5).read())
    from_json, _ = fetch_news([JsonDropSource(path)])
    from_rss, _ = fetch_news([RssSource(feed.rss_url)])
    assert {(h.published_ms, h.title) for h in from_rss} <= {(h.published_ms, h.title) for h in from_json}
