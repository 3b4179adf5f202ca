"""The one place that builds a ccxt exchange and calls it safely.

* `build_exchange` turns typed `ExchangeSettings` into a stock ccxt client (MEXC by default, any ccxt
  id by setting), with its API host replaced by `settings.url` when one is set (the emulator).
* `ExchangeClient` wraps it for idempotent reads: retries with exponential backoff and jitter on
  network errors and 429s, ccxt's own client-side throttle (request weights) at the configured rate,
  error translation into `XrayError`s a person can act on, and OHLCV pagination.

Orders are not retried here: re-sending an order is only safe with a client order id, which is the
trading runtime's business.
"""

from __future__ import annotations

import difflib
import random
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import ccxt

from xray_core.errors import (
    ExchangeAuthError,
    ExchangeUnavailableError,
    UnknownSymbolError,
    UnknownTimeframeError,
    XrayError,
)
from xray_core.exchange.urls import rebase_api_urls
from xray_core.settings import ExchangeSettings
from xray_core.timeframes import timeframe_ms

T = TypeVar("T")
OhlcvRow = list[float]

# Errors worth another try: the request may succeed a moment later.
RETRYABLE = (ccxt.NetworkError,)

MARKETS_TTL_S = 300.0
_markets_cache: dict[tuple[str, str | None, bool], tuple[float, Any, Any]] = {}
_markets_lock = threading.Lock()


def exchange_config(settings: ExchangeSettings) -> dict[str, Any]:
    """ccxt constructor options for `settings` (secrets unwrapped only here)."""
    config: dict[str, Any] = {"enableRateLimit": True, "timeout": int(settings.timeout_s * 1000)}
    if settings.api_key is not None:
        config["apiKey"] = settings.api_key.get_secret_value()
    if settings.api_secret is not None:
        config["secret"] = settings.api_secret.get_secret_value()
    if settings.requests_per_s is not None:
        config["rateLimit"] = 1000.0 / settings.requests_per_s  # ms between unit-cost requests
    return config


def _exchange_class(settings: ExchangeSettings, module: Any) -> type:
    if settings.id not in ccxt.exchanges:
        close = difflib.get_close_matches(settings.id, ccxt.exchanges, n=3)
        hint = f"did you mean {', '.join(close)}?" if close else "use a ccxt exchange id such as mexc"
        raise XrayError(f"unknown exchange id {settings.id!r} (XRAY_EXCHANGE_ID)", hint)
    return getattr(module, settings.id)


def build_exchange(settings: ExchangeSettings) -> ccxt.Exchange:
    """A synchronous stock ccxt exchange configured from `settings`."""
    exchange = _exchange_class(settings, ccxt)(exchange_config(settings))
    if settings.url:
        exchange.urls["api"] = rebase_api_urls(exchange.urls["api"], settings.url, settings.id)
    return exchange


def build_async_exchange(settings: ExchangeSettings) -> Any:
    """An asyncio stock ccxt exchange (ccxt.async_support) configured from `settings`."""
    import ccxt.async_support as ccxt_async

    exchange = _exchange_class(settings, ccxt_async)(exchange_config(settings))
    if settings.url:
        exchange.urls["api"] = rebase_api_urls(exchange.urls["api"], settings.url, settings.id)
    return exchange


def describe_endpoint(settings: ExchangeSettings) -> str:
    return f"{settings.id} at {settings.url}" if settings.url else settings.id


