"""The exchange client against the emulator through stock ccxt: paging, errors, retries."""

import socket

import pytest

from xray_core.errors import (
    ExchangeAuthError,
    ExchangeUnavailableError,
    UnknownSymbolError,
    UnknownTimeframeError,
    XrayError,
)
from xray_core.exchange.client import ExchangeClient
from xray_core.settings import ExchangeSettings

HOUR = 3_600_000


def _client(url: str, **extra) -> ExchangeClient:
    settings = ExchangeSettings(id="mexc", url=url, backoff_s=0.01, backoff_max_s=0.02, **extra)
    return ExchangeClient(settings, sleep=lambda _: None)


def test_paging_returns_every_bar_once(emulator):
    client = _client(emulator.base_url)
    now = client.fetch_time()
    end = now - now % HOUR
    start = end - 3000 * HOUR
    rows = client.fetch_ohlcv_range("ETH/USDT", "1h", start, end, page_limit=1000)
    stamps = [row[0] for row in rows]
    assert stamps == list(range(start, end, HOUR))


def test_a_short_page_is_continued_not_skipped(emulator):
    """An exchange may send fewer bars than asked; the next page starts after the last bar received."""
    client = _client(emulator.base_url)
    now = client.fetch_time()
    end = now - now % HOUR
    rows = client.fetch_ohlcv_range("BTC/USDT", "1h", end - 1500 * HOUR, end, page_limit=400)
    assert [r[0] for r in rows] == list(range(end - 1500 * HOUR, end, HOUR))


def test_unknown_symbol_and_timeframe_are_clear(emulator):
    client = _client(emulator.base_url)
    with pytest.raises(UnknownSymbolError, match=r"BTC/USDX is not listed on mexc.*did you mean BTC/USDT"):
        client.require_market("BTC/USDX")
    with pytest.raises(UnknownTimeframeError, match="'7m'"):
        client.require_timeframe("7m")


def test_unknown_exchange_id_suggests_close_ones():
    with pytest.raises(XrayError, match=r"unknown exchange id .mexcc.*did you mean mexc"):
        ExchangeClient(ExchangeSettings(id="mexcc"))


def test_wrong_keys_are_an_auth_error(emulator):
    client = _client(emulator.base_url, api_key="no-such-key", api_secret="nope")
    with pytest.raises(ExchangeAuthError, match="rejected the API key"):
        client.call("fetch_balance", client.exchange.fetch_balance)


def test_unreachable_exchange_fails_after_bounded_retries():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = _client(f"http://127.0.0.1:{port}", max_retries=3, timeout_s=1)
    with pytest.raises(ExchangeUnavailableError, match="after 4 tries"):
        client.fetch_time()
    assert client.retries == 3


def test_transient_server_errors_are_retried(emulator):
    emulator.set_faults("error5xx:p=1:status=503:path=/api/v3/time")
    client = _client(emulator.base_url, max_retries=2)
    with pytest.raises(ExchangeUnavailableError):
        client.fetch_time()
    assert client.retries == 2
    emulator.set_faults("")
    assert client.fetch_time() > 0


def test_the_market_listing_is_fetched_once_per_process_unless_fresh(emulator):
    first, second = _client(emulator.base_url), _client(emulator.base_url)
    first.require_market("BTC/USDT")
    second.require_market("ETH/USDT")
    assert emulator.stats()["by_endpoint"]["GET /api/v3/exchangeInfo"] == 1
    second.load_markets(fresh=True)
    assert emulator.stats()["by_endpoint"]["GET /api/v3/exchangeInfo"] == 2
