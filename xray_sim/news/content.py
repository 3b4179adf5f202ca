"""What the fake news feed serves: generated crypto stories and their RSS 2.0, Atom and JSON renderings.

Pure and deterministic (a seed and an end time give the same stories, byte for byte), so tests can
hold the ground truth (`FeedItem.assets`, `FeedItem.tone`) next to what a reader parsed. The server
that publishes it is `xray_sim.news.feed`.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Literal
from xml.sax.saxutils import escape, quoteattr

from xray_core.analysis.news_symbols import DEFAULT_NAMES, MARKET, base_of
from xray_core.errors import ConfigError

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
RSS_OUTLET = "Fake Crypto Wire"
ATOM_OUTLET = "Fake Ledger Times"
DEFAULT_FEED_SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT")
# Relative publishing activity per UTC hour: quiet nights, busy US/EU overlap.
HOUR_WEIGHTS = (0.3, 0.3, 0.3, 0.3, 0.4, 0.5, 0.7, 0.9, 1.0, 1.0, 1.0, 1.1,
                1.3, 1.5, 1.6, 1.6, 1.5, 1.4, 1.2, 1.0, 0.8, 0.6, 0.5, 0.4)

Tone = Literal["bullish", "bearish", "neutral"]
ASSET_TEMPLATES: Mapping[Tone, tuple[str, ...]] = {
    "bullish": (
        "{name} surges {pct}% as ETF inflows hit a record",
        "{ticker} breaks out to a new all-time high",
        "Analysts turn bullish on {name} after successful network upgrade",
        "{name} rallies as institutional adoption grows",
        "Whales accumulate {ticker} as price rebounds strongly",
        "{name} and {name2} soar as traders cheer ETF approval",
    ),
    "bearish": (
        "{name} plunges {pct}% after exchange hack",
        "{ticker} liquidations top ${m}M as price crashes",
        "Major exchange to delist {ticker} amid fraud probe",
        "{name} slumps as bearish traders pile in",
        "{name} lending protocol exploited, ${m}M drained",
        "{name} and {name2} tumble in sharp sell-off",
    ),
    "neutral": (
        "{name} developers publish quarterly roadmap",
        "What to watch for {ticker} this week",
        "{name} foundation schedules community call for {weekday}",
    ),
}
MARKET_TEMPLATES: Mapping[Tone, tuple[str, ...]] = {
    "bullish": ("Crypto market rallies as Fed signals rate cuts",
                "Altcoins surge as total market cap climbs to a record high",
                "Crypto market rebounds strongly as inflation cools"),
    "bearish": ("Crypto market slumps after hot CPI print",
                "SEC crackdown sends crypto market into a sharp selloff",
                "Crypto market plunges as liquidations top ${m}M"),
    "neutral": ("Fed minutes due on {weekday}: what crypto traders watch",),
}
SUMMARIES: Mapping[Tone, str] = {
    "bullish": "<p>Traders were upbeat, with buyers <b>stepping in</b> across venues.</p>",
    "bearish": "<p>Traders were worried as sellers dominated and losses mounted.</p>",
    "neutral": "<p>Details were published on the project&#39;s blog.</p>",
}
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")


@dataclass(frozen=True, slots=True)
class FeedItem:
    """One generated story: the ground truth tests compare against."""

    id: str
    published_ms: int | None  # None: a malformed entry without a date
    title: str
    summary: str  # HTML, as feeds carry it
    assets: tuple[str, ...]  # base tickers named, "*" for market-wide news
    tone: Tone
    in_rss: bool
    in_atom: bool


@dataclass(frozen=True, slots=True)
class FeedConfig:
    """What the fake server generates and how it misbehaves."""

    seed: int = 7
    symbols: tuple[str, ...] = DEFAULT_FEED_SYMBOLS
    names: Mapping[str, str] = field(default_factory=dict)  # base → full name; DEFAULT_NAMES fill gaps
    days: float = 7.0
    per_day: int = 24  # stories per day across both outlets
    end_ms: int | None = None  # newest possible publication time; default: now, floored to the hour
    malformed: int = 0  # undated entries added to each feed
    slow_s: float = 5.0  # delay of /slow.xml
    host: str = "127.0.0.1"
    port: int = 0  # 0: any free port

    def __post_init__(self) -> None:
        if not self.symbols:
            raise ConfigError("the fake feed needs at least one symbol")
        if self.days <= 0 or self.per_day < 1 or self.malformed < 0 or self.slow_s < 0:
            raise ConfigError("fake feed days, per_day, malformed and slow_s must be positive")


def generate_items(config: FeedConfig) -> tuple[FeedItem, ...]:
    """The feed's stories, newest first; a pure function of the config (and of `end_ms`)."""
    end_ms = config.end_ms if config.end_ms is not None else int(time.time() * 1000) // HOUR_MS * HOUR_MS
    rng = random.Random(config.seed)
    bases = list(dict.fromkeys(base_of(s) for s in config.symbols))
    names = {b: config.names.get(b) or DEFAULT_NAMES.get(b) or b.title() for b in bases}
    span_ms = int(config.days * DAY_MS)
    stamps: list[int] = []
    while len(stamps) < max(1, round(config.days * config.per_day)):
        stamp = (end_ms - rng.randrange(span_ms)) // 1000 * 1000  # whole seconds, as RFC 822 dates are
        if rng.random() * max(HOUR_WEIGHTS) < HOUR_WEIGHTS[stamp // HOUR_MS % 24]:
            stamps.append(stamp)
    items: list[FeedItem] = []
    seen: set[tuple[str, int]] = set()  # two stories never share a title within an hour
    for index, stamp in enumerate(sorted(stamps, reverse=True)):
        for attempt in range(1000):
            tone, title, assets = _story(rng, bases, names)
            title = f"{title} (update {attempt})" if attempt >= 50 else title  # a very dense feed
            if (title, stamp // HOUR_MS) not in seen:
                break
        seen.add((title, stamp // HOUR_MS))
        items.append(FeedItem(f"n{config.seed}-{index:05d}", stamp, title, SUMMARIES[tone], assets, tone,
                              in_rss=index % 4 != 3, in_atom=index % 4 in (2, 3)))
    for extra in range(config.malformed):
        items.append(FeedItem(f"n{config.seed}-undated-{extra}", None, f"Undated wire item {extra + 1}",
                              SUMMARIES["neutral"], (), "neutral", in_rss=True, in_atom=True))
    return tuple(items)


def _story(rng: random.Random, bases: Sequence[str],
           names: Mapping[str, str]) -> tuple[Tone, str, tuple[str, ...]]:
    """One random story: its tone, title and the assets it names ("*" for market-wide)."""
    tone: Tone = rng.choices(("bullish", "bearish", "neutral"), weights=(4, 4, 2))[0]
    fill = {"pct": rng.randint(4, 28), "m": rng.choice((35, 80, 120, 250, 600)),
            "weekday": rng.choice(WEEKDAYS)}
    if rng.random() < 0.2:
        return tone, rng.choice(MARKET_TEMPLATES[tone]).format(**fill), (MARKET,)
    template = rng.choice(ASSET_TEMPLATES[tone])
    first = rng.choice(bases)
    others = [b for b in bases if b != first]
    if "{name2}" in template and not others:
        template = ASSET_TEMPLATES[tone][0]
    second = rng.choice(others) if others else first
    title = template.format(name=names[first], name2=names[second], ticker=first, **fill)
    return tone, title, tuple(sorted({first, second})) if "{name2}" in template else (first,)


def _rfc3339(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def render_rss(items: Sequence[FeedItem], base_url: str) -> str:
    """RSS 2.0: RFC 822 dates, HTML summaries escaped in <description>."""
    entries = []
    for item in (i for i in items if i.in_rss):
        date = (f"<pubDate>{format_datetime(datetime.fromtimestamp(item.published_ms / 1000, UTC))}</pubDate>"
                if item.published_ms is not None else "")
        entries.append(f"<item><title>{escape(item.title)}</title><link>{base_url}/rss/items/{item.id}</link>"
                       f"<guid isPermaLink=\"false\">{item.id}</guid>{date}"
                       f"<description>{escape(item.summary)}</description></item>")
    return ("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<rss version=\"2.0\"><channel>"
            f"<title>{RSS_OUTLET}</title><link>{base_url}/</link>"
            "<description>Generated crypto news</description>"
            + "\n".join(entries) + "</channel></rss>\n")


def render_atom(items: Sequence[FeedItem], base_url: str) -> str:
    """Atom 1.0: RFC 3339 dates in <published> and <updated>, HTML summaries typed as html."""
    shown = [i for i in items if i.in_atom]
    newest = max((i.published_ms for i in shown if i.published_ms is not None), default=0)
    entries = []
    for item in shown:
        dates = (f"<published>{_rfc3339(item.published_ms)}</published><updated>{_rfc3339(item.published_ms)}"
                 "</updated>" if item.published_ms is not None else "")
        link = quoteattr(f"{base_url}/atom/items/{item.id}")
        entries.append(f"<entry><id>urn:xray:{item.id}</id><title>{escape(item.title)}</title>"
                       f"<link href={link}/>{dates}"
                       f"<summary type=\"html\">{escape(item.summary)}</summary></entry>")
    return ("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">"
            f"<title>{ATOM_OUTLET}</title><id>urn:xray:fake-ledger</id><updated>{_rfc3339(newest)}</updated>"
            f"<link href={quoteattr(base_url + '/')}/>" + "\n".join(entries) + "</feed>\n")


def render_json(items: Sequence[FeedItem], base_url: str) -> str:
    """The JSON-drop format; undated items simply lack "published"."""
    records: list[dict[str, str]] = []
    for item in items:
        record = {"title": item.title, "summary": item.summary, "source": RSS_OUTLET,
                  "url": f"{base_url}/rss/items/{item.id}"}
        if item.published_ms is not None:
            record["published"] = _rfc3339(item.published_ms)
        records.append(record)
    return json.dumps(records, indent=1)
