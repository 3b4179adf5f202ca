"""Fencing (xray_runtime.fencing): an order leaves only while its process holds the user's lock under a
fencing token, as the ring's owner of the user, checked at the last moment; locks are renewed while
held; the heartbeat does not depend on the event loop.

Each test uses Redis under a prefix of its own (the `shard_redis` fixture of test_sharding)."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from order_path_support import intents
from shard_support import REDIS_URL, eventually

from xray_core.trading.orders import Order, OrderStatus
from xray_runtime import db
from xray_runtime.fencing import SENDING, FenceLostError
from xray_runtime.ratelimit import LocalLimiter, Quota, ccxt_throttle
from xray_runtime.redis_conn import connect
from xray_runtime.send_log import SendLog, double_acting_users, sends_table
from xray_runtime.settings import RuntimeSettings
from xray_runtime.sharding import HashRing, Membership

pytestmark = pytest.mark.redis
LEASE_S = 0.9
BAR = 1_780_000_000_000


@pytest.fixture
async def ring_redis(tmp_path) -> AsyncIterator[dict[str, Any]]:
    """Settings for memberships on a prefix of this test's own, a client, and a send log (SQLite)."""
    settings = RuntimeSettings(redis_url=REDIS_URL, redis_prefix=f"test-fence-{uuid.uuid4().hex}",
                               lease_s=LEASE_S, user_lock_s=1.0)
    client = connect(settings)
    engine = db.connect(f"sqlite:///{tmp_path / 'sends.db'}")
    started: list[Membership] = []

    def member(member_id: str, **overrides: Any) -> Membership:
        membership = Membership(client, settings.model_copy(update=overrides), member_id,
                                sends=SendLog(engine))
        started.append(membership)
        return membership

    yield {"settings": settings, "client": client, "member": member, "engine": engine}
    for membership in started:
        await membership.stop()
    keys = [k async for k in client.scan_iter(match=f"{settings.redis_prefix}:*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()
    engine.dispose()


def order(user_id: str, bar_ms: int = BAR, n: int = 0) -> Order:
    intent = intents(user_id, bar_ms, [("BTC/USDT", "buy", 0.001 * (n + 1))])[0]
    return Order.from_intent(intent, bar_ms)


def user_of(owner: str, members: list[str]) -> str:
    """A user the ring of `members` gives to `owner`."""
    ring = HashRing(members)
    return next(u for u in (f"user-{i}" for i in range(1000)) if ring.owner(u) == owner)


async def test_a_held_lock_outlives_its_ttl_while_its_holder_lives(ring_redis):
    """The old lock had a fixed TTL: a tick longer than it (50,000 orders at 200/s) lost it midway."""
    first, second = ring_redis["member"]("p0"), ring_redis["member"]("p1")
    first.start()
    async with first.user_lock("user-1", ttl_s=0.5) as held:
        assert held
        await asyncio.sleep(2.0)  # four TTLs: the heartbeat thread renewed it
        async with second.user_lock("user-1", ttl_s=30) as also:
            assert not also
    async with second.user_lock("user-1", ttl_s=30) as after_release:
        assert after_release


async def test_the_lock_is_taken_by_the_first_send_not_before_the_batch_waits(ring_redis):
    """Locks are taken per order slot: opening a batch takes nothing; the first admitted send does."""
    process = ring_redis["member"]("p0")
    process.start()
    assert await eventually(lambda: _alive(process, {"p0"}))
    lock_key = process.locks.lock_key("user-1")
    async with process.acting("user-1") as acting:
        assert acting and await ring_redis["client"].get(lock_key) is None
        assert await process.admit(order("user-1")) == ""
        value = await ring_redis["client"].get(lock_key)
        assert value and value.startswith("p0|")
        assert await process.admit(order("user-1", n=1)) == ""  # the same lock, renewed
        assert await ring_redis["client"].get(lock_key) == value
    assert await ring_redis["client"].get(lock_key) is None  # released with the batch


async def test_a_process_that_is_not_the_users_owner_sends_nothing(ring_redis):
    """Ownership is checked at the send, against the live members: a stale view does not act."""
    a, b = ring_redis["member"]("a"), ring_redis["member"]("b")
    a.start()
    b.start()
    assert await eventually(lambda: _alive(a, {"a", "b"}))
    users_b = user_of("b", ["a", "b"])
    async with a.acting(users_b):
        refusal = await a.admit(order(users_b))
    assert refusal.startswith("not sent") and "gives user" in refusal and "to b" in refusal
    assert await ring_redis["client"].get(a.locks.lock_key(users_b)) is None  # nothing left held
    async with b.acting(users_b):
        assert await b.admit(order(users_b)) == ""


async def test_a_lapsed_holder_is_fenced_off_and_its_successor_gets_a_higher_token(ring_redis):
    a, b = ring_redis["member"]("a"), ring_redis["member"]("b")
    a.start()
    assert await eventually(lambda: _alive(a, {"a"}))
    async with a.acting("user-1"):
        assert await a.admit(order("user-1", BAR)) == ""
        first_token = a.locks._leases["user-1"].token
        await a.stop()  # a's heartbeat stops (a paused process): its lease lapses, its lock stays
        b.start()
        assert await eventually(lambda: _alive(b, {"b"}))
        async with b.acting("user-1"):
            # b took the lock over from a (no need to wait out its TTL). a sent on BAR, so b, which
            # decided before it held the lock, does not send on BAR; on the next bar it does.
            refused = await b.admit(order("user-1", BAR))
            assert "taken over from a" in refused
            assert await b.admit(order("user-1", BAR + 60_000)) == ""
            assert b.locks._leases["user-1"].token > first_token
            refusal = await a.admit(order("user-1", BAR, n=1))  # a wakes up: fenced off
            assert refusal.startswith("not sent") and "lapsed" in refusal
    assert double_acting_users(ring_redis["engine"]) == {}
    with ring_redis["engine"].connect() as conn:
        rows = conn.execute(sa.select(sends_table.c.member, sends_table.c.bar_ms, sends_table.c.token)
                            .order_by(sends_table.c.id)).all()
    assert [(r.member, r.bar_ms) for r in rows] == [("a", BAR), ("b", BAR + 60_000)]
    assert rows[0].token < rows[1].token


async def test_a_send_the_limiter_delayed_is_fenced_again_before_it_leaves(ring_redis):
    process = ring_redis["member"]("p0")
    process.start()
    assert await eventually(lambda: _alive(process, {"p0"}))
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        await ring_redis["client"].delete(process.locks.lock_key("user-1"))  # lost while waiting

    quota = Quota.of(2, 1.0)
    throttle = ccxt_throttle(LocalLimiter({"ip": quota}, sleep=sleep), ["ip:x"],
                             after=process.recheck_after_wait)
    async with process.acting("user-1"):
        assert await process.admit(order("user-1")) == ""
        await throttle(1.0)  # admitted at once: no wait, no second check, the ticket is used up
        assert SENDING.get() is None and not sleeps
        assert await process.admit(order("user-1", n=1)) == ""
        with pytest.raises(FenceLostError):
            await throttle(1.0)  # the bucket is empty: it waits, and the lock is gone by then
    assert sleeps


async def test_the_heartbeat_does_not_depend_on_the_event_loop(ring_redis):
    """A synchronous model load (or a long redaction) used to block the heartbeat with the loop."""
    process = ring_redis["member"]("p0")
    process.start()
    assert await eventually(lambda: _alive(process, {"p0"}))
    seen = _watch_members(ring_redis["settings"], process.locks, seconds=4 * LEASE_S)
    time.sleep(4 * LEASE_S)  # the event loop is blocked, as by a model load
    assert all("p0" in members for members in seen.result()), seen.result()


async def test_a_loop_stalled_beyond_loop_stall_s_lets_the_lease_lapse(ring_redis):
    """A process stuck that long is as good as dead: the others take its users."""
    process = ring_redis["member"]("p0", loop_stall_s=0.5)
    process.start()
    assert await eventually(lambda: _alive(process, {"p0"}))
    seen = _watch_members(ring_redis["settings"], process.locks, seconds=5 * LEASE_S)
    time.sleep(5 * LEASE_S)
    assert any("p0" not in members for members in seen.result())
    assert await eventually(lambda: _alive(process, {"p0"}))  # the loop runs: it rejoins


def test_double_acting_is_what_fencing_forbids_and_a_hand_over_is_not(tmp_path):
    engine = db.connect(f"sqlite:///{tmp_path / 'sends.db'}")
    # (user, bar, holder, token, admitted at µs): a token is taken at its first admission.
    rows = [("u1", BAR, "a|1", 10, 10), ("u1", BAR, "a|1", 10, 11), ("u1", BAR, "b|2", 20, 20),  # hand-over
            ("u2", BAR, "a|1", 50, 50), ("u2", BAR, "b|2", 60, 60), ("u2", BAR, "a|1", 50, 61),  # a after b
            ("u3", BAR, "a|1", 90, 90), ("u3", BAR + 60_000, "b|2", 95, 89),  # other bar: fine
            ("u4", BAR, "a|1", 30, 30), ("u4", BAR, "b|2", 40, 40), ("u4", BAR, "a|1", 50, 50),  # a b a
            ("u5", BAR, "a|1", 31, 31), ("u5", BAR, "a|1", 30, 32)]  # one process's concurrent takes
    with engine.begin() as conn:
        conn.execute(sa.insert(sends_table), [
            {"client_order_id": f"x{i}", "user_id": u, "bar_ms": bar, "member": h.split("|")[0], "holder": h,
             "token": t, "admitted_us": at} for i, (u, bar, h, t, at) in enumerate(rows)])
    assert double_acting_users(engine) == {"u2": [BAR]}


async def _alive(membership: Membership, expected: set[str]) -> bool:
    return set(await membership.alive()) == expected


class _Watcher(threading.Thread):
    def __init__(self, settings: RuntimeSettings, members_key: str, seconds: float) -> None:
        super().__init__(daemon=True)
        self.settings, self.key, self.seconds = settings, members_key, seconds
        self.seen: list[set[str]] = []

    def run(self) -> None:
        client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
        deadline = time.monotonic() + self.seconds
        while time.monotonic() < deadline:
            now = client.time()
            self.seen.append(set(client.zrangebyscore(self.key, f"({now[0] + now[1] / 1e6}", "+inf")))
            time.sleep(0.1)
        client.close()

    def result(self) -> list[set[str]]:
        self.join()
        assert self.seen
        return self.seen


def _watch_members(settings: RuntimeSettings, locks: Any, seconds: float) -> _Watcher:
    """The live members as another process sees them, every 0.1 s for `seconds`, from a thread."""
    watcher = _Watcher(settings, locks._members_key, seconds)
    watcher.start()
    return watcher


async def test_the_executor_asks_the_fence_right_before_each_send(emulator, admin, tmp_path):
    """A refused order is not sent and stays SUBMITTED with the reason (unsettled); admitted, it is."""
    from order_path_support import bar_of, make_order_path, sqlite_journal

    from xray_runtime.order_state import LocalOrderState

    asked: list[tuple[str, int]] = []

    class Fence:
        refuse = True

        async def admit(self, order: Order) -> str:
            asked.append((order.client_order_id, len(admin.account(key)["orders"])))
            return "not sent: somebody else's user" if self.refuse else ""

    fence = Fence()
    path = make_order_path(emulator, admin, sqlite_journal(tmp_path), LocalOrderState(), fence=fence)
    account = path.add_user("alice")
    key = account.api_key.get_secret_value()
    try:
        decided = intents("alice", bar_of(emulator), [("BTC/USDT", "buy", 0.001)])
        [refused] = await path.executor.submit(account, decided)
        assert refused.status is OrderStatus.SUBMITTED and refused.reason == "not sent: somebody else's user"
        assert admin.account(key)["orders"] == [] and path.journal.get(refused.client_order_id) == refused
        fence.refuse = False
        [sent] = await path.executor.submit(account, decided)  # decided again: the known id is resolved
        assert sent.status is OrderStatus.FILLED
        assert asked == [(refused.client_order_id, 0), (refused.client_order_id, 0)]  # each time before
    finally:
        await path.pool.close()
