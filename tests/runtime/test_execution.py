"""The executor against the emulator through real ccxt: orders recorded ahead, sent once, resolved
by client order id when known, refused ones rejected with reasons, a refused key an AccountError."""

from __future__ import annotations

import asyncio

import pytest
from order_path_support import (
    JOURNAL_KINDS,
    LINEAGE,
    STATE_KINDS,
    bar_of,
    intents,
    journal_of,
    make_order_path,
    state_of,
    statuses,
)

from xray_core.trading.orders import Order, OrderStatus
from xray_runtime.exchange_pool import ExchangeAccount
from xray_runtime.execution import AccountError

BUY_BTC_ETH = [("BTC/USDT", "buy", 0.01), ("ETH/USDT", "buy", 0.1)]


@pytest.fixture(params=JOURNAL_KINDS)
def journal(request, tmp_path):
    yield from journal_of(request.param, tmp_path)


@pytest.fixture(params=STATE_KINDS)
async def state(request):
    async for held in state_of(request.param):
        yield held


@pytest.fixture
async def path(emulator, admin, journal, state):
    order_path = make_order_path(emulator, admin, journal, state)
    yield order_path
    await order_path.pool.close()


async def test_intents_become_filled_orders_with_fills_and_lineage(path):
    account = path.add_user("alice")
    orders = await path.executor.submit(account, intents("alice", bar_of(path.emulator), BUY_BTC_ETH))
    assert statuses(orders) == ["filled", "filled"]
    assert [o.filled for o in orders] == [0.01, 0.1]
    assert all(o.exchange_order_id and o.average for o in orders)
    recorded = path.journal.get(orders[0].client_order_id)
    assert recorded == orders[0] and recorded.lineage == LINEAGE
    fills = path.journal.fills("alice")
    assert sorted((f.symbol, f.amount) for f in fills) == [("BTC/USDT", 0.01), ("ETH/USDT", 0.1)]
    assert {f.client_order_id for f in fills} == {o.client_order_id for o in orders}
    assert path.audit("alice").clean
    assert await path.state_equals_journal("alice")
    assert await path.state.users_with_open() == set()


async def test_orders_are_written_ahead_before_they_are_sent(emulator, admin, journal, state):
    seen_before_send: list[Order | None] = []
    path = make_order_path(emulator, admin, journal, state)
    account = path.add_user("bob")
    decided = intents("bob", bar_of(emulator), BUY_BTC_ETH[:1])

    def throttle_for(_account: ExchangeAccount):
        async def throttle(_cost: float) -> None:  # ccxt awaits this before every request it sends
            if not seen_before_send:
                seen_before_send.append(journal.get(decided[0].client_order_id))
        return throttle

    path.pool.throttle_factory = throttle_for
    try:
        [order] = await path.executor.submit(account, decided)
    finally:
        await path.pool.close()
    assert seen_before_send[0] is not None and seen_before_send[0].status is OrderStatus.SUBMITTED
    assert order.status is OrderStatus.FILLED


async def test_deciding_the_same_bar_again_sends_nothing_new(path):
    account = path.add_user("carol")
    decided = intents("carol", bar_of(path.emulator), BUY_BTC_ETH)
    first = await path.executor.submit(account, decided)
    sent = path.executor.stats.sent
    again = await path.executor.submit(account, decided)
    assert again == first
    assert path.executor.stats.sent == sent and path.executor.stats.resolved == 2
    assert len(path.truth("carol")["orders"]) == 2


async def test_a_recorded_order_the_exchange_already_has_is_adopted_not_sent_again(path, mexc_at):
    account = path.add_user("dave")
    [intent] = intents("dave", bar_of(path.emulator), BUY_BTC_ETH[:1])
    submitted = Order.from_intent(intent, 1).advance(OrderStatus.SUBMITTED, 2)
    path.journal.upsert_orders([submitted])  # a crash after sending: the answer was never recorded
    direct = mexc_at(path.emulator.base_url, account.api_key.get_secret_value(),
                         account.api_secret.get_secret_value())
    placed = direct.create_order("BTC/USDT", "market", "buy", 0.01, None,
                                 {"clientOrderId": intent.client_order_id})
    [order] = await path.executor.submit(account, [intent])
    assert (order.status, order.exchange_order_id, order.filled) == (OrderStatus.FILLED, placed["id"], 0.01)
    assert path.executor.stats.sent == 0
    assert path.audit("dave").clean


