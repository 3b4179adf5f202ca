"""The emulator's own admin API: accounts in bulk, the exchange's truth, counters and the clock."""

from __future__ import annotations

import requests


def test_ten_thousand_accounts_are_created_in_one_call(emulator, admin, make_mexc):
    """(Its speed: benchmarks/bench_bulk.py.)"""
    body = {"count": 10_000, "funds": {"USDT": "250"}}
    reply = requests.post(admin.url + "/accounts", json=body, timeout=300)
    accounts = reply.json()["accounts"]
    assert reply.status_code == 200 and len(accounts) == 10_000
    assert len({a["key"] for a in accounts}) == 10_000
    last = accounts[-1]
    assert make_mexc(api_key=last["key"], secret=last["secret"]).fetch_balance()["USDT"]["free"] == 250
    assert admin.stats()["accounts"] == 10_001  # plus the fixture's own key


def test_accounts_with_chosen_keys_and_the_refusals(admin):
    body = {"accounts": [{"key": "alice", "secret": "s1", "funds": {"BTC": "1.5"}}, {"key": "bob"}]}
    created = requests.post(admin.url + "/accounts", json=body, timeout=5).json()["accounts"]
    assert [a["key"] for a in created] == ["alice", "bob"] and created[0]["secret"] == "s1"
    assert admin.account("alice")["balances"] == {"BTC": {"free": "1.5", "locked": "0"}}
    assert admin.account("bob")["balances"] == {"USDT": {"free": "100000", "locked": "0"}}
    again = requests.post(admin.url + "/accounts", json={"accounts": [{"key": "carol"}, {"key": "alice"}]},
                          timeout=5)
    assert again.status_code == 409 and "alice" in again.json()["error"]
    assert requests.get(admin.url + "/accounts/carol", timeout=5).status_code == 404  # all or nothing
    bad = requests.post(admin.url + "/accounts", json={"funds": {"USDT": "-1"}}, timeout=5)
    assert bad.status_code == 400 and "USDT" in bad.json()["error"]


def test_the_account_truth_lists_orders_and_trades_in_mexc_shapes(mexc, admin):
    order = mexc.create_order("BTC/USDT", "market", "buy", 0.01, None, {"clientOrderId": "t-1"})
    truth = admin.account(mexc.apiKey)
    [listed] = truth["orders"]
    assert (listed["orderId"], listed["clientOrderId"], listed["status"]) == (order["id"], "t-1", "FILLED")
    [trade] = truth["trades"]
    assert trade["orderId"] == order["id"] and trade["commissionAsset"] == "BTC"
    assert truth["balances"]["BTC"] == {"free": "0.009995", "locked": "0"}


def test_stats_count_requests_orders_fills_and_refusals(mexc, admin):
    mexc.create_order("BTC/USDT", "market", "buy", 0.01)
    mexc.create_order("BTC/USDT", "limit", "buy", 0.01, 1000)
    stats = admin.stats()
    assert stats["orders"] == 2 and stats["orders_open"] == 1 and stats["fills"] == 1
    assert stats["by_endpoint"]["POST /api/v3/order"] == 2
    assert stats["requests"] >= 5 and stats["rate_limit_violations"] == 0
    assert set(stats["responses_429"]) == {"ip", "key", "fault"}


def test_the_clock_moves_forward_only(emulator, mexc, admin):
    before = mexc.fetch_time()
    assert admin.advance(86_400_000) >= before + 86_400_000
    assert mexc.fetch_time() >= before + 86_400_000
    reply = requests.post(admin.url + "/clock/advance", json={"ms": -1}, timeout=5)
    assert reply.status_code == 400
