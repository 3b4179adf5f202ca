"""Exchange semantics as settings: what a repeated newClientOrderId does (`duplicate_ids`), a request
that overtakes the client's lookup (`overtake`), and an IP ban (`ban418`) — each seen through stock
ccxt, as a trading runtime sees it."""

from __future__ import annotations

import time

import ccxt
import pytest
import requests

from xray_sim.exchange.faults import FaultKind, parse_fault_spec

BUY = ("BTC/USDT", "market", "buy", 0.01, None)


def _limit_far_below(client: ccxt.mexc, cid: str) -> dict:
    price = client.fetch_ticker("BTC/USDT")["last"] * 0.5  # rests: the market never gets there in a test
    return client.create_order("BTC/USDT", "limit", "buy", 0.01, round(price, 2), {"clientOrderId": cid})


def test_dedupe_returns_the_first_order_for_any_repeat(start_custom_emulator, mexc_at, admin_at):
    emulator = start_custom_emulator(duplicate_ids="dedupe")
    client = mexc_at(emulator.base_url)
    first = client.create_order(*BUY, {"clientOrderId": "d-1"})
    again = client.create_order("ETH/USDT", "market", "sell", 0.5, None, {"clientOrderId": "d-1"})
    assert again["id"] == first["id"]
    assert len(admin_at(emulator.base_url).account(client.apiKey)["orders"]) == 1


def test_reject_refuses_a_repeat_with_mexc_s_shape(start_custom_emulator, mexc_at, admin_at):
    emulator = start_custom_emulator(duplicate_ids="reject")
    client = mexc_at(emulator.base_url)
    client.create_order(*BUY, {"clientOrderId": "r-1"})
    with pytest.raises(ccxt.ExchangeError, match='"code":-2010'):
        client.create_order(*BUY, {"clientOrderId": "r-1"})
    reply = requests.post(emulator.base_url + "/api/v3/order", timeout=5)  # unsigned: still MEXC's JSON
    assert reply.status_code == 400 and set(reply.json()) == {"code", "msg"}
    assert len(admin_at(emulator.base_url).account(client.apiKey)["orders"]) == 1
    assert admin_at(emulator.base_url).stats()["duplicate_ids"] == "reject"


def test_dedupe_open_repeats_only_while_the_first_order_is_open(start_custom_emulator, mexc_at, admin_at):
    emulator = start_custom_emulator(duplicate_ids="dedupe-open")
    client = mexc_at(emulator.base_url)
    resting = _limit_far_below(client, "o-1")
    assert _limit_far_below(client, "o-1")["id"] == resting["id"]  # open: the same order
    client.cancel_order(resting["id"], "BTC/USDT")
    second = client.create_order(*BUY, {"clientOrderId": "o-1"})  # closed: a second order, same id
    assert second["id"] != resting["id"]
    orders = admin_at(emulator.base_url).account(client.apiKey)["orders"]
    assert [o["clientOrderId"] for o in orders] == ["o-1", "o-1"]
    assert client.fetch_order("", "BTC/USDT", {"clientOrderId": "o-1"})["id"] == second["id"]  # the newest


def test_the_emulator_refuses_an_unknown_mode(start_custom_emulator):
    with pytest.raises(ValueError, match="duplicate_ids"):
        start_custom_emulator(duplicate_ids="sometimes")


def test_an_overtaking_request_acts_after_the_lookup_said_not_found(emulator, make_mexc, admin):
    client = make_mexc()
    client.load_markets()
    emulator.set_faults("overtake:path=/api/v3/order:method=POST:delay_s=1:count=1")
    with pytest.raises(ccxt.NetworkError):
        client.create_order(*BUY, {"clientOrderId": "late-1"})
    with pytest.raises(ccxt.ExchangeError, match="-2013"):  # "Order does not exist." -- yet
        client.fetch_order("", "BTC/USDT", {"clientOrderId": "late-1"})
    deadline = time.monotonic() + 60
    while not admin.account(client.apiKey)["orders"] and time.monotonic() < deadline:
        time.sleep(0.1)
    [order] = admin.account(client.apiKey)["orders"]
    assert (order["clientOrderId"], order["status"]) == ("late-1", "FILLED")
    assert admin.stats()["overtaken"] == 1


def test_an_overtaking_request_past_its_recv_window_never_acts(emulator, make_mexc, admin):
    client = make_mexc(options={"recvWindow": 300})
    client.load_markets()
    emulator.set_faults("overtake:path=/api/v3/order:method=POST:delay_s=1.2:count=1")
    with pytest.raises(ccxt.NetworkError):
        client.create_order(*BUY, {"clientOrderId": "dead-1"})
    deadline = time.monotonic() + 60
    while admin.stats()["overtaken"] == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert admin.stats()["overtaken"] == 1  # it was processed late, and refused: the timestamp expired
    assert admin.account(client.apiKey)["orders"] == []
    assert admin.stats()["errors"].get("700003") == 1


def test_a_418_bans_with_retry_after(emulator, mexc, admin):
    emulator.set_faults("ban418:retry_after_s=30:path=/api/v3/order")
    reply = requests.post(emulator.base_url + "/api/v3/order", timeout=5)
    assert reply.status_code == 418 and reply.headers["Retry-After"] == "30"
    with pytest.raises(ccxt.ExchangeError, match='"code":418'):  # stock ccxt reads MEXC's body first:
        mexc.create_order(*BUY)                                   # a plain error, the status lost
    assert admin.stats()["banned_418"] == 2 and admin.account(mexc.apiKey)["orders"] == []


def test_the_new_kinds_parse_with_their_options():
    spec = parse_fault_spec("overtake:p=0.1:delay_s=2;ban418:retry_after_s=5;overtake")
    assert [(r.kind, r.delay_s, r.retry_after_s) for r in spec.rules] == [
        (FaultKind.OVERTAKE, 2.0, 60), (FaultKind.BAN418, None, 5), (FaultKind.OVERTAKE, None, 60)]
