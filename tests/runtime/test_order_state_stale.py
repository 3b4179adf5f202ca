"""After a failed write the Redis order state may be behind the journal; it must not win over it.

The dangerous case: the journal has an order SUBMITTED (it may have left) while Redis still says
PENDING ("never sent") because the SUBMITTED write failed. Read from Redis, the order is sent again
after a lookup misses it — a second order on a venue that does not deduplicate client ids."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import pytest
import redis.exceptions
from order_path_support import bar_of, intents, make_order_path, redis_state, sqlite_journal

from xray_core.exchange.venues import MEXC
from xray_core.trading.orders import Order, OrderStatus
from xray_runtime.order_state import OrderStateUnavailableError, RedisOrderState

pytestmark = pytest.mark.redis
BUY_BTC = [("BTC/USDT", "buy", 0.01)]


@pytest.fixture
async def state() -> AsyncIterator[RedisOrderState]:
    async with redis_state() as held:
        yield held


class _FailingWrites:
    """Makes the state's next pipelined writes fail as a Redis outage would, until `restore`."""

    def __init__(self, state: RedisOrderState) -> None:
        self.state, self.pipeline = state, state.client.pipeline

        def broken(*args: object, **kwargs: object) -> object:
            pipe = self.pipeline(*args, **kwargs)

            async def execute(*_: object, **__: object) -> list[object]:
                raise redis.exceptions.ConnectionError("Redis went away")

            pipe.execute = execute
            return pipe

        state.client.pipeline = broken

    def restore(self) -> None:
        self.state.client.pipeline = self.pipeline


async def test_a_user_whose_write_failed_reads_the_journal_until_redis_agrees_again(state, tmp_path):
    journal = sqlite_journal(tmp_path)
    state.journal = journal
    [intent] = intents("u1", 1_780_000_000_000, BUY_BTC)
    submitted = Order.from_intent(intent, 1).advance(OrderStatus.SUBMITTED, 2)
    journal.upsert_orders([submitted])
    await state.put([submitted])
    filled = submitted.advance(OrderStatus.FILLED, 3, filled=0.01, average=100.0)
    journal.upsert_orders([filled])  # the journal first, as the executor writes
    outage = _FailingWrites(state)
    with pytest.raises(OrderStateUnavailableError):
        await state.put([filled])
    outage.restore()
    assert await state.get("u1", filled.client_order_id) == filled  # not the stale SUBMITTED
    assert state.stale_users == set()  # rebuilt from the journal on that read
    assert await state.users_with_open() == set()


async def test_stale_redis_never_makes_a_maybe_sent_order_look_unsent(emulator, admin, state, tmp_path):
    path = make_order_path(emulator, admin, sqlite_journal(tmp_path), state)
    state.journal = path.journal
    path.pool.traits = lambda _id: dataclasses.replace(MEXC, deduplicates_client_order_ids=False)
    account = path.add_user("ida")
    decided = intents("ida", bar_of(emulator), BUY_BTC)
    try:
        # Written ahead PENDING, then SUBMITTED: the journal takes it, Redis does not (an outage).
        pending = Order.from_intent(decided[0], 1)
        await path.executor._record([pending])
        outage = _FailingWrites(state)
        await path.executor._record([pending.advance(OrderStatus.SUBMITTED, 2)])
        outage.restore()
        assert path.journal.get(pending.client_order_id).status is OrderStatus.SUBMITTED
        # Sent or not, nobody knows (the process died right here); the bar is decided again.
        [again] = await path.executor.submit(account, decided)
        assert again.status is OrderStatus.SUBMITTED and "not sent again" in again.reason
        assert path.truth("ida")["orders"] == [] and path.executor.stats.sent == 0
    finally:
        await path.pool.close()
