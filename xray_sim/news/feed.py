"""A loopback fake news server: deterministic RSS 2.0, Atom and JSON-drop feeds, plus failures.

X-Ray runs without internet in tests, CI and the demo, yet the news feature must be exercised over
real HTTP (timeouts, status codes, content types, broken XML). This server generates crypto
headlines from a seed, so the same seed and `end_ms` always serve byte-identical feeds, and it can
be told to fail.

    with start_fake_feed(seed=7, symbols=("BTC/USDT", "ETH/USDT"), days=3) as feed:
        headlines, report = fetch_news([RssSource(feed.rss_url), RssSource(feed.atom_url)])
        feed.items          # the ground truth: every generated item, its assets and tone

Paths (all GET):
- `/rss.xml`, `/atom.xml`: the same news desk syndicated to two outlets. Items are spread over the
  last `days` days before `end_ms` (default: now, floored to the hour), denser in US/EU working
  hours, newest first: bullish, bearish and neutral news about one or two assets, and market-wide
  news (crypto market, Fed, CPI, SEC). Every fourth item appears in both feeds with the same title
  and time but a different link (syndication, which readers must deduplicate).
- `/news.json`: every item as a JSON drop (`[{"published", "title", "summary", "source", "url"}]`).
- `/malformed.xml`: the RSS feed cut off mid-document (broken XML).
- `/slow.xml`: the RSS feed after `slow_s` seconds (exercises client timeouts).
- `/status/{code}`: a short text body with that HTTP status, 200-599 (`/status/500`).
- anything else: 404. `RunningFeed.fail(path, status)` makes any path answer `status` until
  `heal()`; `hits(path)` counts requests per path; `serve(items)` changes what the feeds carry.
With `malformed=k`, each feed also carries k entries without a publication date.

What is generated lives in `xray_sim.news.content` (pure); this module only serves it.
Run it standalone for the demo: `python -m xray_sim.news.feed --port 8765`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence

from aiohttp import web

from xray_sim.loopback import LoopbackServer
from xray_sim.news.content import (
    ATOM_OUTLET,
    DEFAULT_FEED_SYMBOLS,
    RSS_OUTLET,
    FeedConfig,
    FeedItem,
    generate_items,
    render_atom,
    render_json,
    render_rss,
)

__all__ = ["ATOM_OUTLET", "DEFAULT_FEED_SYMBOLS", "RSS_OUTLET", "FeedConfig", "FeedItem", "RunningFeed",
           "generate_items", "main", "start_fake_feed"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class RunningFeed(LoopbackServer):
    """The fake feed served from its own thread and event loop. Use as a context manager, or call
    `start()` and `stop()`; `fail()`, `heal()` and `hits()` may be called from any thread."""

    def __init__(self, config: FeedConfig) -> None:
        self.config = config
        self.items = generate_items(config)
        self._failures: dict[str, int] = {}
        self._hits: Counter[str] = Counter()
        self._lock = threading.Lock()
        super().__init__(self._app(), config.host, config.port, name="fake news feed", shutdown_timeout_s=0.5)

    @property
    def rss_url(self) -> str:
        return f"{self.base_url}/rss.xml"

    @property
    def atom_url(self) -> str:
        return f"{self.base_url}/atom.xml"

    @property
    def json_url(self) -> str:
        return f"{self.base_url}/news.json"

    @property
    def malformed_url(self) -> str:
        """The RSS feed cut off mid-document."""
        return f"{self.base_url}/malformed.xml"

    @property
    def slow_url(self) -> str:
        """The RSS feed, served after `config.slow_s` seconds."""
        return f"{self.base_url}/slow.xml"

    def status_url(self, code: int = 500) -> str:
        return f"{self.base_url}/status/{code}"

    def fail(self, path: str, status: int = 500) -> None:
        """Make `path` ("/rss.xml") answer `status` until healed."""
        with self._lock:
            self._failures["/" + path.lstrip("/")] = status

    def heal(self, path: str | None = None) -> None:
        """Undo `fail` for one path, or for all."""
        with self._lock:
            if path is None:
                self._failures.clear()
            else:
                self._failures.pop("/" + path.lstrip("/"), None)

    def serve(self, items: Sequence[FeedItem]) -> None:
        """Serve `items` from now on instead of the generated ones, as a real feed moves on: the
        oldest stories roll off, new ones (or old ones published late) appear. `items` stays the truth."""
        with self._lock:
            self.items = tuple(items)

    def hits(self, path: str) -> int:
        with self._lock:
            return self._hits["/" + path.lstrip("/")]

    def _app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        feeds = {"/rss.xml": ("application/rss+xml", render_rss),
                 "/atom.xml": ("application/atom+xml", render_atom),
                 "/news.json": ("application/json", render_json)}

        def serve(kind: str) -> web.StreamResponse:
            content_type, render = feeds[kind]
            return web.Response(text=render(self.items, self.base_url), content_type=content_type,
                                charset="utf-8")

        async def feed(request: web.Request) -> web.StreamResponse:
            return serve(request.path)

        async def malformed(_: web.Request) -> web.StreamResponse:
            body = render_rss(self.items, self.base_url)
            cut = body[: len(body) * 3 // 5] + "<item><title>cut"
            return web.Response(text=cut, content_type="application/rss+xml", charset="utf-8")

        async def slow(_: web.Request) -> web.StreamResponse:
            await asyncio.sleep(self.config.slow_s)
            return serve("/rss.xml")

        async def status(request: web.Request) -> web.StreamResponse:
            return web.Response(status=int(request.match_info["code"]), text="simulated failure")

        for path in feeds:
            app.router.add_get(path, feed)
        app.router.add_get("/malformed.xml", malformed)
        app.router.add_get("/slow.xml", slow)
        app.router.add_get(r"/status/{code:[2-5]\d\d}", status)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Count every request, and answer a failing path's status instead of its content."""
        with self._lock:
            self._hits[request.path] += 1
            failing = self._failures.get(request.path)
        if failing is not None:
            return web.Response(status=failing, text="simulated failure")
        return await handler(request)


def start_fake_feed(port: int = 0, seed: int = 7, symbols: Sequence[str] = DEFAULT_FEED_SYMBOLS,
                    names: Mapping[str, str] | None = None, *, days: float = 7.0, per_day: int = 24,
                    end_ms: int | None = None, malformed: int = 0, slow_s: float = 5.0,
                    host: str = "127.0.0.1") -> RunningFeed:
    """Start the fake feed in a background thread; returns once it accepts connections."""
    config = FeedConfig(seed=seed, symbols=tuple(symbols), names=dict(names or {}), days=days,
                        per_day=per_day, end_ms=end_ms, malformed=malformed, slow_s=slow_s, host=host,
                        port=port)
    return RunningFeed(config).start()


def main(argv: Sequence[str] | None = None) -> None:
    """Serve in the foreground until Ctrl-C (for the demo)."""
    parser = argparse.ArgumentParser(description="X-Ray fake crypto news feed (RSS, Atom, JSON)")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--symbols", default=",".join(DEFAULT_FEED_SYMBOLS))
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--per-day", type=int, default=24)
    parser.add_argument("--malformed", type=int, default=0)
    args = parser.parse_args(argv)
    feed = start_fake_feed(args.port, args.seed, [s for s in args.symbols.split(",") if s.strip()],
                           days=args.days, per_day=args.per_day, malformed=args.malformed)
    print(f"fake news feed: {feed.rss_url} {feed.atom_url} {feed.json_url} ({len(feed.items)} items)",
          flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        threading.Event().wait()
    feed.stop()


if __name__ == "__main__":
    main()
