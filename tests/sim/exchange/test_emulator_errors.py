"""Refusals: the emulator answers with MEXC's codes so stock ccxt raises what it raises against MEXC."""

from __future__ import annotations

import time

import ccxt
import pytest
import requests


def test_a_wrong_secret_is_an_authentication_error(make_mexc):
    client = make_mexc(secret="not-the-secret")
    with pytest.raises(ccxt.AuthenticationError, match="700002"):
        client.fetch_balance()


def test_an_unknown_api_key_is_an_authentication_error(make_mexc):
    client = make_mexc(api_key="mx0vnosuchkey", secret="whatever")
    with pytest.raises(ccxt.AuthenticationError, match="700001"):
        client.fetch_balance()


def test_a_stale_or_future_timestamp_is_an_invalid_nonce(mexc):
    mexc.options["timeDifference"] = 30_000  # the client signs 30 s in the past, beyond recvWindow
    with pytest.raises(ccxt.InvalidNonce, match="700003"):
        mexc.fetch_balance()
    mexc.options["timeDifference"] = -5_000  # 5 s in the future
    with pytest.raises(ccxt.InvalidNonce, match="700003"):
        mexc.fetch_balance()
    mexc.options["timeDifference"] = 0
    mexc.options["recvWindow"] = 70_000  # above MEXC's 60 s maximum
    with pytest.raises(ccxt.InvalidNonce, match="700005"):
        mexc.fetch_balance()
    mexc.options["recvWindow"] = 20_000
    mexc.options["timeDifference"] = 15_000  # inside a wider window
    assert mexc.fetch_balance()["USDT"]["free"] == 100000


def test_a_signed_request_must_carry_key_and_signature(emulator):
    reply = requests.get(f"{emulator.base_url}/api/v3/account?timestamp=1", timeout=5)
    assert reply.status_code == 400 and reply.json()["code"] == 400
    reply = requests.get(f"{emulator.base_url}/api/v3/account?timestamp=1",
                         headers={"X-MEXC-APIKEY": "mx0vtestkey0000000001"}, timeout=5)
    assert reply.json()["code"] == 700004 and "'signature'" in reply.json()["msg"]


def test_spending_more_than_the_balance_is_insufficient_funds(mexc):
    with pytest.raises(ccxt.InsufficientFunds, match="30004"):
        mexc.create_order("BTC/USDT", "market", "buy", 5)
    with pytest.raises(ccxt.InsufficientFunds):
        mexc.create_order("ETH/USDT", "market", "sell", 1)  # holds no ETH
    assert mexc.fetch_balance()["USDT"] == {"free": 100000.0, "used": 0.0, "total": 100000.0}


def test_orders_below_the_minimum_or_too_precise_are_invalid(mexc):
    with pytest.raises(ccxt.InvalidOrder, match="30002"):  # cost 0.1 USDT, below the 1 USDT minimum
        mexc.create_order("BTC/USDT", "limit", "buy", 0.001, 100)
    with pytest.raises(ccxt.InvalidOrder, match="30002"):
        mexc.create_market_buy_order_with_cost("BTC/USDT", 0.5)
    raw = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "price": "50000"}
    with pytest.raises(ccxt.InvalidOrder, match="10096"):  # more decimals than BTC's 6
        mexc.spotPrivatePostOrder(raw | {"quantity": "0.0000001"})
    with pytest.raises(ccxt.InvalidOrder, match="10096"):
        mexc.spotPrivatePostOrder(raw | {"quantity": "0.01", "price": "50000.001"})
    with pytest.raises(ccxt.InvalidOrder, match="10102"):
        mexc.spotPrivatePostOrder(raw | {"quantity": "0.01", "price": "0"})
    with pytest.raises(ccxt.BadRequest, match="700004"):
        mexc.spotPrivatePostOrder({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "1"})
    with pytest.raises(ccxt.BadRequest, match="700008"):
        mexc.spotPrivatePostOrder(raw | {"quantity": "lots"})
    assert mexc.fetch_orders("BTC/USDT") == []


def test_unknown_symbols_are_bad_symbols_in_ccxt_and_on_the_server(mexc):
    with pytest.raises(ccxt.BadSymbol):  # ccxt's own check against the loaded markets
        mexc.fetch_ticker("NOPE/USDT")
    with pytest.raises(ccxt.BadSymbol, match="-1121"):  # the server's "Invalid symbol."
        mexc.spotPublicGetKlines({"symbol": "NOPEUSDT", "interval": "1m"})
    with pytest.raises(ccxt.BadSymbol, match="-1121"):
        mexc.spotPrivatePostOrder({"symbol": "NOPEUSDT", "side": "BUY", "type": "MARKET", "quantity": "1"})


def test_an_unserved_interval_is_a_bad_request(mexc):
    with pytest.raises(ccxt.BadRequest, match="730002"):
        mexc.spotPublicGetKlines({"symbol": "BTCUSDT", "interval": "1W"})


def test_missing_orders_are_reported_as_mexc_does(mexc):
    with pytest.raises(ccxt.ExchangeError, match="-2013"):
        mexc.fetch_order("C02__000000000000000001043", "BTC/USDT")
    with pytest.raises(ccxt.BadRequest, match="-2011"):
        mexc.cancel_order("C02__000000000000000001043", "BTC/USDT")
    filled = mexc.create_order("BTC/USDT", "market", "buy", 0.001)
    with pytest.raises(ccxt.BadRequest, match="-2011"):  # a filled order cannot be cancelled
        mexc.cancel_order(filled["id"], "BTC/USDT")


def test_unknown_paths_answer_mexc_json(emulator):
    reply = requests.get(f"{emulator.base_url}/api/v3/nothingHere", timeout=5)
    assert (reply.status_code, reply.json()) == (404, {"code": 404, "msg": "Not Found"})
    reply = requests.put(f"{emulator.base_url}/api/v3/order", timeout=5)
    assert reply.status_code == 405 and reply.json()["code"] == 405


def test_exceeding_the_weight_limit_is_rate_limit_exceeded(start_custom_emulator, mexc_at, admin_at):
    emulator = start_custom_emulator(weight_limit=40, weight_window_s=60)
    client = mexc_at(emulator.base_url)
    client.load_markets()  # exchangeInfo 10 + contract detail 1 from the IP; getall 10 from the key
    with pytest.raises(ccxt.RateLimitExceeded, match="429"):
        for _ in range(40):
            client.fetch_ticker("BTC/USDT")  # weight 1 each, against the IP
    for _ in range(3):  # signed requests draw on the key's own pool: getall 10 + 3 x account 10 = 40
        client.fetch_balance()
    with pytest.raises(ccxt.RateLimitExceeded):
        client.fetch_balance()
    stats = admin_at(emulator.base_url).stats()
    assert stats["responses_429"]["ip"] == 1 and stats["responses_429"]["key"] == 1
    assert stats["rate_limit_violations"] == 2


def test_the_weight_window_slides(start_custom_emulator, mexc_at):
    emulator = start_custom_emulator(weight_limit=3, weight_window_s=0.3)
    client = mexc_at(emulator.base_url, api_key=None)
    for _ in range(3):
        client.fetch_time()
    with pytest.raises(ccxt.RateLimitExceeded):
        client.fetch_time()
    time.sleep(0.35)  # the window slides past the first requests
    assert client.fetch_time() > 0