class ExchangeClient:
    """Retrying, error-translating access to one exchange's market data."""

    def __init__(
        self,
        settings: ExchangeSettings,
        exchange: ccxt.Exchange | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.exchange = exchange or build_exchange(settings)
        self._sleep = sleep
        self.retries = 0  # how many retries this client needed (for metrics and tests)

    @property
    def id(self) -> str:
        return self.settings.id

    def call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call `fn`, retrying transient failures; `what` names the call in error messages."""
        delay = self.settings.backoff_s
        for attempt in range(self.settings.max_retries + 1):
            try:
                return fn(*args, **kwargs)
            except ccxt.AuthenticationError as exc:
                raise ExchangeAuthError(
                    f"{describe_endpoint(self.settings)} rejected the API key for {what}: {_first_line(exc)}",
                    "check XRAY_EXCHANGE_API_KEY and XRAY_EXCHANGE_API_SECRET",
                ) from None
            except ccxt.BadSymbol as exc:
                raise UnknownSymbolError(
                    f"{what}: {_first_line(exc)}", "list the markets with `xray status`"
                ) from None
            except RETRYABLE as exc:
                if attempt == self.settings.max_retries:
                    raise ExchangeUnavailableError(
                        f"cannot reach {describe_endpoint(self.settings)} for {what} after "
                        f"{attempt + 1} tries: {exc.__class__.__name__}",
                        "check that the exchange (or `xray exchange-sim`) is running and XRAY_EXCHANGE_URL",
                    ) from None
                self.retries += 1
                pause = min(delay, self.settings.backoff_max_s) * (0.5 + random.random())
                self._sleep(pause)
                delay *= 2
        raise AssertionError("unreachable")

    # ---- market data -------------------------------------------------------------------------------
    def load_markets(self, fresh: bool = False) -> dict[str, dict[str, Any]]:
        """The exchange's markets, shared by every client of the same exchange in this process for
        `MARKETS_TTL_S`: the listing costs a heavy request (MEXC weighs exchangeInfo at 25), and
        per-symbol Dagster runs in one process would otherwise fetch it once per symbol.
        `fresh=True` always asks the exchange (the universe refresh does)."""
        key = (self.settings.id, self.settings.url, self.settings.api_key is not None)
        if not fresh:
            if self.exchange.markets:
                return self.exchange.markets
            with _markets_lock:
                cached = _markets_cache.get(key)
            if cached is not None and time.monotonic() - cached[0] < MARKETS_TTL_S:
                self.exchange.set_markets(cached[1], cached[2])
                return self.exchange.markets
        markets = self.call("load_markets", self.exchange.load_markets, fresh)
        with _markets_lock:
            _markets_cache[key] = (time.monotonic(), markets, self.exchange.currencies)
        return markets

    def fetch_time(self) -> int:
        """The exchange's clock in ms (falls back to the local clock if the exchange has none)."""
        if self.exchange.has.get("fetchTime"):
            return int(self.call("fetch_time", self.exchange.fetch_time))
        return int(time.time() * 1000)

    def fetch_tickers(self, symbols: list[str] | None = None) -> dict[str, dict[str, Any]]:
        return self.call("fetch_tickers", self.exchange.fetch_tickers, symbols)

    def require_market(self, symbol: str) -> dict[str, Any]:
        markets = self.load_markets()
        if symbol not in markets:
            close = difflib.get_close_matches(symbol, list(markets), n=3)
            hint = f"did you mean {', '.join(close)}?" if close else "symbols look like BTC/USDT"
            raise UnknownSymbolError(f"{symbol} is not listed on {describe_endpoint(self.settings)}", hint)
        return markets[symbol]

    def require_timeframe(self, timeframe: str) -> int:
        step = timeframe_ms(timeframe)
        supported = self.exchange.timeframes or {}
        if supported and timeframe not in supported:
            raise UnknownTimeframeError(
                f"{self.id} has no {timeframe!r} candles", f"use one of: {', '.join(supported)}"
            )
        return step

    def fetch_ohlcv_range(
        self,
        symbol: str,
        timeframe: str,
        start_ms: int,
        end_ms: int,
        page_limit: int = 1000,
        on_page: Callable[[int, int], None] | None = None,
    ) -> list[OhlcvRow]:
        """Every bar with open time in [start_ms, end_ms), page by page, exactly as the exchange sent
        them (repeats included, so callers can see a broken feed). `on_page(done_ms, total_ms)`
        reports progress. Windows the exchange has no bars for are skipped, not retried forever."""
        step = self.require_timeframe(timeframe)
        self.require_market(symbol)
        rows: list[OhlcvRow] = []
        cursor = start_ms - start_ms % step
        while cursor < end_ms:
            window_end = min(cursor + page_limit * step, end_ms)
            page = self.call(
                f"fetch_ohlcv {symbol} {timeframe}",
                self.exchange.fetch_ohlcv,
                symbol,
                timeframe,
                cursor,
                page_limit,
                {"until": window_end - 1},
            )
            page = [row for row in page if cursor <= row[0] < window_end]
            rows.extend(page)
            # Continue after the newest bar received: an exchange may send fewer bars than asked.
            cursor = int(max(row[0] for row in page)) + step if page else window_end
            if on_page is not None:
                on_page(min(cursor, end_ms) - start_ms, end_ms - start_ms)
        return rows

    def close(self) -> None:
        close = getattr(self.exchange, "close", None)
        if callable(close):
            close()


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0][:300] if str(exc) else exc.__class__.__name__
