"""The asyncio flavour of stock ccxt (ccxt.async_support.mexc) against the emulator."""

from __future__ import annotations

import asyncio

import ccxt
import ccxt.async_support as ccxt_async
import pytest

from xray_core.exchange.urls import rebase_api_urls


@pytest.fixture
async def async_mexc(emulator, api_credentials):
    key, secret = api_credentials
    exchange = ccxt_async.mexc({"apiKey": key, "secret": secret, "enableRateLimit": False})
    exchange.urls["api"] = rebase_api_urls(exchange.urls["api"], emulator.base_url, "mexc")
    yield exchange
    await exchange.close()


async def test_the_async_client_trades_and_reads_back(async_mexc):
    markets = await async_mexc.load_markets()
    assert markets["BTC/USDT"]["active"]
    ticker, book, bars = await asyncio.gather(
        async_mexc.fetch_ticker("BTC/USDT"),
        async_mexc.fetch_order_book("BTC/USDT", 5),
        async_mexc.fetch_ohlcv("BTC/USDT", "15m", limit=10),
    )
    assert book["bids"][0][0] < book["asks"][0][0] and ticker["last"] > 0 and len(bars) == 10
    order = await async_mexc.create_order("BTC/USDT", "market", "buy", 0.01)
    fetched = await async_mexc.fetch_order(order["id"], "BTC/USDT")
    assert fetched["status"] == "closed"
    balance = await async_mexc.fetch_balance()
    assert balance["BTC"]["total"] == pytest.approx(0.01 * (1 - 0.0005))
    assert len(await async_mexc.fetch_my_trades("BTC/USDT")) == 1


async def test_concurrent_orders_with_one_client_id_make_one_order(async_mexc):
    await async_mexc.load_markets()
    orders = await asyncio.gather(*(
        async_mexc.create_order("ETH/USDT", "market", "buy", 0.1, None, {"clientOrderId": "same"})
        for _ in range(5)
    ))
    assert len({o["id"] for o in orders}) == 1
    assert len(await async_mexc.fetch_orders("ETH/USDT")) == 1


async def test_async_errors_map_like_sync_ones(async_mexc):
    await async_mexc.load_markets()
    with pytest.raises(ccxt.InsufficientFunds):
        await async_mexc.create_order("BTC/USDT", "market", "buy", 5)
    with pytest.raises(ccxt.BadSymbol):
        await async_mexc.spotPublicGetKlines({"symbol": "NOPEUSDT", "interval": "1m"})
