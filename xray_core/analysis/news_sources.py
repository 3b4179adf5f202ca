"""Where headlines come from: RSS/Atom feeds over HTTP and JSON drop files, fetched without letting
one broken source spoil the others.

Why it is built this way:
- Feeds are fetched by `urllib` with a timeout and a size cap and only then handed to feedparser as
  an in-memory stream of the body's bytes; feedparser never opens a URL (or a file) itself, so a
  hung server cannot hang a run and nothing is read that this module did not ask for.
- Every source ends in a `SourceReport` ("ok", "partial" or "failed", with counts and one-line
  reasons) instead of an exception: a news feature that disappears because one outlet returned
  HTTP 500 is worse than one fed by the outlets that answered.
- Headlines are deduplicated because outlets syndicate: the same story arrives under the same URL
  from two feeds, or under the same title from two outlets within the hour. Counting it twice would
  double its weight in the hourly mean.

A JSON drop is a file (or a directory of `*.json` files) holding a list of objects
`{"published": ISO-8601, "title": str, "summary"?: str, "source"?: str, "url"?: str}`; a timestamp
without a zone is read as UTC.
"""

from __future__ import annotations

import calendar
import html
import io
import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import feedparser

from xray_core.errors import ConfigError

HOUR_MS = 3_600_000
MAX_FEED_BYTES = 20 * 1024 * 1024  # a feed larger than this is not a news feed
MAX_ERRORS_PER_SOURCE = 10  # reasons kept per source; the counts stay exact
USER_AGENT = "xray-news/1.0 (+https://github.com/xray)"
# feedparser flags these on feeds that parse fine (a charset declared twice, a text/plain content
# type); only the other bozo exceptions mean the XML itself is broken.
_BENIGN_BOZO = ("CharacterEncodingOverride", "NonXMLContentType")

Status = Literal["ok", "partial", "failed"]


@dataclass(frozen=True, slots=True)
class Headline:
    """One news item: when it was published (UTC epoch ms), what it says, who said it, where."""

    published_ms: int
    title: str
    summary: str = ""
    source: str = ""
    url: str = ""


@dataclass(frozen=True, slots=True)
class RssSource:
    """An RSS 2.0 or Atom feed (feedparser tells them apart) fetched over HTTP(S)."""

    url: str
    name: str = ""  # report label and Headline.source; default: the URL, and the feed's title or host
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"news feed URL {self.url!r} is not an http(s) URL",
                              "give e.g. https://example.com/rss.xml")
        if self.timeout_s <= 0:
            raise ConfigError(f"news feed timeout {self.timeout_s} s must be positive")

    @property
    def label(self) -> str:
        """What reports call this source: its name, else its URL (unique even for one host's feeds)."""
        return self.name or self.url


@dataclass(frozen=True, slots=True)
class JsonDropSource:
    """A JSON file, or a directory whose `*.json` files are read in name order."""

    path: Path
    name: str = ""  # default: the file or directory name

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    @property
    def label(self) -> str:
        return self.name or self.path.name


NewsSource = RssSource | JsonDropSource


def source_from_spec(spec: str) -> NewsSource:
    """`http(s)://…` is a feed, anything else a JSON drop path (for settings and the CLI)."""
    spec = spec.strip()
    if not spec:
        raise ConfigError("empty news source", "give a feed URL or a JSON drop path")
    if spec.startswith(("http://", "https://")):
        return RssSource(spec)
    return JsonDropSource(Path(spec))


@dataclass(frozen=True, slots=True)
class SourceReport:
    """How one source went: `failed` sources contributed nothing, `partial` ones skipped entries."""

    source: str
    location: str
    status: Status
    n_entries: int = 0  # entries the source held
    n_headlines: int = 0  # of those, read into headlines (before deduplication)
    n_skipped: int = 0  # entries without a usable date or title
    errors: tuple[str, ...] = ()
    elapsed_s: float = 0.0

    def line(self) -> str:
        reason = f": {'; '.join(self.errors)}" if self.errors else ""
        return (f"{self.source} [{self.status}] {self.n_headlines}/{self.n_entries} headlines, "
                f"{self.n_skipped} skipped{reason}")


@dataclass(frozen=True, slots=True)
class FetchReport:
    """Per-source outcomes plus what deduplication removed."""

    sources: tuple[SourceReport, ...]
    n_headlines: int  # after deduplication
    n_duplicates: int

    @property
    def failed(self) -> tuple[SourceReport, ...]:
        return tuple(s for s in self.sources if s.status == "failed")

    @property
    def ok(self) -> bool:
        """True when no source failed outright (partial sources still count as working)."""
        return not self.failed

    def by_source(self, label: str) -> SourceReport:
        for report in self.sources:
            if report.source == label:
                return report
        raise KeyError(label)

    def summary(self) -> str:
        head = (f"{self.n_headlines} headlines from {len(self.sources) - len(self.failed)}/"
                f"{len(self.sources)} sources ({self.n_duplicates} duplicates dropped)")
        return "\n".join([head, *(f"  {s.line()}" for s in self.sources)])


