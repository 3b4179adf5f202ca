"""ccxt's dicts into typed reports: what a well-formed answer becomes, and that a malformed one is a
MalformedReportError naming the venue, the request and the field (never a KeyError or ValueError)."""

from __future__ import annotations

import math

import ccxt
import pytest

from xray_core.errors import XrayError
from xray_core.exchange.ccxt_parse import parse_balance, parse_market, parse_markets, parse_order, parse_trade
from xray_core.exchange.protocol import MalformedReportError, VenueError
from xray_core.trading.orders import OrderStatus, Side

CTX = "mexc fetch_order 1 on BTC/USDT"

# Shaped as ccxt 4 returns them from MEXC (the emulator), trimmed to what the parsers read.
ORDER = {"id": "C02__1", "clientOrderId": "x" + "a" * 31, "timestamp": 1796297521089, "status": "closed",
         "symbol": "BTC/USDT", "type": "market", "side": "buy", "price": 99393.97, "average": 99398.94,
         "amount": 0.01, "filled": 0.01, "remaining": 0.0, "info": {"status": "FILLED"}}
ACK = {"id": "C02__2", "clientOrderId": None, "timestamp": 1796297521089, "status": None,
       "symbol": "BTC/USDT", "side": "buy", "average": None, "amount": 0.01, "filled": None}
TRADE = {"id": "aa4c6a00", "order": "C02__1", "timestamp": 1796297521089, "symbol": "BTC/USDT", "side": "buy",
         "price": 99398.94, "amount": 0.01, "fee": {"currency": "BTC", "cost": 5e-06},
         "info": {"orderId": "C02__1", "clientOrderId": "x" + "a" * 31}}
BALANCE = {"BTC": {"free": 0.009995, "used": 0.0, "total": 0.009995},
           "free": {"BTC": 0.009995, "USDT": 99006.0106}, "used": {"BTC": 0.0, "USDT": 0.0},
           "total": {"BTC": 0.009995, "USDT": 99006.0106}, "info": {}}
MARKET = {"id": "BTCUSDT", "symbol": "BTC/USDT", "base": "BTC", "quote": "USDT", "active": True,
          "precision": {"amount": 1e-06, "price": 0.01},
          "limits": {"amount": {"min": 1e-06, "max": None}, "cost": {"min": 1.0, "max": 2000000.0}}}


def test_an_order_becomes_a_report_with_our_status():
    report = parse_order(ORDER, CTX)
    assert (report.exchange_order_id, report.client_order_id, report.symbol, report.side) == (
        "C02__1", "x" + "a" * 31, "BTC/USDT", Side.BUY)
    assert (report.status, report.amount, report.filled, report.average, report.timestamp_ms) == (
        OrderStatus.FILLED, 0.01, 0.01, 99398.94, 1796297521089)


def test_an_acknowledgement_without_state_is_submitted_with_the_client_id_it_was_sent_with():
    report = parse_order(ACK, CTX, symbol="BTC/USDT", client_order_id="xsent")
    assert (report.status, report.filled, report.average, report.client_order_id) == (
        OrderStatus.SUBMITTED, 0.0, None, "xsent")


@pytest.mark.parametrize(("ccxt_status", "filled", "status"), [
    ("open", 0.0, OrderStatus.OPEN), ("open", 0.004, OrderStatus.PARTIALLY_FILLED),
    ("canceled", 0.0, OrderStatus.CANCELED), ("expired", 0.0, OrderStatus.EXPIRED),
    ("rejected", 0.0, OrderStatus.REJECTED), ("something new", 0.0, OrderStatus.SUBMITTED),
])
def test_order_statuses_map_as_the_domain_defines(ccxt_status, filled, status):
    assert parse_order(ORDER | {"status": ccxt_status, "filled": filled}, CTX).status is status


def test_ids_given_as_numbers_read_as_their_digits():
    report = parse_order(ORDER | {"id": 123456789}, CTX)
    assert report.exchange_order_id == "123456789"


@pytest.mark.parametrize(("change", "named"), [
    ({"filled": "lots"}, "'filled' is 'lots', not a number"),
    ({"filled": -1.0}, "'filled' is -1.0, not a finite non-negative number"),
    ({"filled": math.nan}, "'filled'"),
    ({"average": math.inf}, "'average'"),
    ({"filled": True}, "'filled' is True, not a number"),
    ({"status": 7}, "'status' is 7, not text"),
    ({"side": "hold"}, "'side' is 'hold', not buy or sell"),
    ({"id": ["C02"]}, "'id' is ['C02'], not text"),
    ({"symbol": None}, "'symbol' is missing"),
    ({"timestamp": 1.5}, "'timestamp' is 1.5, not a whole number of ms"),
])
def test_a_malformed_order_is_a_clear_error(change, named):
    with pytest.raises(MalformedReportError) as caught:
        parse_order(ORDER | change, CTX)
    assert named in str(caught.value) and CTX in str(caught.value)
    assert isinstance(caught.value, VenueError) and isinstance(caught.value, XrayError)


