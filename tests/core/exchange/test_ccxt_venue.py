"""The ccxt adapter against the emulator through stock ccxt: orders, trades, balances and markets as
typed reports; ccxt's errors sorted into VenueErrors; MEXC's quirks taken from its traits."""

from __future__ import annotations

import dataclasses

import ccxt
import ccxt.async_support as ccxt_async
import pytest

from xray_core.exchange.ccxt_venue import CcxtVenueClient, classify, describe
from xray_core.exchange.protocol import (
    MalformedReportError,
    VenueAuthError,
    VenueClient,
    VenueOrderNotFoundError,
    VenueRateLimitedError,
    VenueRejectedError,
    VenueUnavailableError,
)
from xray_core.exchange.urls import rebase_api_urls
from xray_core.exchange.venues import MEXC, traits_for
from xray_core.trading.orders import OrderStatus, Side

CID = "x" + "1" * 31


@pytest.fixture
async def connect(emulator, admin):
    """connect(funds=..., traits=...) -> (venue, api key) on a fresh emulator account."""
    opened: list[ccxt_async.Exchange] = []

    async def make(funds: dict[str, str] | None = None, traits=None, key: str | None = None,
                   secret: str | None = None) -> tuple[CcxtVenueClient, str]:
        if key is None:
            key, secret = admin.create_account(funds or {"USDT": "5000"})
        exchange = ccxt_async.mexc({"apiKey": key, "secret": secret, "enableRateLimit": False})
        exchange.urls["api"] = rebase_api_urls(exchange.urls["api"], emulator.base_url, "mexc")
        opened.append(exchange)
        return CcxtVenueClient(exchange, traits), key

    yield make
    for exchange in opened:
        await exchange.close()


async def test_an_order_its_state_its_trades_and_the_balance_as_reports(connect, admin):
    venue, key = await connect()
    assert isinstance(venue, VenueClient) and venue.traits is MEXC
    ack = await venue.create_order("BTC/USDT", Side.BUY, 0.01, CID)
    assert (ack.status, ack.client_order_id, ack.symbol, ack.filled) == (
        OrderStatus.SUBMITTED, CID, "BTC/USDT", 0.0)
    assert ack.exchange_order_id
    found = await venue.fetch_order_by_client_id(CID, "BTC/USDT")
    assert found == await venue.fetch_order(ack.exchange_order_id, "BTC/USDT")
    assert (found.status, found.filled, found.side, found.exchange_order_id) == (
        OrderStatus.FILLED, 0.01, Side.BUY, ack.exchange_order_id)
    assert found.average and found.average > 0
    [trade] = await venue.fetch_order_trades("BTC/USDT", ack.exchange_order_id)
    assert (trade.exchange_order_id, trade.client_order_id, trade.amount, trade.side) == (
        ack.exchange_order_id, CID, 0.01, Side.BUY)
    assert trade.price == pytest.approx(found.average) and trade.fee_currency == "BTC"
    balance = await venue.fetch_balance()
    assert balance.total_of("BTC") == pytest.approx(0.01 - trade.fee)
    assert balance.total_of("USDT") < 5000
    assert [o.client_order_id for o in await venue.fetch_orders("BTC/USDT")] == [CID]
    assert [o["clientOrderId"] for o in admin.account(key)["orders"]] == [CID]


async def test_open_orders_and_a_cancel(connect):
    venue, _ = await connect()
    ack = await venue.create_order("BTC/USDT", Side.BUY, 0.01, CID, limit_price=1000.0)
    [open_order] = await venue.fetch_open_orders("BTC/USDT")
    assert (open_order.exchange_order_id, open_order.status) == (ack.exchange_order_id, OrderStatus.OPEN)
    canceled = await venue.cancel_order(ack.exchange_order_id, "BTC/USDT")
    assert canceled.status is OrderStatus.CANCELED and canceled.filled == 0.0
    assert await venue.fetch_open_orders("BTC/USDT") == []