class _SourceError(Exception):
    """A whole source is unusable; the message is the one-line reason in its report."""


class _EntryLog:
    """Counts and the first few reasons for entries that were skipped."""

    def __init__(self) -> None:
        self.n_entries = 0
        self.skipped = 0
        self.errors: list[str] = []

    def skip(self, reason: str) -> None:
        self.skipped += 1
        if len(self.errors) < MAX_ERRORS_PER_SOURCE:
            self.errors.append(reason)


def fetch_news(sources: Sequence[NewsSource], *, max_workers: int = 8) -> tuple[list[Headline], FetchReport]:
    """Read every source (feeds concurrently), deduplicate, and report per source.

    Never raises for a broken source: it is marked `failed` with its reason and the others go on.
    Headlines come back sorted by publication time."""
    if not sources:
        return [], FetchReport((), 0, 0)
    with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(sources)))) as pool:
        results = list(pool.map(_read_source, sources))
    collected = [h for headlines, _ in results for h in headlines]
    unique = dedupe_headlines(collected)
    report = FetchReport(tuple(r for _, r in results), len(unique), len(collected) - len(unique))
    return unique, report


def _read_source(source: NewsSource) -> tuple[list[Headline], SourceReport]:
    if isinstance(source, RssSource):
        def read(log: _EntryLog) -> list[Headline]:
            body, content_type = _download(source)
            return _feed_headlines(body, content_type, source.name, urlsplit(source.url).netloc, log)
        return _run(source.label, source.url, read)
    return _run(source.label, str(source.path), lambda log: _read_drop(source, log))


def parse_feed(body: bytes, name: str = "", content_type: str = "") -> tuple[list[Headline], SourceReport]:
    """Headlines of an RSS/Atom document already in hand (an archived or cached body), reported
    like a fetched source; headlines take `name`, else the feed's own title, as their source."""
    return _run(name or "feed", "(bytes)", lambda log: _feed_headlines(body, content_type, name, "feed", log))


def _run(label: str, location: str,
         read: Callable[[_EntryLog], list[Headline]]) -> tuple[list[Headline], SourceReport]:
    """Read one source into headlines and its report; a `_SourceError` fails just this source."""
    started = time.perf_counter()
    log = _EntryLog()
    try:
        headlines = read(log)
    except _SourceError as failure:
        return [], SourceReport(label, location, "failed", log.n_entries, 0, log.skipped,
                                (str(failure), *log.errors), time.perf_counter() - started)
    if not headlines and log.skipped:
        status: Status = "failed"
    else:
        status = "partial" if log.skipped else "ok"
    report = SourceReport(label, location, status, log.n_entries, len(headlines), log.skipped,
                          tuple(log.errors), time.perf_counter() - started)
    return headlines, report


def _download(source: RssSource) -> tuple[bytes, str]:
    accept = "application/rss+xml, application/atom+xml, application/xml;q=0.9, */*;q=0.5"
    request = urllib.request.Request(source.url, headers={"User-Agent": USER_AGENT, "Accept": accept})
    try:
        with urllib.request.urlopen(request, timeout=source.timeout_s) as response:
            body = response.read(MAX_FEED_BYTES + 1)
            content_type = response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as error:
        raise _SourceError(f"HTTP {error.code} {error.reason}") from None
    except urllib.error.URLError as error:
        if isinstance(error.reason, TimeoutError):
            raise _SourceError(f"timed out after {source.timeout_s:g} s") from None
        raise _SourceError(f"unreachable: {error.reason}") from None
    except TimeoutError:
        raise _SourceError(f"timed out after {source.timeout_s:g} s") from None
    except OSError as error:  # connection reset mid-body and the like
        raise _SourceError(f"unreachable: {error}") from None
    if len(body) > MAX_FEED_BYTES:
        raise _SourceError(f"response larger than {MAX_FEED_BYTES // (1024 * 1024)} MiB")
    return body, content_type


