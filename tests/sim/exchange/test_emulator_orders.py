"""Order life cycles: idempotent client ids, resting limits filling on later bars, conserved value."""

from __future__ import annotations

import time
from collections import defaultdict
from decimal import Decimal

import ccxt
import pytest

MINUTE = 60_000
HOUR = 60 * MINUTE


def test_a_repeated_client_order_id_never_makes_a_second_order(mexc):
    first = mexc.create_order("BTC/USDT", "market", "buy", 0.01, None, {"clientOrderId": "run-42"})
    retry = mexc.create_order("BTC/USDT", "market", "buy", 0.01, None, {"clientOrderId": "run-42"})
    assert retry["id"] == first["id"]
    orders = mexc.fetch_orders("BTC/USDT")
    assert [o["clientOrderId"] for o in orders] == ["run-42"]
    assert mexc.fetch_balance()["BTC"]["total"] == pytest.approx(0.01 * (1 - 0.0005))  # bought once
    found = mexc.fetch_order("", "BTC/USDT", {"clientOrderId": "run-42"})
    assert found["id"] == first["id"] and found["clientOrderId"] == "run-42"


def _future_minutes(emulator, symbol: str, start: int, end: int):
    """What the market will do (read on the emulator's own thread, where its state lives)."""
    return emulator.call(lambda: emulator.state.market.bars(symbol, "1m", start, end, end))


def test_a_resting_limit_order_fills_at_its_price_on_the_bar_that_trades_through(emulator, mexc):
    bid = mexc.fetch_ticker("ETH/USDT")["bid"]
    now = emulator.clock.now_ms()
    # The synthetic market follows the wall clock, so pick a price it will trade through: 0.1%
    # under the bid, or just above the lowest low of the next 30 days if it never falls that far.
    next_bar = now - now % MINUTE + MINUTE
    ahead = _future_minutes(emulator, "ETH/USDT", next_bar, next_bar + 30 * 24 * HOUR)
    price = round(max(bid * 0.999, float(ahead.low.min()) + 0.02), 2)
    assert price < bid, "ETH trades under its bid within 30 days"
    order = mexc.create_order("ETH/USDT", "limit", "buy", 0.5, price)
    placed = order["timestamp"]
    first_bar = placed - placed % MINUTE + MINUTE  # only bars opening after the order count
    bars = _future_minutes(emulator, "ETH/USDT", first_bar, first_bar + 30 * 24 * HOUR)
    crossing = [int(t) for t, low in zip(bars.timestamp, bars.low, strict=True) if low < price]
    assert crossing, "the market trades through the limit price"
    fill_bar = crossing[0]

    emulator.clock.advance(fill_bar - emulator.clock.now_ms())  # to the open of the crossing bar
    assert mexc.fetch_order(order["id"], "ETH/USDT")["status"] == "open"  # that bar is not over yet
    emulator.clock.advance(MINUTE)
    filled = mexc.fetch_order(order["id"], "ETH/USDT")
    assert (filled["status"], filled["filled"], filled["average"]) == ("closed", 0.5, price)
    [trade] = mexc.fetch_my_trades("ETH/USDT")
    assert (trade["timestamp"], trade["price"], trade["takerOrMaker"]) == (fill_bar, price, "maker")
    assert trade["fee"] == {"cost": 0.0, "currency": "ETH"}  # makers pay nothing on MEXC spot
    balance = mexc.fetch_balance()
    assert balance["ETH"]["free"] == 0.5
    assert balance["USDT"] == {"free": pytest.approx(100000 - 0.5 * price), "used": 0.0,
                               "total": pytest.approx(100000 - 0.5 * price)}


def test_the_background_task_fills_without_being_asked(emulator, mexc, admin):
    mexc.create_order("BTC/USDT", "market", "buy", 0.02)
    price = round(mexc.fetch_ticker("BTC/USDT")["ask"] * 1.0005, 2)
    sell = mexc.create_order("BTC/USDT", "limit", "sell", 0.019, price)  # 0.02 less the fee
    placed = sell["timestamp"]
    bars = _future_minutes(emulator, "BTC/USDT", placed - placed % MINUTE + MINUTE, placed + 48 * HOUR)
    crossing = [int(t) for t, high in zip(bars.timestamp, bars.high, strict=True) if high > price]
    assert crossing
    emulator.clock.advance(crossing[0] + MINUTE - emulator.clock.now_ms())
    fills = 0
    for _ in range(40):  # the matcher runs every 0.25 s; stats are read without matching anything
        fills = admin.stats()["fills"]
        if fills == 2:
            break
        time.sleep(0.05)
    assert fills == 2  # the market buy, then the resting sell
    assert admin.account(mexc.apiKey)["orders"][-1]["status"] == "FILLED"


def test_balances_conserve_value_with_every_fee_accounted(mexc):
    mexc.create_order("BTC/USDT", "market", "buy", 0.05)
    mexc.create_market_buy_order_with_cost("ETH/USDT", 2000)
    mexc.create_order("BTC/USDT", "market", "sell", 0.02)
    mexc.create_market_sell_order_with_cost("ETH/USDT", 700)
    ask = mexc.fetch_ticker("SOL/USDT")["ask"]
    mexc.create_order("SOL/USDT", "limit", "buy", 3, round(ask * 1.01, 2))  # crosses: fills as taker
    mexc.create_order("SOL/USDT", "limit", "buy", 3, round(ask * 0.9, 2))  # rests, funds locked

    expected: dict[str, Decimal] = defaultdict(Decimal, {"USDT": Decimal(100000)})
    fees: dict[str, Decimal] = defaultdict(Decimal)
    for symbol in ("BTC/USDT", "ETH/USDT", "SOL/USDT"):
        base, quote = symbol.split("/")
        for trade in mexc.fetch_my_trades(symbol):
            info = trade["info"]
            qty, quote_qty, fee = (Decimal(info[k]) for k in ("qty", "quoteQty", "commission"))
            assert quote_qty == qty * Decimal(info["price"])  # no rounding in the trade value
            sign = 1 if info["isBuyer"] else -1
            expected[base] += sign * qty
            expected[quote] -= sign * quote_qty
            expected[info["commissionAsset"]] -= fee
            fees[info["commissionAsset"]] += fee
    assert fees["BTC"] > 0 and fees["USDT"] > 0 and fees["ETH"] > 0
    account = {b["asset"]: b for b in mexc.spotPrivateGetAccount()["balances"]}
    for asset, amount in expected.items():
        held = Decimal(account[asset]["free"]) + Decimal(account[asset]["locked"])
        assert held == amount, asset
    assert Decimal(account["USDT"]["locked"]) == 3 * Decimal(str(round(ask * 0.9, 2)))


def test_orders_of_one_key_are_invisible_to_another(mexc, make_mexc, admin):
    order = mexc.create_order("BTC/USDT", "limit", "buy", 0.01, 1000)
    key, secret = admin.create_account({"USDT": "50"})
    other = make_mexc(api_key=key, secret=secret)
    assert other.fetch_balance()["USDT"]["free"] == 50
    assert other.fetch_open_orders("BTC/USDT") == []
    with pytest.raises(ccxt.ExchangeError, match="-2013"):
        other.fetch_order(order["id"], "BTC/USDT")
