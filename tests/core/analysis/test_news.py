"""News sentiment, specified: sources → headlines → symbols → tone → (symbol, hour) rows.

Feeds are read over real HTTP from the loopback fake feed (`xray_sim.news.feed`, itself tested in
tests/sim/news), whose items are the ground truth; everything else is pure functions on small
hand-written inputs."""

from __future__ import annotations

import json
import socket
import urllib.request
from pathlib import Path

import polars as pl
import pytest

from xray_core.analysis.news import (
    HOUR_MS,
    MARKET,
    NEWS_SCHEMA,
    Headline,
    HeadlineScorer,
    JsonDropSource,
    NewsConfig,
    RssSource,
    ScoredHeadline,
    Sentiment,
    SymbolMapper,
    aggregate_sentiment,
    dedupe_headlines,
    fetch_news,
    news_sentiment,
    parse_feed,
    score_headlines,
    source_from_spec,
)
from xray_core.errors import ConfigError
from xray_sim.news.feed import ATOM_OUTLET, RSS_OUTLET, RunningFeed, start_fake_feed

END_MS = 1_767_225_600_000  # 2026-01-01T00:00Z: feeds end here so every run serves the same news
T0 = 1_767_052_800_000  # 2025-12-30T00:00Z, for hand-built headlines
UNIVERSE = ("BTC/USDT", "ETH/USDT", "SOL/USDT", "OP/USDT", "UNI/USDT")


@pytest.fixture(scope="module")
def feed():
    with start_fake_feed(seed=11, symbols=UNIVERSE, days=3, per_day=30, end_ms=END_MS, malformed=2,
                         slow_s=3.0) as running:
        yield running


def dated(feed: RunningFeed, where: str) -> list:
    return [i for i in feed.items if i.published_ms is not None and getattr(i, f"in_{where}")]