async def test_no_such_order_is_order_not_found_by_mexcs_codes(connect):
    venue, _ = await connect()
    with pytest.raises(VenueOrderNotFoundError) as query:
        await venue.fetch_order_by_client_id("x-never-sent", "BTC/USDT")
    assert query.value.source == "ExchangeError" and "-2013" in query.value.reason  # MEXC's code
    with pytest.raises(VenueOrderNotFoundError) as cancel:
        await venue.cancel_order("999999", "BTC/USDT")
    assert cancel.value.source == "BadRequest" and "-2011" in cancel.value.reason
    generic, _ = await connect(traits=dataclasses.replace(MEXC, no_such_order_codes=()))
    with pytest.raises(VenueUnavailableError):  # without the codes it is only an unknown answer
        await generic.fetch_order_by_client_id("x-never-sent", "BTC/USDT")


async def test_refusals_are_sorted_by_what_they_mean(connect, admin):
    poor, _ = await connect({"USDT": "1"})
    with pytest.raises(VenueRejectedError) as funds:
        await poor.create_order("BTC/USDT", Side.BUY, 1.0, CID)
    assert funds.value.source == "InsufficientFunds" and funds.value.reason.startswith("InsufficientFunds: ")
    with pytest.raises(VenueRejectedError, match="BadSymbol"):
        await poor.create_order("NOPE/USDT", Side.BUY, 1.0, CID)
    stranger, _ = await connect(key="mx0-not-a-key", secret="not-the-secret")
    with pytest.raises(VenueAuthError) as refused:
        await stranger.fetch_balance()
    assert refused.value.source == "AuthenticationError" and "not-the-secret" not in str(refused.value)
    admin.set_faults("burst429:n=1:path=/api/v3/account:count=1")
    with pytest.raises(VenueRateLimitedError):
        await poor.fetch_balance()
    admin.set_faults("error5xx:status=503:path=/api/v3/account:count=1")
    with pytest.raises(VenueUnavailableError):
        await poor.fetch_balance()
    admin.set_faults("")
    assert (await poor.fetch_balance()).total_of("USDT") == 1.0


async def test_a_client_order_id_longer_than_the_venue_allows_is_never_sent(connect, admin):
    venue, key = await connect()
    with pytest.raises(VenueRejectedError, match="longer than mexc's 32"):
        await venue.create_order("BTC/USDT", Side.BUY, 0.01, "x" * 33)
    assert admin.account(key)["orders"] == []


async def test_the_trade_history_is_paged_by_the_traits_page_size_each_trade_once(connect, admin):
    venue, _ = await connect(traits=dataclasses.replace(MEXC, trades_page_limit=2))
    for i in range(5):
        await venue.create_order("ETH/USDT", Side.BUY, 0.01, f"xpage{i}")
        admin.advance(1)  # distinct trade times
    trades = await venue.fetch_my_trades("ETH/USDT", 0)
    assert len(trades) == 5 and len({t.trade_id for t in trades}) == 5
    assert sorted(t.client_order_id or "" for t in trades) == [f"xpage{i}" for i in range(5)]
    assert len(await venue.fetch_my_trades("ETH/USDT", None)) == 2  # no start: the latest page only


async def test_markets_are_parsed_once_into_rules(connect):
    venue, _ = await connect()
    markets = await venue.markets()
    btc = markets["BTC/USDT"]
    assert (btc.base, btc.quote, btc.amount_step, btc.min_cost) == ("BTC", "USDT", 1e-06, 1.0)
    assert await venue.markets() is markets


class _Garbled:
    """A ccxt exchange whose answers are not what ccxt promises (a broken venue or ccxt upgrade)."""

    id = "mexc"

    async def fetch_orders(self, symbol, since=None):
        return {"orders": []}

    async def fetch_order(self, order_id, symbol, params=None):
        return {"id": "O9", "clientOrderId": "x-someone-else", "symbol": symbol, "status": "closed"}

    async def fetch_my_trades(self, symbol, since=None, limit=None, params=None):
        return [{"id": "T1", "symbol": symbol, "side": "buy", "amount": 1.0, "timestamp": 1}]  # no price

    async def fetch_balance(self):
        raise ccxt.RequestTimeout("mexc GET https://api.mexc.com/api/v3/account?signature=abc timed out")