def _feed_headlines(body: bytes, content_type: str, name: str, fallback: str,
                    log: _EntryLog) -> list[Headline]:
    """The entries of a feed document as headlines whose source is `name`, else the feed's title,
    else `fallback`."""
    # A stream, not bytes: given bytes, feedparser first tries them as a local file name, so a
    # server answering "/etc/passwd" would have us parse that file.
    headers = {"content-type": content_type} if content_type else None
    parsed = feedparser.parse(io.BytesIO(body), response_headers=headers)
    if parsed.get("bozo"):
        problem = parsed.get("bozo_exception")
        if type(problem).__name__ not in _BENIGN_BOZO:
            raise _SourceError(f"malformed XML{_where(problem)}")
    if not parsed.get("version") and not parsed.entries:
        raise _SourceError("not an RSS or Atom feed")
    label = name or clean_text(parsed.feed.get("title", "")) or fallback
    headlines: list[Headline] = []
    for index, entry in enumerate(parsed.entries):
        log.n_entries += 1
        when = entry.get("published_parsed") or entry.get("updated_parsed")
        title = clean_text(entry.get("title", ""))
        if when is None:
            log.skip(f"entry {index} ({title[:40] or 'untitled'}): no publication date")
            continue
        if not title:
            log.skip(f"entry {index}: no title")
            continue
        headlines.append(Headline(calendar.timegm(when) * 1000, title, clean_text(entry.get("summary", "")),
                                  label, str(entry.get("link", "")).strip()))
    return headlines


def _where(problem: object) -> str:
    """Where and why the XML broke (' at line 3, column 7: not well-formed'), for the report."""
    line, column, message = (getattr(problem, name, None) for name in
                             ("getLineNumber", "getColumnNumber", "getMessage"))
    if callable(line) and callable(column) and callable(message):
        return f" at line {line()}, column {column()}: {message()}"
    return f": {str(problem).strip() or type(problem).__name__}"


def _read_drop(source: JsonDropSource, log: _EntryLog) -> list[Headline]:
    path = source.path
    if path.is_dir():
        files = sorted(p for p in path.glob("*.json") if p.is_file())
    elif path.is_file():
        files = [path]
    else:
        raise _SourceError(f"no such file or directory: {path}")
    headlines: list[Headline] = []
    broken: list[str] = []
    for file in files:
        try:
            records = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            broken.append(f"{file.name}: malformed JSON ({error})")
            continue
        if not isinstance(records, list):
            broken.append(f"{file.name}: expected a JSON list of headlines, got {type(records).__name__}")
            continue
        headlines.extend(_drop_records(records, file.name, source.label, log))
    if broken and (len(broken) == len(files) or path.is_file()):
        raise _SourceError("; ".join(broken[:MAX_ERRORS_PER_SOURCE]))
    for reason in broken:
        log.skip(reason)
    return headlines


def _drop_records(records: list[Any], file_name: str, default_source: str, log: _EntryLog) -> list[Headline]:
    out: list[Headline] = []
    for index, record in enumerate(records):
        log.n_entries += 1
        where = f"{file_name}[{index}]"
        if not isinstance(record, dict):
            log.skip(f"{where}: not an object")
            continue
        title = clean_text(str(record.get("title") or ""))
        if not title:
            log.skip(f"{where}: no title")
            continue
        try:
            published_ms = parse_iso_ms(record.get("published"))
        except ValueError as error:
            log.skip(f"{where}: {error}")
            continue
        summary = clean_text(str(record.get("summary") or ""))
        source = str(record.get("source") or default_source)
        out.append(Headline(published_ms, title, summary, source, str(record.get("url") or "").strip()))
    return out


def parse_iso_ms(value: object) -> int:
    """UTC epoch ms of an ISO-8601 timestamp; one without a zone is UTC."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("no publication date")
    try:
        stamp = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"publication date {value!r} is not ISO-8601") from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return int(stamp.timestamp() * 1000)


_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


def clean_text(text: str) -> str:
    """Plain text: feeds put HTML and entities in titles and summaries; scoring wants words."""
    return _SPACE.sub(" ", html.unescape(_TAG.sub(" ", str(text)))).strip()


def normalize_url(url: str) -> str:
    """The identity of a link: scheme and host lower-cased, no fragment, no trailing slash."""
    url = url.strip()
    if not url:
        return ""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path.rstrip("/"), parts.query, ""))


_NON_WORD = re.compile(r"[\W_]+")


def normalize_title(title: str) -> str:
    """The identity of a title: lower case, punctuation and spacing ignored."""
    return _NON_WORD.sub(" ", title.casefold()).strip()


def dedupe_headlines(headlines: Iterable[Headline]) -> list[Headline]:
    """Keep the earliest copy of each story, sorted by time.

    Two headlines are the same story when they share a (normalized) URL, or when their normalized
    titles are equal and they were published within the same clock hour (the aggregation bucket; a
    title reused days later, "Bitcoin price today", is a new story)."""
    ordered = sorted(headlines, key=lambda h: (h.published_ms, h.source, h.title, h.url))
    seen_urls: set[str] = set()
    seen_titles: set[tuple[str, int]] = set()
    unique: list[Headline] = []
    for headline in ordered:
        url = normalize_url(headline.url)
        title_key = (normalize_title(headline.title), headline.published_ms // HOUR_MS)
        if (url and url in seen_urls) or title_key in seen_titles:
            continue
        if url:
            seen_urls.add(url)
        seen_titles.add(title_key)
        unique.append(headline)
    return unique
