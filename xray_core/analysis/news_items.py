"""News items kept in the lake with the time X-Ray first saw them, so past sentiment never changes.

Feeds return what they hold *now*: the latest few dozen items, sometimes an old story published late,
sometimes a story withdrawn. Recomputing sentiment from whatever they return would rewrite the past
between runs (training rows and backtests would change under a model already trained on them), and
would let a late-published story into hours when nobody could have read it.

So every fetched item is merged into the stored ones (`accumulate`): an item already stored (same
normalized URL, or same normalized title in the same publication hour — `dedupe_headlines`' identity)
keeps its stored row; a new one is stored with `first_seen_ms` = now. Its `available_ms`, the time it
counts from in the sentiment, is max(published, first seen): news counts from when it could have been
read here. The one exception is the very first fetch (nothing stored yet): it backfills at the
publication times, as there is no earlier record to stay consistent with. Items are never dropped.

Sentiment rows are then computed from the stored items at their `available_ms`, and only for hours
that have ended (`last_closed_hour`): a row, once written, is final. An item first seen at t only
feeds hours ending after t, all of them later than any row written before t.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from xray_core.analysis.news_sources import HOUR_MS, Headline, normalize_title, normalize_url

ITEMS_SCHEMA: dict[str, pl.DataType] = {
    "published_ms": pl.Int64(),
    "first_seen_ms": pl.Int64(),
    "available_ms": pl.Int64(),
    "title": pl.String(),
    "summary": pl.String(),
    "source": pl.String(),
    "url": pl.String(),
}


def _keys(published_ms: int, title: str, url: str) -> tuple[str, tuple[str, int]]:
    return normalize_url(url), (normalize_title(title), published_ms // HOUR_MS)


def accumulate(stored: pl.DataFrame, fetched: Sequence[Headline], now_ms: int) -> tuple[pl.DataFrame, int]:
    """`stored` (ITEMS_SCHEMA; may be empty) plus the fetched items not stored yet; returns the
    merged items (sorted by available time) and how many were new."""
    stored = stored.select(list(ITEMS_SCHEMA)) if stored.height else pl.DataFrame(schema=ITEMS_SCHEMA)
    urls: set[str] = set()
    titles: set[tuple[str, int]] = set()
    for published, title, url in stored.select("published_ms", "title", "url").iter_rows():
        url_key, title_key = _keys(published, title, url)
        if url_key:
            urls.add(url_key)
        titles.add(title_key)
    backfill = not stored.height
    new = []
    for item in sorted(fetched, key=lambda h: (h.published_ms, h.source, h.title, h.url)):
        url_key, title_key = _keys(item.published_ms, item.title, item.url)
        if (url_key and url_key in urls) or title_key in titles:
            continue
        if url_key:
            urls.add(url_key)
        titles.add(title_key)
        available = item.published_ms if backfill else max(item.published_ms, now_ms)
        new.append((item.published_ms, now_ms, available, item.title, item.summary, item.source, item.url))
    added = pl.DataFrame(new, schema=ITEMS_SCHEMA, orient="row")
    merged = pl.concat([stored, added]).sort("available_ms", "published_ms", "title")
    return merged, len(new)


def as_headlines(items: pl.DataFrame) -> list[Headline]:
    """The stored items as headlines dated at the time they count from (`available_ms`)."""
    if not items.height:
        return []
    return [Headline(available, title, summary, source, url) for available, title, summary, source, url
            in items.select("available_ms", "title", "summary", "source", "url").iter_rows()]


def last_closed_hour(now_ms: int) -> int:
    """The start of the newest clock hour that has ended by `now_ms` (the last row that is final)."""
    return now_ms // HOUR_MS * HOUR_MS - HOUR_MS
