"""The emulator's own admin API: accounts in bulk, the exchange's truth, counters and the clock."""

from __future__ import annotations

import ccxt
import pytest
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


def test_the_clock_refuses_a_jump_that_would_break_the_market(emulator, mexc, admin):
    """1e30 ms used to be accepted, after which every market request answered 500."""
    reply = requests.post(admin.url + "/clock/advance", json={"ms": 10**30}, timeout=5)
    assert reply.status_code == 400 and "five years" in reply.json()["error"]
    for bad in (1e30, True, "60000"):
        assert requests.post(admin.url + "/clock/advance", json={"ms": bad}, timeout=5).status_code == 400
    assert len(mexc.fetch_ohlcv("BTC/USDT", "1m", limit=5)) == 5  # the market still answers
    admin.advance(86_400_000)  # an ordinary step still moves it


def test_absurd_numbers_are_refused_with_400_not_a_crash(emulator, mexc, admin):
    """quantity=9E999999 overflowed Decimal arithmetic into a 500."""
    for quantity in ("9E999999", "1e18", "1" * 70):
        with pytest.raises(ccxt.BadRequest, match="quantity"):
            mexc.create_order("BTC/USDT", "market", "buy", None, None, {"quantity": quantity})
    raw = requests.post(admin.url + "/accounts", json={"funds": {"USDT": "9E999999"}}, timeout=5)
    assert raw.status_code == 400 and "USDT" in raw.json()["error"]
    assert admin.stats()["orders"] == 0


def test_with_an_admin_token_the_admin_api_needs_it(start_custom_emulator):
    from xray_sim.exchange.admin import TOKEN_HEADER

    emulator = start_custom_emulator(admin_token="a-long-admin-token-0001")
    url = emulator.base_url + "/_emulator/stats"
    refused = requests.get(url, timeout=5)
    assert refused.status_code == 401 and TOKEN_HEADER in refused.json()["error"]
    assert requests.get(url, headers={TOKEN_HEADER: "wrong-token-0000000000"}, timeout=5).status_code == 401
    assert requests.get(url, headers={TOKEN_HEADER: "a-long-admin-token-0001"}, timeout=5).status_code == 200
    assert requests.get(emulator.base_url + "/api/v3/time", timeout=5).status_code == 200  # MEXC's is open


@pytest.mark.parametrize(("peer", "token", "status"), [
    ("127.0.0.1", None, 200), ("::1", None, 200), ("203.0.113.9", None, 403), ("203.0.113.9", "t" * 20, 200),
])
async def test_without_a_token_only_loopback_peers_reach_the_admin_api(peer, token, status):
    """A peer's address decides (the emulator may listen on 0.0.0.0); a token opens it to anyone
    holding it."""
    from unittest import mock

    from aiohttp import web
    from aiohttp.test_utils import make_mocked_request
    from pydantic import SecretStr

    from xray_sim.exchange.admin import TOKEN_HEADER, admin_errors
    from xray_sim.exchange.config import EmulatorConfig
    from xray_sim.exchange.dispatch import STATE

    app = web.Application()
    app[STATE] = mock.Mock(config=EmulatorConfig(admin_token=SecretStr(token) if token else None))
    transport = mock.Mock()
    transport.get_extra_info.side_effect = lambda name, default=None: (
        (peer, 1234) if name == "peername" else default)
    headers = {TOKEN_HEADER: token} if token else {}
    request = make_mocked_request("GET", "/_emulator/stats", headers=headers, app=app, transport=transport)

    async def handler(_: web.Request) -> web.Response:
        return web.json_response({})

    assert (await admin_errors(request, handler)).status == status
