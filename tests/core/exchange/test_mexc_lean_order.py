"""MEXC market orders through ccxt's own request builder and endpoint (`venues.mexc_ccxt`): the venue
gets the same order as through ccxt's unified createOrder, refusals mean the same, and an answer
without an order id is a clear error."""

from __future__ import annotations

import dataclasses

import ccxt.async_support as ccxt_async
import pytest

from xray_core.exchange.ccxt_venue import LEAN_MARKET_ORDERS, CcxtVenueClient
from xray_core.exchange.protocol import MalformedReportError, VenueRejectedError
from xray_core.exchange.urls import rebase_api_urls
from xray_core.exchange.venues import MEXC
from xray_core.exchange.venues.mexc_ccxt import acknowledgement
from xray_core.trading.orders import OrderStatus, Side

# The same venue under another name: no lean path, ccxt's unified createOrder.
UNIFIED = dataclasses.replace(MEXC, exchange_id="mexc-unified")


@pytest.fixture
async def venues(emulator, admin):
    """venues(traits) -> (venue, key) on a fresh funded account."""
    opened: list[ccxt_async.Exchange] = []

    async def make(traits=MEXC) -> tuple[CcxtVenueClient, str]:
        key, secret = admin.create_account({"USDT": "5000", "BTC": "1"})
        exchange = ccxt_async.mexc({"apiKey": key, "secret": secret, "enableRateLimit": False})
        exchange.urls["api"] = rebase_api_urls(exchange.urls["api"], emulator.base_url, "mexc")
        opened.append(exchange)
        await exchange.load_markets()
        return CcxtVenueClient(exchange, traits), key

    yield make
    for exchange in opened:
        await exchange.close()


def _venue_orders(admin, key: str) -> list[dict]:
    return [{k: o[k] for k in ("side", "type", "origQty", "clientOrderId")}
            for o in admin.account(key)["orders"]]


@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
async def test_the_venue_gets_the_order_ccxts_create_order_would_send(venues, admin, side):
    assert "mexc" in LEAN_MARKET_ORDERS and UNIFIED.exchange_id not in LEAN_MARKET_ORDERS
    lean, lean_key = await venues(MEXC)
    unified, unified_key = await venues(UNIFIED)
    cid = "x" + "2" * 31
    amount = 0.0123456789  # more digits than BTC/USDT's step: both paths round it the same way
    lean_ack = await lean.create_order("BTC/USDT", side, amount, cid)
    unified_ack = await unified.create_order("BTC/USDT", side, amount, cid)
    assert _venue_orders(admin, lean_key) == _venue_orders(admin, unified_key)
    [placed] = _venue_orders(admin, lean_key)
    assert placed["clientOrderId"] == cid and placed["type"] == "MARKET"
    for ack in (lean_ack, unified_ack):
        assert (ack.status, ack.client_order_id, ack.symbol, ack.filled) == (
            OrderStatus.SUBMITTED, cid, "BTC/USDT", 0.0)
        assert ack.exchange_order_id
    assert lean_ack.side is side and lean_ack.amount == pytest.approx(float(placed["origQty"]))


async def test_refusals_mean_what_they_mean_through_ccxt(venues):
    lean, _ = await venues(MEXC)
    with pytest.raises(VenueRejectedError):  # more than the account holds
        await lean.create_order("BTC/USDT", Side.SELL, 5.0, "x" + "3" * 31)
    with pytest.raises(VenueRejectedError):  # no such market
        await lean.create_order("NOPE/USDT", Side.BUY, 1.0, "x" + "4" * 31)


@pytest.mark.parametrize("raw", [None, [], {}, {"orderId": ""}, {"orderId": True}, {"symbol": "BTCUSDT"}])
def test_an_answer_without_an_order_id_is_a_clear_error(raw):
    with pytest.raises(MalformedReportError, match="mexc create_order BTC/USDT"):
        acknowledgement(raw, "BTC/USDT", Side.BUY, "x" + "5" * 31)


def test_an_acknowledgement_reads_id_quantity_and_time():
    ack = acknowledgement({"symbol": "BTCUSDT", "orderId": "C02__1", "origQty": "0.0123",
                           "transactTime": 1728893850646}, "BTC/USDT", Side.BUY, "x" + "6" * 31)
    assert (ack.exchange_order_id, ack.amount, ack.timestamp_ms, ack.status) == (
        "C02__1", 0.0123, 1728893850646, OrderStatus.SUBMITTED)