async def test_malformed_answers_are_clear_errors_not_key_errors():
    venue = CcxtVenueClient(_Garbled())
    with pytest.raises(MalformedReportError, match="mexc fetch_orders BTC/USDT: expected a list, got dict"):
        await venue.fetch_orders("BTC/USDT")
    with pytest.raises(MalformedReportError, match="the answer is order O9 of client id 'x-someone-else'"):
        await venue.fetch_order_by_client_id("x-mine", "BTC/USDT")  # never adopt another order
    with pytest.raises(MalformedReportError, match="mexc fetch_my_trades BTC/USDT: 'price' is missing"):
        await venue.fetch_my_trades("BTC/USDT", None)
    with pytest.raises(VenueUnavailableError) as timeout:
        await venue.fetch_balance()
    assert timeout.value.reason == "RequestTimeout: mexc GET" and "signature" not in str(timeout.value)


@pytest.mark.parametrize(("error", "order_query", "kind"), [
    (ccxt.RateLimitExceeded("429"), False, VenueRateLimitedError),
    (ccxt.DDoSProtection("slow down"), False, VenueRateLimitedError),
    (ccxt.PermissionDenied("no spot trading"), False, VenueAuthError),
    (ccxt.OrderNotFound("gone"), False, VenueOrderNotFoundError),
    (ccxt.ExchangeError('mexc {"code":-2013,"msg":"Order does not exist."}'), True, VenueOrderNotFoundError),
    (ccxt.ExchangeError('mexc {"code":-2013,"msg":"Order does not exist."}'), False, VenueUnavailableError),
    (ccxt.InvalidOrder("too small"), False, VenueRejectedError),
    (ccxt.BadSymbol("NOPE/USDT"), False, VenueRejectedError),
    (ccxt.RequestTimeout("timed out"), False, VenueUnavailableError),
    (ccxt.ExchangeNotAvailable("503"), False, VenueUnavailableError),
])
def test_ccxt_errors_are_classified_by_what_the_order_path_must_do(error, order_query, kind):
    classified = classify(error, MEXC, order_query=order_query)
    assert type(classified) is kind
    assert classified.source == type(error).__name__ and classified.reason == describe(error)


def test_a_generic_venue_has_no_no_such_order_codes():
    error = ccxt.ExchangeError('kraken {"code":-2013}')
    assert type(classify(error, traits_for("kraken"), order_query=True)) is VenueUnavailableError


async def test_deposits_and_withdrawals_are_transfers_signed_by_direction(connect, admin, emulator):
    venue, key = await connect({"USDT": "5000"})
    start = emulator.clock.now_ms()
    assert await venue.fetch_transfers(start) == []
    out = admin.transfer(key, "USDT", "-2500")
    came = admin.transfer(key, "ETH", "1.5")
    transfers = await venue.fetch_transfers(start)
    assert [(t.asset, t.amount, t.status, t.moves_balance) for t in transfers] == [
        ("USDT", -2500.0, "ok", True), ("ETH", 1.5, "ok", True)]
    assert [t.transfer_id for t in transfers] == [f"withdrawal:{out['id']}", f"deposit:{came['id']}"]
    assert [t.timestamp_ms for t in transfers] == [out["time"], came["time"]]
    assert await venue.fetch_transfers(came["time"] + 1) == []


def test_a_transfer_says_when_the_balance_reflects_it_and_a_withdrawal_counts_its_fee():
    from xray_core.exchange.ccxt_parse import parse_transfer

    def raw(kind: str, status: str, **extra: object) -> dict[str, object]:
        return {"type": kind, "currency": "USDT", "amount": 99.0, "status": status, "timestamp": 5,
                "id": "w1" if kind == "withdrawal" else None, "txid": "0xab", **extra}

    withdrawal = parse_transfer(raw("withdrawal", "pending", fee={"cost": 1.0, "currency": "USDT"}), "t")
    assert (withdrawal.transfer_id, withdrawal.amount, withdrawal.moves_balance) == (
        "withdrawal:w1", -100.0, True)
    assert not parse_transfer(raw("withdrawal", "canceled"), "t").moves_balance
    assert not parse_transfer(raw("deposit", "pending"), "t").moves_balance
    deposit = parse_transfer(raw("deposit", "ok"), "t")
    assert (deposit.transfer_id, deposit.amount, deposit.moves_balance) == ("deposit:0xab", 99.0, True)
    for bad in (raw("deposit", "weird"), raw("transfer", "ok"), raw("deposit", "ok", txid=None)):
        with pytest.raises(MalformedReportError):
            parse_transfer(bad, "t")
