"""The exchange client pool: one cheap client per key, each signing with its own key, sharing one
session and one markets table; an LRU cap; the throttle hook; 429s counted; secrets never shown."""

from __future__ import annotations

import asyncio
import re

import ccxt
import pytest

from xray_runtime.exchange_pool import ExchangeAccount, ExchangePool


def _account(emulator, admin, user_id: str) -> ExchangeAccount:
    key, secret = admin.create_account({"USDT": "5000"})
    return ExchangeAccount.of(user_id, "mexc", emulator.base_url, key, secret)


@pytest.fixture
async def pool():
    created = ExchangePool(max_clients=3)
    yield created
    await created.close()


async def test_each_client_signs_with_its_own_key(emulator, admin, pool):
    accounts = [_account(emulator, admin, f"user{i}") for i in range(3)]
    clients = await asyncio.gather(*(pool.client(account) for account in accounts))
    await asyncio.gather(*(client.create_order("BTC/USDT", "market", "buy", 0.001, None,
                                               {"clientOrderId": f"order-of-{account.user_id}"})
                           for client, account in zip(clients, accounts, strict=True)))
    for account in accounts:
        truth = admin.account(account.api_key.get_secret_value())
        assert [o["clientOrderId"] for o in truth["orders"]] == [f"order-of-{account.user_id}"]


async def test_clients_share_one_session_and_one_markets_table_loaded_once(emulator, admin, pool):
    accounts = [_account(emulator, admin, f"user{i}") for i in range(3)]
    clients = await asyncio.gather(*(pool.client(account) for account in accounts))
    assert pool.stats.markets_loaded == 1
    assert len({id(client.session) for client in clients}) == 1
    assert len({id(client.markets) for client in clients}) == 1
    assert len({id(client.options) for client in clients}) == 3  # ccxt writes into these: one each
    assert await pool.client(accounts[0]) is clients[0]
    assert pool.stats.created == 3


async def test_the_least_recently_used_client_is_evicted_over_the_cap(emulator, admin, pool):
    a, b, c, d = (_account(emulator, admin, name) for name in "abcd")
    first = await pool.client(a)
    for account in (b, c, a, d):  # a is used again, so b is the oldest when d arrives
        await pool.client(account)
    assert len(pool) == 3 and pool.stats.evicted == 1
    assert await pool.client(a) is first
    await pool.client(b)  # b comes back as a new client
    assert pool.stats.created == 5
    assert (await first.fetch_balance())["USDT"]["free"] == 5000  # still works after others came


async def test_the_throttle_hook_is_awaited_before_every_request_with_its_cost(emulator, admin):
    costs: dict[str, list[float]] = {}

    def throttle_for(account: ExchangeAccount):
        async def throttle(cost: float) -> None:
            costs.setdefault(account.user_id, []).append(cost)
        return throttle

    pool = ExchangePool(throttle_factory=throttle_for)
    try:
        client = await pool.client(_account(emulator, admin, "tina"))
        await client.fetch_balance()
        await client.fetch_my_trades("BTC/USDT")
    finally:
        await pool.close()
    assert list(costs) == ["tina"] and len(costs["tina"]) == 2 and all(cost > 0 for cost in costs["tina"])


async def test_429s_are_counted(emulator, admin, pool):
    client = await pool.client(_account(emulator, admin, "rita"))
    admin.set_faults("burst429:n=2:path=/api/v3/account:count=1")
    for _ in range(2):
        with pytest.raises(ccxt.RateLimitExceeded):
            await client.fetch_balance()
    await client.fetch_balance()
    assert pool.stats.rate_limited == 2


def test_an_account_shows_its_fingerprint_never_its_secrets():
    account = ExchangeAccount.of("u", "mexc", "http://127.0.0.1:8765", "mx0-the-key", "the-secret")
    assert re.fullmatch(r"[0-9a-f]{8}", account.fingerprint)
    shown = f"{account!r} {account}"
    assert "mx0-the-key" not in shown and "the-secret" not in shown and account.fingerprint in shown
    rotated = ExchangeAccount.of("u", "mexc", "http://127.0.0.1:8765", "mx0-the-key", "another-secret")
    assert rotated.fingerprint == account.fingerprint and rotated.client_key != account.client_key


async def test_closing_the_pool_closes_the_shared_session(emulator, admin):
    pool = ExchangePool()
    client = await pool.client(_account(emulator, admin, "zed"))
    session = client.session
    await pool.close()
    assert session.closed and len(pool) == 0
