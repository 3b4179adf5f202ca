"""News items accumulate with their first-seen time: a stored item keeps its row, a new one counts from
when it was first seen (after the first fetch), and sentiment rows already written never change."""

import polars as pl

from xray_core.analysis.news import sentiment_of
from xray_core.analysis.news_items import ITEMS_SCHEMA, accumulate, as_headlines, last_closed_hour
from xray_core.analysis.news_sources import HOUR_MS, Headline

T0 = 1_767_225_600_000  # 2026-01-01 00:00 UTC
UNIVERSE = ["BTC/USDT", "ETH/USDT"]


def _h(hour: float, title: str, url: str = "") -> Headline:
    return Headline(T0 + int(hour * HOUR_MS), title, "", "desk", url)


FIRST = [_h(1.2, "Bitcoin soars to record high", "https://n/1"), _h(3.5, "Ethereum crashes on hack", "https://n/2"),
         _h(5.1, "Bitcoin rally continues", "https://n/3")]


def test_the_first_fetch_backfills_at_publication_times():
    items, new = accumulate(pl.DataFrame(schema=ITEMS_SCHEMA), FIRST, T0 + 6 * HOUR_MS)
    assert new == 3 and items.height == 3
    assert items["available_ms"].to_list() == [h.published_ms for h in FIRST]
    assert set(items["first_seen_ms"]) == {T0 + 6 * HOUR_MS}


def test_items_accumulate_keep_their_first_sighting_and_late_news_counts_from_when_it_was_seen():
    now1, now2 = T0 + 6 * HOUR_MS, T0 + 9 * HOUR_MS + 600_000
    stored, _ = accumulate(pl.DataFrame(schema=ITEMS_SCHEMA), FIRST, now1)
    # The feed moved on: the oldest story rolled off, one is repeated (syndicated under another link),
    # a fresh one appeared, and an old story was published late (dated hour 2, first seen at now2).
    fetched = [FIRST[2], _h(3.5, "Ethereum crashes on hack!", "https://mirror/2"),
               _h(8.5, "Ethereum upgrade succeeds", "https://n/4"), _h(2.0, "Bitcoin ETF approved", "https://n/5")]
    items, new = accumulate(stored, fetched, now2)
    assert new == 2 and items.height == 5  # nothing dropped, nothing twice
    kept = items.filter(pl.col("url").is_in(["https://n/1", "https://n/2", "https://n/3"]))
    assert kept.sort("url").equals(stored.sort("url"))  # stored rows untouched
    late = items.filter(pl.col("url") == "https://n/5").row(0, named=True)
    assert late["published_ms"] == T0 + 2 * HOUR_MS and late["available_ms"] == late["first_seen_ms"] == now2
    fresh = items.filter(pl.col("url") == "https://n/4").row(0, named=True)
    assert fresh["available_ms"] == now2  # published before this run: counts from now on

    # Every hour written by the first run reads the same after the second.
    before = sentiment_of(as_headlines(stored), UNIVERSE, start_ms=T0, end_ms=last_closed_hour(now1))
    after = sentiment_of(as_headlines(items), UNIVERSE, start_ms=T0, end_ms=last_closed_hour(now2))
    assert before.height and after.filter(pl.col("hour") <= before["hour"].max()).equals(before)
    # ... and the new news shows from the hour it was seen in, not its publication hour.
    btc = after.filter(pl.col("symbol") == "BTC/USDT")
    seen_hour = now2 // HOUR_MS * HOUR_MS
    assert last_closed_hour(now2) < seen_hour  # that hour has not ended: no row for it yet
    assert btc.filter(pl.col("hour") == pl.lit(T0 + 2 * HOUR_MS).cast(pl.Datetime("ms", "UTC")))[
        "n_headlines"].item() == 0


def test_only_ended_hours_get_rows():
    assert last_closed_hour(T0 + 5 * HOUR_MS + 1) == T0 + 4 * HOUR_MS
    assert last_closed_hour(T0 + 5 * HOUR_MS) == T0 + 4 * HOUR_MS