async def test_a_recorded_order_that_never_reached_the_exchange_is_sent_with_its_id(path):
    account = path.add_user("erin")
    [intent] = intents("erin", bar_of(path.emulator), BUY_BTC_ETH[:1])
    path.journal.upsert_orders([Order.from_intent(intent, 1)])  # a crash right after writing ahead
    [order] = await path.executor.submit(account, [intent])
    assert order.status is OrderStatus.FILLED
    assert [o["clientOrderId"] for o in path.truth("erin")["orders"]] == [intent.client_order_id]
    assert path.audit("erin").clean


async def test_refusals_are_rejected_with_reasons_and_leave_other_users_alone(path):
    poor, typo, fine = path.add_user("poor", {"USDT": "10"}), path.add_user("typo"), path.add_user("fine")
    bar = bar_of(path.emulator)
    results = await asyncio.gather(
        path.executor.submit(poor, intents("poor", bar, [("BTC/USDT", "buy", 1.0)])),
        path.executor.submit(typo, intents("typo", bar, [("NOPE/USDT", "buy", 1.0), BUY_BTC_ETH[1]])),
        path.executor.submit(fine, intents("fine", bar, BUY_BTC_ETH)),
    )
    [[broke], [bad_symbol, good], fine_orders] = results
    assert broke.status is OrderStatus.REJECTED and "InsufficientFunds" in broke.reason
    assert bad_symbol.status is OrderStatus.REJECTED and "BadSymbol" in bad_symbol.reason
    assert good.status is OrderStatus.FILLED
    assert statuses(fine_orders) == ["filled", "filled"]
    assert path.journal.get(broke.client_order_id).reason == broke.reason
    for user in ("poor", "typo", "fine"):
        assert path.audit(user).clean


async def test_a_refused_api_key_is_an_account_error_for_that_user_only(path):
    good = path.add_user("good")
    wrong = ExchangeAccount.of("wrong", "mexc", path.emulator.base_url, "mx0-not-a-key", "not-the-secret")
    bar = bar_of(path.emulator)
    refused, accepted = await asyncio.gather(
        path.executor.submit(wrong, intents("wrong", bar, BUY_BTC_ETH)),
        path.executor.submit(good, intents("good", bar, BUY_BTC_ETH)),
        return_exceptions=True,
    )
    assert isinstance(refused, AccountError)
    assert refused.user_id == "wrong" and refused.fingerprint == wrong.fingerprint
    assert "AuthenticationError" in refused.reason
    assert "mx0-not-a-key" not in str(refused) and "not-the-secret" not in str(refused)
    assert statuses(refused.orders) == ["rejected", "rejected"]
    assert statuses(path.journal.orders("wrong")) == ["rejected", "rejected"]
    assert statuses(accepted) == ["filled", "filled"]


async def test_trading_goes_on_with_the_journal_when_redis_is_down(emulator, admin, journal):
    import redis.asyncio as aioredis

    from xray_runtime.order_state import RedisOrderState

    client = aioredis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    path = make_order_path(emulator, admin, journal, RedisOrderState(client, "down"))
    account = path.add_user("frank")
    decided = intents("frank", bar_of(emulator), BUY_BTC_ETH)
    try:
        orders = await path.executor.submit(account, decided)
        again = await path.executor.submit(account, decided)  # known from the journal alone
    finally:
        await path.pool.close()
        await client.aclose()
    assert statuses(orders) == ["filled", "filled"] and again == orders
    assert path.executor.state_stale and path.executor.stats.state_errors > 0
    assert len(path.truth("frank")["orders"]) == 2
