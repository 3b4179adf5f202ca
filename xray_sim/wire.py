"""The wire's speed: signed MEXC order POSTs straight to the emulator, with no ccxt in between.

The load test compares the runtime's order throughput with this figure, measured in the same run on
the same emulator: how many orders per second a keep-alive aiohttp client signing each request itself
(HMAC-SHA256 over the query string, as MEXC wants it) gets acknowledged. The gap between the two is
what the runtime's own work per order costs (ccxt, journal, state).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from dataclasses import dataclass
from urllib.parse import urlencode

import aiohttp

ORDER_PATH = "/api/v3/order"


@dataclass(frozen=True)
class WireResult:
    orders_per_s: float
    acknowledged: int
    refused: int  # answered, but not 200 (a 429, say): not counted as orders
    seconds: float


def signed_order_query(secret: str, symbol: str, quote_qty: str, now_ms: int, client_id: str) -> str:
    """A MARKET buy's query string, signed the way MEXC checks it."""
    query = urlencode({"symbol": symbol, "side": "BUY", "type": "MARKET", "quoteOrderQty": quote_qty,
                       "newClientOrderId": client_id, "timestamp": now_ms, "recvWindow": 5000})
    signature = hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()
    return f"{query}&signature={signature}"


async def wire_orders_per_s(base_url: str, accounts: list[dict[str, str]], symbol: str, count: int,
                            concurrency: int = 128, quote_qty: str = "10") -> WireResult:
    """Place `count` market buys of `quote_qty` USDT on `symbol` (exchange form, e.g. BTCUSDT), spread
    round-robin over `accounts` (each {"key", "secret"}), `concurrency` in flight on one keep-alive
    session; the acknowledged ones per second of the whole run."""
    if not accounts or count < 1:
        raise ValueError("wire_orders_per_s needs accounts and a count of at least 1")
    gate = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency, keepalive_timeout=60)
    acknowledged = refused = 0
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as http:

        async def one(i: int) -> None:
            nonlocal acknowledged, refused
            account = accounts[i % len(accounts)]
            async with gate:
                query = signed_order_query(account["secret"], symbol, quote_qty, int(time.time() * 1000),
                                           f"wire{i:08d}{time.monotonic_ns() % 10**8:08d}")
                async with http.post(f"{base_url}{ORDER_PATH}?{query}",
                                     headers={"X-MEXC-APIKEY": account["key"]}) as response:
                    await response.read()
                    if response.status == 200:
                        acknowledged += 1
                    else:
                        refused += 1

        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(count)))
        seconds = time.perf_counter() - started
    return WireResult(round(acknowledged / seconds, 1) if seconds > 0 else 0.0, acknowledged, refused,
                      round(seconds, 2))
