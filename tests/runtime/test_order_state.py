"""The hot order state: the same behaviour in process and on Redis, rebuilt from the journal."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis
from order_path_support import LINEAGE, STATE_KINDS, sqlite_journal, state_of

from xray_core.trading.orders import Order, OrderIntent, OrderStatus, Side
from xray_runtime.order_state import OrderStateUnavailableError, RedisOrderState


@pytest.fixture(params=STATE_KINDS)
async def any_state(request):
    async for state in state_of(request.param):
        yield state


def _order(user: str, intent: str) -> Order:
    return Order.from_intent(OrderIntent(user, "BTC/USDT", Side.BUY, 0.1, 60_000, intent, LINEAGE), 1_000)


async def test_orders_are_kept_per_user_with_their_open_ones(any_state):
    a, b, c = _order("u1", "a"), _order("u1", "b"), _order("u2", "c")
    await any_state.put([a, b, c])
    assert await any_state.get("u1", a.client_order_id) == a
    assert await any_state.get("u2", a.client_order_id) is None
    assert await any_state.get_many("u1", [a.client_order_id, "nope"]) == {a.client_order_id: a}
    assert sorted(o.client_order_id for o in await any_state.open("u1")) == sorted(
        [a.client_order_id, b.client_order_id])
    assert await any_state.users_with_open() == {"u1", "u2"}


async def test_a_user_whose_orders_all_ended_has_none_open(any_state):
    a, b = _order("u1", "a"), _order("u2", "b")
    await any_state.put([a, b])
    await any_state.put([a.advance(OrderStatus.REJECTED, 2_000, reason="no funds")])
    assert await any_state.open("u1") == []
    assert await any_state.users_with_open() == {"u2"}
    assert (await any_state.get("u1", a.client_order_id)).status is OrderStatus.REJECTED


async def test_rebuild_loads_the_journals_open_orders_and_corrects_stale_ones(any_state, tmp_path):
    journal = sqlite_journal(tmp_path)
    stale = _order("u1", "a").advance(OrderStatus.SUBMITTED, 2_000)
    done = stale.advance(OrderStatus.FILLED, 3_000, filled=0.1)
    waiting = _order("u2", "b")
    journal.upsert_orders([done, waiting])
    await any_state.put([stale])  # the state missed the fill (say, Redis was down then)
    assert await any_state.rebuild_from(journal) == 2
    assert await any_state.get("u1", stale.client_order_id) == done
    assert await any_state.get("u2", waiting.client_order_id) == waiting
    assert await any_state.users_with_open() == {"u2"}


async def test_redis_down_is_a_clear_error_naming_the_remedy():
    client = aioredis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    state = RedisOrderState(client, "down")
    with pytest.raises(OrderStateUnavailableError, match=r"Redis unavailable .*journal keeps every order"):
        await state.put([_order("u1", "a")])
    with pytest.raises(OrderStateUnavailableError, match="read orders"):
        await state.get("u1", "x")
    await client.aclose()
