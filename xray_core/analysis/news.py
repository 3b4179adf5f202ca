"""The `news_sentiment` feature: headlines → symbols → tone → one row per (symbol, hour).

Pipeline (pure domain code; the Dagster asset only wires it up):

    headlines, report = fetch_news([RssSource(url), JsonDropSource(path)])      # news_sources
    mapper = SymbolMapper(["BTC/USDT", "ETH/USDT"], {"BTC": "Bitcoin"})       # news_symbols
    scored = score_headlines(headlines, mapper, HeadlineScorer(mapper=mapper))  # news_score
    frame = aggregate_sentiment(scored, symbols=mapper_symbols(mapper))

or all at once: `frame, report = news_sentiment(sources, universe, names)`.

The frame (`NEWS_SCHEMA`), sorted by symbol then hour, has a row for every symbol (and the market
pseudo-symbol "*") and every hour of the range, including hours without news:

- `hour`: the start of the clock hour, like a candle's open time. The row summarises headlines
  published in [hour, hour + 1h) and is known at hour + 1h, like the candle's close: join it on the
  candle's open time and use it where the close may be used.
- `n_headlines`, `sentiment_mean` (mean compound; null without headlines), `positive`/`negative`
  (how many headlines scored compound ≥ 0.05 / ≤ −0.05, VADER's thresholds).
- `sentiment_decayed`: at t = hour + 1h, over this symbol's headlines i published before t,
  `Σ cᵢ·wᵢ / max(1, Σ wᵢ)` with `wᵢ = 2^(−(t − pᵢ)/half_life)`. With plenty of recent news this is
  their recency-weighted mean compound; as news goes quiet it fades towards 0 (a single headline
  counts half after one half-life), so "no news" reads as neutral rather than as the last tone heard.
  It uses only headlines published before the end of its hour, so appending later headlines never
  changes an earlier row (no lookahead).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import polars as pl

from xray_core.analysis.news_score import POSITIVE_THRESHOLD, HeadlineScorer, Sentiment
from xray_core.analysis.news_sources import (
    HOUR_MS,
    FetchReport,
    Headline,
    JsonDropSource,
    NewsSource,
    RssSource,
    SourceReport,
    dedupe_headlines,
    fetch_news,
    parse_feed,
    source_from_spec,
)
from xray_core.analysis.news_symbols import MARKET, SymbolMapper
from xray_core.errors import ConfigError

__all__ = [
    "HOUR_MS", "MARKET", "NEWS_SCHEMA", "FetchReport", "Headline", "HeadlineScorer", "JsonDropSource",
    "NewsConfig", "NewsSource", "RssSource", "ScoredHeadline", "Sentiment", "SourceReport", "SymbolMapper",
    "aggregate_sentiment", "dedupe_headlines", "fetch_news", "mapper_symbols", "news_sentiment",
    "parse_feed", "score_headlines", "sentiment_of", "source_from_spec",
]

NEWS_SCHEMA: Mapping[str, pl.DataType] = {
    "symbol": pl.String(),
    "hour": pl.Datetime("ms", "UTC"),
    "n_headlines": pl.Int64(),
    "sentiment_mean": pl.Float64(),
    "sentiment_decayed": pl.Float64(),
    "positive": pl.Int64(),
    "negative": pl.Int64(),
}


@dataclass(frozen=True, slots=True)
class NewsConfig:
    """Knobs of the feature; the defaults are what the pipeline uses."""

    half_life_hours: float = 6.0  # how fast old news stops counting in sentiment_decayed
    summary_weight: float = 0.5  # summary's weight next to the title's 1.0 in a headline's score
    map_summaries: bool = False  # look for assets in summaries too (more recall, less precision)
    crypto_lexicon: bool = True
    max_workers: int = 8  # feeds fetched at once

    def __post_init__(self) -> None:
        if not (math.isfinite(self.half_life_hours) and self.half_life_hours > 0):
            raise ConfigError(f"news half-life {self.half_life_hours} h must be a positive number of hours")
        if self.max_workers < 1:
            raise ConfigError(f"news max_workers {self.max_workers} must be at least 1")


@dataclass(frozen=True, slots=True)
class ScoredHeadline:
    """A headline with the universe symbols it is about ("*" for market-wide) and its tone."""

    headline: Headline
    symbols: tuple[str, ...]
    sentiment: Sentiment


def mapper_symbols(mapper: SymbolMapper) -> tuple[str, ...]:
    """Every universe symbol plus "*": the rows a dense sentiment frame should have."""
    return (MARKET, *sorted({s for b in mapper.bases for s in mapper.symbols_of(b)}))


def score_headlines(headlines: Sequence[Headline], mapper: SymbolMapper, scorer: HeadlineScorer | None = None,
                    *, map_summaries: bool = False) -> list[ScoredHeadline]:
    """Map and score each headline; headlines about no symbol of the universe (nor the market) are
    dropped, since they cannot feed any row."""
    scorer = scorer or HeadlineScorer(mapper=mapper)
    scored: list[ScoredHeadline] = []
    for headline in headlines:
        text = f"{headline.title}\n{headline.summary}" if map_summaries else headline.title
        symbols = mapper.symbols(text)
        if symbols:
            scored.append(ScoredHeadline(headline, symbols, scorer.score(headline.title, headline.summary)))
    return scored


def _floor_hour(ms: int) -> int:
    return ms // HOUR_MS * HOUR_MS


def aggregate_sentiment(scored: Sequence[ScoredHeadline], *, half_life_hours: float = 6.0,
                        symbols: Sequence[str] | None = None, start_ms: int | None = None,
                        end_ms: int | None = None) -> pl.DataFrame:
    """One row per (symbol, hour) from the hour of `start_ms` to the hour of `end_ms` inclusive
    (default: the first and last headline's hours), for `symbols` (default: those in `scored`).

    Headlines before `start_ms` do not get rows but still feed `sentiment_decayed`; headlines after
    the last hour are ignored. See the module docstring for the columns."""
    if not (math.isfinite(half_life_hours) and half_life_hours > 0):
        raise ConfigError(f"news half-life {half_life_hours} h must be a positive number of hours")
    by_symbol: dict[str, list[tuple[int, float]]] = {}
    for item in scored:
        for symbol in item.symbols:
            by_symbol.setdefault(symbol, []).append((item.headline.published_ms, item.sentiment.compound))
    wanted = sorted(by_symbol) if symbols is None else sorted(dict.fromkeys(symbols))
    times = [item.headline.published_ms for item in scored]
    if not wanted or (not times and (start_ms is None or end_ms is None)):
        return pl.DataFrame(schema=dict(NEWS_SCHEMA))
    first = _floor_hour(start_ms if start_ms is not None else min(times))
    last = _floor_hour(end_ms if end_ms is not None else max(times))
    if last < first:
        raise ConfigError("news aggregation ends before it starts", f"start {start_ms} ms, end {end_ms} ms")
    n_hours = (last - first) // HOUR_MS + 1
    columns: dict[str, list[object]] = {name: [] for name in NEWS_SCHEMA}
    for symbol in wanted:
        _symbol_rows(sorted(by_symbol.get(symbol, [])), symbol, first, n_hours, half_life_hours, columns)
    schema = dict(NEWS_SCHEMA) | {"hour": pl.Int64()}  # epoch ms, cast below
    frame = pl.DataFrame(columns, schema=schema)
    return frame.with_columns(pl.col("hour").cast(pl.Datetime("ms", "UTC"))).select(list(NEWS_SCHEMA))


def _symbol_rows(events: list[tuple[int, float]], symbol: str, first: int, n_hours: int,
                 half_life_hours: float, columns: dict[str, list[object]]) -> None:
    """Append one symbol's rows. The decayed sums are carried hour to hour: at each hour's end both
    sums shrink by one hour's decay and the hour's headlines join, decayed from their own time."""
    half_life_ms = half_life_hours * HOUR_MS
    hour_decay = 0.5 ** (HOUR_MS / half_life_ms)
    weighted = weights = 0.0
    i = 0  # next event; events before `first` join in the first hour (decayed) but are not counted
    for hour in range(n_hours):
        start = first + hour * HOUR_MS
        bucket_end = start + HOUR_MS
        weighted *= hour_decay
        weights *= hour_decay
        compounds: list[float] = []
        while i < len(events) and events[i][0] < bucket_end:
            published, compound = events[i]
            w = 0.5 ** ((bucket_end - published) / half_life_ms)
            weighted += compound * w
            weights += w
            if published >= start:
                compounds.append(compound)
            i += 1
        columns["symbol"].append(symbol)
        columns["hour"].append(start)
        columns["n_headlines"].append(len(compounds))
        columns["sentiment_mean"].append(sum(compounds) / len(compounds) if compounds else None)
        columns["sentiment_decayed"].append(weighted / max(1.0, weights))
        columns["positive"].append(sum(c >= POSITIVE_THRESHOLD for c in compounds))
        columns["negative"].append(sum(c <= -POSITIVE_THRESHOLD for c in compounds))


def news_sentiment(sources: Sequence[NewsSource], universe: Sequence[str],
                   names: Mapping[str, str | Sequence[str]] | None = None,
                   config: NewsConfig | None = None, *, start_ms: int | None = None,
                   end_ms: int | None = None) -> tuple[pl.DataFrame, FetchReport]:
    """Fetch, map, score and aggregate in one call: the frame for every universe symbol and "*",
    and the per-source report (broken sources are in it, not raised)."""
    config = config or NewsConfig()
    headlines, report = fetch_news(sources, max_workers=config.max_workers)
    return sentiment_of(headlines, universe, names, config, start_ms=start_ms, end_ms=end_ms), report


def sentiment_of(headlines: Sequence[Headline], universe: Sequence[str],
                 names: Mapping[str, str | Sequence[str]] | None = None, config: NewsConfig | None = None,
                 *, start_ms: int | None = None, end_ms: int | None = None) -> pl.DataFrame:
    """Map, score and aggregate `headlines` (already fetched, or stored: `news_items`)."""
    config = config or NewsConfig()
    mapper = SymbolMapper(universe, names)
    scorer = HeadlineScorer(summary_weight=config.summary_weight, crypto_lexicon=config.crypto_lexicon,
                            mapper=mapper)
    scored = score_headlines(headlines, mapper, scorer, map_summaries=config.map_summaries)
    return aggregate_sentiment(scored, half_life_hours=config.half_life_hours,
                               symbols=mapper_symbols(mapper), start_ms=start_ms, end_ms=end_ms)