def closed_port() -> int:
    """A loopback port nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def at(hours: float, minutes: float = 0) -> int:
    return int(T0 + hours * HOUR_MS + minutes * 60_000)


# --- sources ---------------------------------------------------------------------------------------------

def test_rss_and_atom_are_read_over_http_with_dates_titles_and_plain_text_summaries(feed):
    for url, where, outlet in ((feed.rss_url, "rss", RSS_OUTLET), (feed.atom_url, "atom", ATOM_OUTLET)):
        headlines, report = fetch_news([RssSource(url)])
        expected = dated(feed, where)
        assert {(h.published_ms, h.title) for h in headlines} == {(i.published_ms, i.title) for i in expected}
        assert all(h.source == outlet and h.url.startswith(feed.base_url) for h in headlines)
        assert all(h.summary and "<" not in h.summary and "&#39;" not in h.summary for h in headlines)
        assert [h.published_ms for h in headlines] == sorted(h.published_ms for h in headlines)
        assert report.sources[0].n_headlines == len(expected)
        assert report.sources[0].source == url  # unnamed sources are reported by their URL


def test_entries_without_a_date_are_skipped_and_reported_without_failing_the_feed(feed):
    _, report = fetch_news([RssSource(feed.rss_url)])
    (source,) = report.sources
    assert source.status == "partial"
    assert source.n_skipped == feed.config.malformed == 2
    assert source.n_entries == source.n_headlines + 2
    assert all("no publication date" in reason for reason in source.errors)


def test_syndicated_stories_count_once_across_feeds(feed):
    headlines, report = fetch_news([RssSource(feed.rss_url), RssSource(feed.atom_url)])
    in_both = [i for i in dated(feed, "rss") if i.in_atom]
    assert in_both, "the fake feed syndicates every fourth story to both outlets"
    assert len(headlines) == report.n_headlines == len([i for i in feed.items if i.published_ms is not None])
    assert report.n_duplicates == len(in_both)


def test_a_json_drop_file_or_directory_becomes_headlines(tmp_path):
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "a.json").write_text(json.dumps([
        {"published": "2025-12-30T10:15:00Z", "title": "Bitcoin &amp; Ether rally", "summary": "<p>Up</p>",
         "source": "Desk", "url": "https://news.example/1"},
        {"published": "2025-12-30T12:00:00+02:00", "title": "Solana upgrade ships"},  # 10:00Z
        {"published": "2025-12-30T11:00:00", "title": "Naive times are UTC"},
        {"title": "No date"},
        {"published": "yesterday", "title": "Bad date"},
        {"published": "2025-12-30T11:00:00Z", "title": "  "},
    ]))
    (drop / "b.json").write_text("[{not json")
    (drop / "notes.txt").write_text("ignored")
    headlines, report = fetch_news([JsonDropSource(drop)])
    assert [(h.published_ms, h.title) for h in headlines] == [
        (at(10), "Solana upgrade ships"),
        (at(10, 15), "Bitcoin & Ether rally"),
        (at(11), "Naive times are UTC"),
    ]
    assert headlines[1] == Headline(at(10, 15), "Bitcoin & Ether rally", "Up", "Desk", "https://news.example/1")
    assert headlines[0].source == "drop"  # entries without a source take the drop's name
    (source,) = report.sources
    assert (source.status, source.n_entries, source.n_headlines, source.n_skipped) == ("partial", 6, 3, 4)
    assert any("b.json: malformed JSON" in e for e in source.errors)
    assert any("not ISO-8601" in e for e in source.errors)


def test_broken_sources_are_reported_with_a_reason_while_the_others_succeed(feed, tmp_path):
    (tmp_path / "bad.json").write_text('{"title": "an object, not a list"}')
    (tmp_path / "garbled.json").write_text("[1, 2")
    sources = [
        RssSource(feed.rss_url, name="good"),
        RssSource(feed.status_url(500), name="http500"),
        RssSource(feed.malformed_url, name="malformed"),
        RssSource(feed.slow_url, name="slow", timeout_s=0.3),
        RssSource(f"http://127.0.0.1:{closed_port()}/rss.xml", name="closed", timeout_s=2),
        RssSource(feed.base_url + "/", name="not-a-feed"),
        JsonDropSource(tmp_path / "missing.json"),
        JsonDropSource(tmp_path / "bad.json"),
        JsonDropSource(tmp_path / "garbled.json"),
    ]
    headlines, report = fetch_news(sources)
    assert len(headlines) == len(dated(feed, "rss"))
    assert report.by_source("good").status == "partial"  # its two undated entries
    reasons = {r.source: r.errors[0] for r in report.failed}
    assert set(reasons) == {s.label for s in sources[1:]}
    assert reasons["http500"] == "HTTP 500 Internal Server Error"
    assert reasons["malformed"].startswith("malformed XML at line ")
    assert reasons["slow"] == "timed out after 0.3 s"
    assert reasons["closed"].startswith("unreachable")
    assert reasons["not-a-feed"] == "HTTP 404 Not Found"
    assert reasons["missing.json"].startswith("no such file")
    assert "expected a JSON list" in reasons["bad.json"]
    assert "malformed JSON" in reasons["garbled.json"]
    assert not report.ok and "good [partial]" in report.summary()


def test_a_feed_told_to_fail_fails_until_healed(feed):
    feed.fail("/atom.xml", 503)
    try:
        _, report = fetch_news([RssSource(feed.atom_url)])
        assert report.sources[0].errors == ("HTTP 503 Service Unavailable",)
    finally:
        feed.heal()
    headlines, _ = fetch_news([RssSource(feed.atom_url)])
    assert headlines and feed.hits("/atom.xml") >= 2


def test_a_feed_body_is_parsed_as_a_document_never_as_a_file_name(feed, tmp_path):
    body = urllib.request.urlopen(feed.atom_url, timeout=5).read()
    headlines, report = parse_feed(body)
    assert len(headlines) == len(dated(feed, "atom")) and {h.source for h in headlines} == {ATOM_OUTLET}
    saved = tmp_path / "atom.xml"
    saved.write_bytes(body)
    # a server answering with a local path must not make feedparser read that file
    headlines, report = parse_feed(str(saved).encode())
    assert headlines == [] and report.status == "failed" and "malformed XML at line" in report.errors[0]


def test_source_config_rejects_what_cannot_be_fetched():
    with pytest.raises(ConfigError, match="not an http"):
        RssSource("ftp://example.com/feed")
    with pytest.raises(ConfigError, match="timeout"):
        RssSource("https://example.com/feed", timeout_s=0)
    assert source_from_spec("https://x.example/rss") == RssSource("https://x.example/rss")
    assert source_from_spec("/data/news") == JsonDropSource(Path("/data/news"))


def test_dedupe_keeps_the_earliest_copy_of_a_story():
    first = Headline(at(10, 5), "Bitcoin hits $100k!", source="A", url="https://a.example/1")
    same_url = Headline(at(10, 30), "Bitcoin reaches 100k", source="B", url="HTTPS://A.EXAMPLE/1/#top")
    same_title_same_hour = Headline(at(10, 50), "bitcoin HITS $100k", source="C", url="https://c.example/9")
    same_title_next_hour = Headline(at(11, 1), "Bitcoin hits $100k!", source="D", url="https://d.example/2")
    different = Headline(at(10, 40), "Ether hits $5k", source="A", url="https://a.example/2")
    kept = dedupe_headlines([same_title_next_hour, same_title_same_hour, different, same_url, first])
    assert kept == [first, different, same_title_next_hour]


# --- symbols ---------------------------------------------------------------------------------------------

MAPPER = SymbolMapper([*UNIVERSE, "BTC/USDC", "ONE/USDT", "LINK/USDT", "NEAR/USDT", "AI/USDT", "S/USDT",
                       "BCH/USDT", "XLM/USDT"], {"ONE": "Harmony"})


@pytest.mark.parametrize(("title", "assets"), [
    ("Bitcoin tops $100k for the first time", ("BTC",)),
    ("bitcoin dips below 90k", ("BTC",)),
    ("Ethereum's Pectra upgrade goes live", ("ETH",)),
    ("$eth breaks out while #SOL lags", ("ETH", "SOL")),
    ("BTC/USDT funding flips negative", ("BTC",)),
    ("BTC-USD slides in Asian hours", ("BTC",)),
    ("ETH and SOL rally; BTC flat", ("BTC", "ETH", "SOL")),
    ("OP jumps after Optimism Superchain news", ("OP",)),
    ("Uniswap fee switch vote passes", ("UNI",)),
    ("ONE and UNI rally", ("ONE", "UNI")),
    ("BTC HITS NEW HIGH", ("BTC",)),
    ("Stellar (XLM) and Harmony jump", ("ONE", "XLM")),
    ("Bitcoin Cash forks again", ("BCH",)),
    ("$S surges after rebrand", ("S",)),
])
def test_tickers_cashtags_and_names_map_to_base_assets(title, assets):
    assert MAPPER.assets(title) == assets


@pytest.mark.parametrize("title", [
    "One more thing before the weekend",
    "Link in bio: our weekly newsletter",
    "Near-term outlook is murky",
    "ONE MORE WEEK OF VOLATILITY",  # all caps: common-word tickers only as cashtags
    "S&P 500 rallies as U.S. stocks rise",  # single-letter tickers only as cashtags
    "AI tokens rally on chip earnings",  # tickers that are everyday abbreviations: cashtags only
    "btc and eth in lower case are not tickers",
    "WBTC supply grows on layer-2s",  # a ticker inside a longer token
    "optimism grows among investors",  # a name that is a word: only as written ("Optimism")
    "harmony in the markets",
    "DOT.com sale and the dot-com bubble",
])
def test_common_words_are_not_mistaken_for_tickers(title):
    assert MAPPER.assets(title) == ()


@pytest.mark.parametrize(("title", "assets"), [
    ("Crypto market slumps after hot CPI print", (MARKET,)),
    ("Fed holds rates; Bitcoin steady", (MARKET, "BTC")),
    ("Altcoins surge as total market cap climbs", (MARKET,)),
    ("fed up with fees, the sec-ond wallet moved", ()),  # "Fed" and "SEC" are case-sensitive
])
def test_market_wide_news_maps_to_the_star_pseudo_symbol(title, assets):
    assert MAPPER.assets(title) == tuple(sorted(assets))


def test_assets_expand_to_every_universe_symbol_with_that_base():
    assert MAPPER.symbols("Bitcoin and the Fed") == ("*", "BTC/USDC", "BTC/USDT")
    with pytest.raises(ConfigError, match="empty"):
        SymbolMapper([])
    with pytest.raises(ConfigError, match="no base asset"):
        SymbolMapper(["/USDT"])


# --- scoring ---------------------------------------------------------------------------------------------

SCORER = HeadlineScorer(mapper=MAPPER)


@pytest.mark.parametrize("title", [
    "Bitcoin surges to record high as ETF inflows soar",
    "SEC approves spot ETF for Ethereum",
    "Analysts turn bullish on Solana after successful upgrade",
    "BTC hits ATH as shorts get squeezed",
])
def test_clearly_good_news_scores_positive(title):
    assert SCORER.score(title).compound > 0.3


@pytest.mark.parametrize("title", [
    "Exchange hacked, $200M drained in exploit",
    "Project rug pull leaves investors with nothing",
    "Major exchange to delist UNI amid fraud probe",
    "Traders liquidated as BTC crashes",
    "Solana network outage halts trading",
])
def test_clearly_bad_news_scores_negative(title):
    assert SCORER.score(title).compound < -0.3


def test_the_crypto_lexicon_is_what_reads_market_jargon():
    plain = HeadlineScorer(crypto_lexicon=False)
    assert plain.score("Bitcoin surges to record high as ETF inflows soar").compound == 0.0
    assert SCORER.score("Ethereum developers publish roadmap").compound == 0.0
    custom = HeadlineScorer(extra_lexicon={"halving": 1.5, "fee switch": 2.0})
    assert custom.score("Fee switch on").compound > 0  # phrases become single lexicon tokens


def test_coin_names_that_are_words_do_not_carry_sentiment():
    assert HeadlineScorer().score("Harmony schedules community call").compound > 0  # "harmony" is positive
    assert SCORER.score("Harmony schedules community call").compound == 0.0  # but it is ONE here


def test_a_summary_counts_half_as_much_as_the_title():
    title, summary = "Bitcoin surges", "Traders were worried as losses mounted."
    t, s = SCORER.score(title), SCORER.score(summary)
    both = SCORER.score(title, summary)
    assert both.compound == pytest.approx((t.compound + 0.5 * s.compound) / 1.5)
    assert both.negative == pytest.approx(0.5 * s.negative / 1.5)


def test_every_fake_feed_story_maps_and_scores_as_generated(feed):
    mapper = SymbolMapper(UNIVERSE)
    scorer = HeadlineScorer(mapper=mapper)
    for item in (i for i in feed.items if i.published_ms is not None):
        assert mapper.assets(item.title) == item.assets, item.title
        expected = {"bullish": 1, "bearish": -1, "neutral": 0}[item.tone]
        assert scorer.score(item.title).label == expected, item.title


# --- aggregation -----------------------------------------------------------------------------------------

def scored(published_ms: int, compound: float, *symbols: str) -> ScoredHeadline:
    return ScoredHeadline(Headline(published_ms, f"h{published_ms}-{compound}"), symbols or ("BTC/USDT",),
                          Sentiment(compound, max(compound, 0), max(-compound, 0)))


def test_one_row_per_symbol_and_hour_with_counts_means_and_polarity():
    items = [scored(at(0, 10), 0.8), scored(at(0, 50), -0.4), scored(at(0, 55), 0.0, "BTC/USDT", "*"),
             scored(at(2, 0), -0.6, "ETH/USDT")]
    frame = aggregate_sentiment(items, symbols=["BTC/USDT", "ETH/USDT", "*"])
    assert dict(frame.schema) == dict(NEWS_SCHEMA)
    assert frame.height == 3 * 3  # three symbols, hours 0..2, quiet hours included
    btc = frame.filter(pl.col("symbol") == "BTC/USDT")
    assert btc["hour"].dt.epoch("ms").to_list() == [at(0), at(1), at(2)]
    assert btc["n_headlines"].to_list() == [3, 0, 0]
    assert btc["sentiment_mean"].to_list() == [pytest.approx(0.4 / 3), None, None]
    assert (btc["positive"].to_list(), btc["negative"].to_list()) == ([1, 0, 0], [1, 0, 0])
    eth = frame.filter(pl.col("symbol") == "ETH/USDT")
    assert eth["n_headlines"].to_list() == [0, 0, 1]
    assert eth["sentiment_decayed"].to_list()[:2] == [0.0, 0.0]  # no news yet reads as neutral
    assert frame["symbol"].to_list() == sorted(frame["symbol"].to_list())


def test_decayed_sentiment_is_the_recency_weighted_mean_fading_to_zero():
    half_life = 4.0
    items = [scored(at(0, 0), 0.9), scored(at(0, 30), 0.5), scored(at(3, 20), -0.7)]
    frame = aggregate_sentiment(items, half_life_hours=half_life, end_ms=at(30))
    for row in frame.iter_rows(named=True):
        t = int(row["hour"].timestamp() * 1000) + HOUR_MS  # known at the end of its hour
        seen = [(i.headline.published_ms, i.sentiment.compound) for i in items if i.headline.published_ms < t]
        weights = [0.5 ** ((t - p) / (half_life * HOUR_MS)) for p, _ in seen]
        expected = sum(w * c for w, (_, c) in zip(weights, seen, strict=True)) / max(1.0, sum(weights))
        assert row["sentiment_decayed"] == pytest.approx(expected, abs=1e-12)
    single = aggregate_sentiment([scored(at(0, 0), 0.8)], half_life_hours=1.0, end_ms=at(5))
    assert single["sentiment_decayed"].to_list() == pytest.approx([0.4, 0.2, 0.1, 0.05, 0.025, 0.0125])


def test_no_lookahead_later_headlines_never_change_earlier_hours(feed):
    mapper = SymbolMapper(UNIVERSE)
    headlines, _ = fetch_news([RssSource(feed.rss_url), RssSource(feed.atom_url)])
    items = score_headlines(headlines, mapper)
    symbols = [MARKET, *UNIVERSE]
    start = items[0].headline.published_ms
    full = aggregate_sentiment(items, symbols=symbols, start_ms=start, end_ms=END_MS)
    for cutoff in range(start // HOUR_MS * HOUR_MS + HOUR_MS, END_MS, 7 * HOUR_MS):
        known = [i for i in items if i.headline.published_ms < cutoff]  # what existed at the cutoff
        past = aggregate_sentiment(known, symbols=symbols, start_ms=start, end_ms=cutoff - HOUR_MS)
        before = full.filter(pl.col("hour").dt.epoch("ms") < cutoff)
        assert past.equals(before), cutoff
    # and rewriting the future (a different tone for everything after hour h) leaves hour h alone
    h = start // HOUR_MS * HOUR_MS + 30 * HOUR_MS
    rewritten = [ScoredHeadline(i.headline, i.symbols, Sentiment(-i.sentiment.compound, 0, 0))
                 if i.headline.published_ms >= h + HOUR_MS else i for i in items]
    again = aggregate_sentiment(rewritten, symbols=symbols, start_ms=start, end_ms=END_MS)
    cut = pl.col("hour").dt.epoch("ms") <= h
    assert again.filter(cut).equals(full.filter(cut))
    assert not again.equals(full)


def test_aggregation_edge_cases():
    assert aggregate_sentiment([]).equals(pl.DataFrame(schema=dict(NEWS_SCHEMA)))
    quiet = aggregate_sentiment([], symbols=["BTC/USDT"], start_ms=at(0), end_ms=at(2, 59))
    assert quiet["n_headlines"].to_list() == [0, 0, 0]
    with pytest.raises(ConfigError, match="half-life"):
        aggregate_sentiment([scored(at(0), 0.5)], half_life_hours=0)
    with pytest.raises(ConfigError, match="half-life"):
        NewsConfig(half_life_hours=-1)


def test_news_sentiment_end_to_end_over_the_fake_feed(feed):
    sources = [RssSource(feed.rss_url), RssSource(feed.atom_url), RssSource(feed.status_url(502))]
    frame, report = news_sentiment(sources, UNIVERSE, config=NewsConfig(half_life_hours=3))
    assert [s.status for s in report.sources] == ["partial", "partial", "failed"]
    assert set(frame["symbol"].unique()) == {MARKET, *UNIVERSE}
    counts = dict(frame.group_by("symbol").agg(pl.col("n_headlines").sum()).iter_rows())
    stories = [i for i in feed.items if i.published_ms is not None]
    for symbol in (MARKET, *UNIVERSE):
        asset = symbol.split("/")[0]
        assert counts[symbol] == sum(asset in i.assets for i in stories), symbol
    assert frame["sentiment_decayed"].is_between(-1, 1).all()
    assert frame.group_by("symbol").len()["len"].n_unique() == 1  # every symbol covers the same hours