@pytest.mark.parametrize("raw", [None, [], "closed", 42])
def test_an_answer_that_is_no_mapping_is_a_clear_error(raw):
    with pytest.raises(MalformedReportError, match="expected a mapping"):
        parse_order(raw, CTX, symbol="BTC/USDT")


def test_a_trade_becomes_a_fill_report_and_a_fill():
    report = parse_trade(TRADE, CTX)
    assert (report.trade_id, report.exchange_order_id, report.client_order_id) == (
        "aa4c6a00", "C02__1", "x" + "a" * 31)
    assert (report.side, report.amount, report.price, report.fee, report.fee_currency) == (
        Side.BUY, 0.01, 99398.94, 5e-06, "BTC")
    assert report.timestamp_ms == 1796297521089
    fill = report.to_fill("alice")
    assert (fill.user_id, fill.client_order_id, fill.trade_id, fill.amount) == (
        "alice", "x" + "a" * 31, "aa4c6a00", 0.01)
    assert report.to_fill("alice", "xknown").client_order_id == "xknown"  # the caller's id wins


def test_a_trade_without_fee_or_client_id_reads_as_none_charged_and_unknown():
    report = parse_trade({k: v for k, v in TRADE.items() if k not in ("fee", "info")}, CTX)
    assert (report.fee, report.fee_currency, report.client_order_id) == (0.0, "", None)
    assert report.to_fill("bob").client_order_id == ""


@pytest.mark.parametrize(("change", "named"), [
    ({"id": None}, "'id' is missing"),
    ({"side": None}, "'side' is None, not buy or sell"),
    ({"amount": None}, "'amount' is missing"),
    ({"price": "n/a"}, "'price' is 'n/a', not a number"),
    ({"timestamp": None}, "'timestamp' is missing"),
    ({"fee": {"cost": "free", "currency": "BTC"}}, "its fee: 'cost' is 'free'"),
    ({"fee": "0.1%"}, "'fee' is '0.1%', not a mapping"),
])
def test_a_malformed_trade_is_a_clear_error(change, named):
    with pytest.raises(MalformedReportError) as caught:
        parse_trade(TRADE | change, CTX)
    assert named in str(caught.value)


def test_a_trade_without_symbol_takes_the_one_asked_for_and_fails_without_one():
    bare = {k: v for k, v in TRADE.items() if k != "symbol"}
    assert parse_trade(bare, CTX, symbol="ETH/USDT").symbol == "ETH/USDT"
    with pytest.raises(MalformedReportError, match="'symbol' is missing"):
        parse_trade(bare, CTX)


def test_a_balance_reads_its_tables_and_none_as_nothing_held():
    report = parse_balance(BALANCE | {"total": {"BTC": 0.009995, "USDT": 99006.0106, "ETH": None}}, CTX)
    assert report.total_of("BTC") == 0.009995 and report.total_of("ETH") == 0.0
    assert report.total_of("DOGE") == 0.0 and report.free["USDT"] == 99006.0106
    assert dict(report.total) == {"BTC": 0.009995, "USDT": 99006.0106, "ETH": 0.0}
    with pytest.raises(TypeError):
        report.total["BTC"] = 1.0  # type: ignore[index]  # a report never changes


@pytest.mark.parametrize(("raw", "named"), [
    ({"free": {}}, "'total' is None, not a table of currencies"),
    (BALANCE | {"total": {"BTC": "much"}}, "its 'total' table: 'BTC' is 'much', not a number"),
    (BALANCE | {"free": [1, 2]}, "'free' is [1, 2], not a mapping"),
])
def test_a_malformed_balance_is_a_clear_error(raw, named):
    with pytest.raises(MalformedReportError) as caught:
        parse_balance(raw, "mexc fetch_balance")
    assert named in str(caught.value)


def test_a_market_step_follows_ccxts_precision_mode():
    tick = parse_market(MARKET, CTX, ccxt.TICK_SIZE)
    assert (tick.symbol, tick.base, tick.quote, tick.active) == ("BTC/USDT", "BTC", "USDT", True)
    assert (tick.amount_step, tick.min_amount, tick.min_cost) == (1e-06, 1e-06, 1.0)
    decimals = parse_market(MARKET | {"precision": {"amount": 3}}, CTX, ccxt.DECIMAL_PLACES)
    assert decimals.amount_step == pytest.approx(0.001)
    assert parse_market(MARKET, CTX, ccxt.SIGNIFICANT_DIGITS).amount_step is None
    bare = parse_market({k: MARKET[k] for k in ("symbol", "base", "quote")}, CTX, ccxt.TICK_SIZE)
    assert (bare.active, bare.amount_step, bare.min_cost) == (None, None, None)


def test_one_malformed_market_is_left_out_with_its_reason_and_the_others_kept():
    markets, problems = parse_markets({"BTC/USDT": MARKET, "BAD/USDT": MARKET | {"base": None}},
                                      "mexc load_markets", ccxt.TICK_SIZE)
    assert list(markets) == ["BTC/USDT"]
    assert len(problems) == 1 and "market BAD/USDT: 'base' is missing" in problems[0]
