"""The runtime's Redis users on a real Redis Cluster (3 primaries, one replica each, started here from
the installed redis-server): the shared limiter, the order state, membership leases and user locks,
all through `redis_conn.connect` with `redis_cluster=True`; then a primary killed mid-run and its
replica promoted (nothing replicated is lost, the limiter stays within its quota, leases and locks
recover, no call fails), and a planned failover (`CLUSTER FAILOVER`) that the client follows by MOVED.

A missing redis-server fails these tests with a message instead of skipping them: the cluster
support would otherwise go untested without anyone noticing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest
from local_cluster import ClusterError, LocalCluster, Node
from order_path_support import LINEAGE, sqlite_journal
from redis.crc import key_slot
from redis.exceptions import RedisError

from xray_core.trading.orders import Order, OrderIntent, OrderStatus, Side
from xray_runtime.order_state import OrderStateUnavailableError, RedisOrderState
from xray_runtime.ratelimit import Quota, RedisLimiter, build_limiter, key_scope
from xray_runtime.redis_conn import AnyRedis, FailoverCluster, connect
from xray_runtime.settings import RuntimeSettings
from xray_runtime.sharding import Membership, build_membership

pytestmark = pytest.mark.redis_cluster

USERS = [f"user-{i}" for i in range(300)]
LIMITER_SLOT = key_slot(b"{rl}")
# 40 weight per second: a burst of 20, then 20 per 1.05 s. Short, so a failover spans a few windows.
QUOTAS = {"ip": Quota.of(40, 1.0), "key": Quota.of(40, 1.0)}
SCOPES = ["ip:203.0.113.5", key_scope("mx0vclusterkey")]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """One cluster for the module (it takes a few seconds to form); killed at the end, even on failure."""
    try:
        local = LocalCluster(tmp_path_factory.mktemp("redis-cluster"))
    except ClusterError as error:
        pytest.fail(str(error), pytrace=False)
    try:
        local.start()
        yield local
    finally:
        local.stop()


@pytest.fixture
def healthy(cluster: LocalCluster) -> LocalCluster:
    """The cluster back in shape after the previous test (a failover test restarts what it killed)."""
    cluster.wait_healthy()
    return cluster


def settings_on(cluster: LocalCluster, prefix: str | None = None, **overrides: object) -> RuntimeSettings:
    values: dict[str, object] = {
        "redis_url": f"redis://127.0.0.1:{cluster.live_ports[0]}/0", "redis_cluster": True,
        "redis_prefix": prefix or f"cluster-{uuid.uuid4().hex[:8]}", "lease_s": 3.0,
    }
    return RuntimeSettings(**(values | overrides))


@contextlib.asynccontextmanager
async def client_for(settings: RuntimeSettings) -> AsyncIterator[AnyRedis]:
    client = connect(settings)
    try:
        yield client
    finally:
        await client.aclose()


def order(user: str, intent: str) -> Order:
    return Order.from_intent(OrderIntent(user, "BTC/USDT", Side.BUY, 0.1, 60_000, intent, LINEAGE), 1_000)


def users_on(node: Node, count: int, elsewhere: bool = False) -> list[str]:
    """`count` user ids whose order keys ({user} hash tag) live on primary `node` (or elsewhere)."""
    return [u for u in USERS if node.owns(key_slot(f"{{{u}}}".encode())) != elsewhere][:count]


def prefix_on(node: Node) -> str:
    """A key prefix whose membership set `prefix:members` lives on `node`."""
    while True:
        prefix = f"fo-{uuid.uuid4().hex[:8]}"
        if node.owns(key_slot(f"{prefix}:members".encode())):
            return prefix


def lock_users_on(node: Node, prefix: str, count: int) -> list[str]:
    """`count` user ids whose lock key lives on `node`."""
    return [u for u in USERS if node.owns(key_slot(f"{prefix}:lock:user:{u}".encode()))][:count]


async def eventually(check: Callable[[], Awaitable[bool]], within_s: float = 60.0) -> bool:
    """Poll `check` until it holds; a generous bound, only there so a broken recovery cannot hang."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.05)
    return False


async def partitioned(processes: list[Membership], users: list[str]) -> bool:
    """Every process alive and every user owned by exactly one of them."""
    if set(await processes[0].alive()) != {p.member_id for p in processes}:
        return False
    owned = [await p.owned(users) for p in processes]
    return sorted(u for part in owned for u in part) == sorted(users) and all(owned)


def most_in_any_window(spans: list[tuple[float, float]], window_s: float) -> int:
    """The most admissions that certainly fell within one window of `window_s` seconds: those sent at
    or after its start and answered by its end (the server admitted each between the two moments).
    A lower bound of the true count, so it can only exceed a limit the limiter really broke."""
    return max((sum(1 for s, e in spans if s >= start and e <= start + window_s) for start, _ in spans),
               default=0)


class Hammer:
    """Workers taking weight 1 from the limiter as fast as it admits, recording when each admitted
    call was sent and answered, and every error a call raised (none is expected: the client rides
    through a failover)."""

    def __init__(self, limiter: RedisLimiter, workers: int = 3) -> None:
        self.limiter = limiter
        self.spans: list[tuple[float, float]] = []
        self.errors: list[BaseException] = []
        self._stop = asyncio.Event()
        self._tasks = [asyncio.create_task(self._work()) for _ in range(workers)]

    async def _work(self) -> None:
        while not self._stop.is_set():
            sent = time.monotonic()
            try:
                wait = await self.limiter.try_acquire(SCOPES, 1)
            except Exception as error:  # the verdict is that there are none; keep going to see recovery
                self.errors.append(error)
                await asyncio.sleep(0.05)
                continue
            if wait == 0:
                self.spans.append((sent, time.monotonic()))
            else:
                await asyncio.sleep(min(wait, 0.1))

    def admitted_since(self, moment: float) -> int:
        return sum(1 for sent, _ in self.spans if sent >= moment)

    def admitted_at_least(self, count: int, since: float = 0.0) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return self.admitted_since(since) >= count

        return check

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    async def __aenter__(self) -> Hammer:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


# ---- the runtime's Redis users on a healthy cluster ----------------------------------------------
async def test_limiter_order_state_membership_and_locks_work_across_the_clusters_slots(healthy, tmp_path):
    settings = settings_on(healthy, weight_limit_ip=10, weight_limit_key=10, weight_window_s=60.0)
    async with client_for(settings) as client:
        assert isinstance(client, FailoverCluster)

        limiter = build_limiter(settings, client)  # a burst of 5, then one unit per 12.6 s
        assert isinstance(limiter, RedisLimiter)
        other_key = key_scope("mx0vsomeoneelse")
        assert [await limiter.try_acquire(SCOPES, 1) for _ in range(5)] == [0.0] * 5
        assert await limiter.try_acquire(SCOPES, 1) > 0  # both cells full
        assert await limiter.try_acquire([SCOPES[0], other_key], 1) > 0  # the shared IP refuses
        assert await limiter.try_acquire([other_key], 5) == 0.0  # ...and charged nothing to the other key
        cells = [limiter.cell_key(s) for s in [*SCOPES, other_key]]
        assert {key_slot(c.encode()) for c in cells} == {LIMITER_SLOT}
        assert await client.exists(*cells) == 3  # EXISTS over keys in one slot: one node answers

        state = RedisOrderState(client, settings.redis_prefix)
        primaries = [n for n in healthy.nodes() if n.primary]
        users = [u for node in primaries for u in users_on(node, 3)]
        assert len(users) == 9  # three users on each primary: the pipelines span every node
        orders = [order(u, i) for u in users for i in ("a", "b")]
        await state.put(orders)
        assert await state.users_with_open() == set(users)
        for user in users:
            mine = {o.client_order_id: o for o in orders if o.user_id == user}
            assert await state.get_many(user, [*mine, "nope"]) == mine
        ended = [o.advance(OrderStatus.REJECTED, 2_000, reason="no funds") for o in orders[:2]]
        await state.put(ended)
        assert await state.open(users[0]) == []
        assert await state.users_with_open() == set(users[1:])

        journal = sqlite_journal(tmp_path)  # the journal moved on while the state missed it
        submitted = orders[2].advance(OrderStatus.SUBMITTED, 2_000)
        filled = submitted.advance(OrderStatus.FILLED, 3_000, filled=0.1)
        journal.upsert_orders([filled, *orders[3:]])
        await state.rebuild_from(journal)
        assert await state.get(filled.user_id, filled.client_order_id) == filled
        assert await state.users_with_open() == set(users[1:])
        await state.clear(users)
        assert await state.users_with_open() == set()

        assert isinstance(build_membership(settings, client), Membership)
        processes = [Membership(client, settings, member_id=f"p{i}") for i in range(3)]
        for process in processes:
            await process.heartbeat()
        assert await partitioned(processes, USERS)
        await processes[2].leave()
        assert await partitioned(processes[:2], USERS)

        async with processes[0].user_lock("user-1", 30) as held, processes[1].user_lock("user-1", 30) as also:
            assert (held, also) == (True, False)
        async with processes[1].user_lock("user-1", 30) as after_release:
            assert after_release


# ---- an unplanned failover: a primary killed, its replica promoted -------------------------------
async def test_a_killed_primary_loses_nothing_replicated_and_the_runtime_rides_through(healthy, tmp_path):
    cluster = healthy
    victim = cluster.primary_of(LIMITER_SLOT)  # the limiter's slot, the member set and users live there
    settings = settings_on(cluster, prefix_on(victim), redis_failover_s=120.0)
    on_victim, elsewhere = users_on(victim, 6), users_on(victim, 6, elsewhere=True)
    lock_user, dead_holder_user = lock_users_on(victim, settings.redis_prefix, 2)

    async with client_for(settings) as client, contextlib.AsyncExitStack() as cleanup:
        state = RedisOrderState(client, settings.redis_prefix)
        before = [order(u, i) for u in on_victim + elsewhere for i in ("a", "b")]
        await state.put(before)
        before[0] = before[0].advance(OrderStatus.REJECTED, 2_000, reason="no funds")  # an order that ended
        await state.put([before[0]])

        processes = [Membership(client, settings, member_id=f"p{i}") for i in range(2)]
        for process in processes:
            process.start()
            cleanup.push_async_callback(process.stop)
        assert await eventually(lambda: partitioned(processes, USERS))
        held_lock = processes[0].user_lock(lock_user, ttl_s=300)
        dead_holders_lock = processes[0].user_lock(dead_holder_user, ttl_s=2.0)  # released too late
        assert await held_lock.__aenter__() and await dead_holders_lock.__aenter__()

        hammer = Hammer(RedisLimiter(client, QUOTAS, settings.redis_prefix))
        cleanup.push_async_callback(hammer.stop)
        assert await eventually(hammer.admitted_at_least(20))  # the burst is in

        # Redis replicates asynchronously: a write the primary acknowledged is lost if the primary dies
        # before its replica read it. Wait until the replica has processed the primary's whole stream
        # up to now, so everything written above is on it; the limiter and heartbeats keep writing,
        # and their last moments may be lost (what the limiter check below allows for).
        await asyncio.to_thread(cluster.wait_replicated, victim)
        cluster.kill(victim.port)
        during = [order(u, "c") for u in on_victim + elsewhere]
        await state.put(during)  # while the victim's slots are unreachable: retried until promoted
        new_primary = await asyncio.to_thread(cluster.wait_promoted, victim)
        promoted_at = time.monotonic()
        assert new_primary.port != victim.port

        # Order state: everything written before (and during) the failover reads back.
        everything = before + during
        for user in on_victim + elsewhere:
            mine = {o.client_order_id: o for o in everything if o.user_id == user}
            assert await state.get_many(user, list(mine)) == mine
            assert sorted(o.client_order_id for o in await state.open(user)) == sorted(
                cid for cid, o in mine.items() if not o.terminal)
        assert await state.users_with_open() >= set(on_victim + elsewhere)

        # Locks: the held one survived on the promoted replica; the dead holder's one expires there.
        async with processes[1].user_lock(lock_user, ttl_s=30) as stolen:
            assert not stolen

        async def dead_holders_lock_is_free() -> bool:
            async with processes[1].user_lock(dead_holder_user, ttl_s=30) as taken:
                return taken

        assert await eventually(dead_holders_lock_is_free)
        await dead_holders_lock.__aexit__(None, None, None)  # a late release: it finds no lock of its own
        await held_lock.__aexit__(None, None, None)  # released through the new primary
        async with processes[1].user_lock(lock_user, ttl_s=30) as after_release:
            assert after_release

        # Leases: heartbeats resume on the new primary, both processes own their share again.
        assert await eventually(lambda: partitioned(processes, USERS))

        # The limiter kept admitting after the failover and never passed more than its quota in any
        # window, allowing one burst: the cell's last unreplicated updates may have been lost, which
        # resets it to an older state, at most one burst of budget back.
        assert await eventually(hammer.admitted_at_least(20, since=promoted_at))
        await hammer.stop()
        assert hammer.errors == []
        quota = QUOTAS["ip"]
        assert quota.burst <= most_in_any_window(hammer.spans, quota.window_s) <= quota.limit + quota.burst

    # The killed node comes back empty (no persistence here), rejoins as the new primary's replica and
    # resyncs from it: it must not come back as a primary and wipe what survived.
    cluster.restart(victim.port)
    cluster.wait_healthy()
    assert cluster.primary_of(LIMITER_SLOT).port == new_primary.port
    assert not next(n for n in cluster.nodes() if n.port == victim.port).primary
    async with client_for(settings) as client:
        state = RedisOrderState(client, settings.redis_prefix)
        user = on_victim[1]
        assert await state.get_many(user, [o.client_order_id for o in everything if o.user_id == user]) == {
            o.client_order_id: o for o in everything if o.user_id == user}


# ---- a planned failover: the replica takes over once it has caught up ----------------------------
async def test_a_planned_failover_loses_nothing_and_the_client_follows_the_moved_slots(healthy):
    cluster = healthy
    victim = cluster.primary_of(LIMITER_SLOT)
    settings = settings_on(cluster)
    users = users_on(victim, 5)
    async with (client_for(settings) as client,
                Hammer(RedisLimiter(client, QUOTAS, settings.redis_prefix)) as hammer):
        state = RedisOrderState(client, settings.redis_prefix)
        written: list[Order] = []

        async def write(batches: int) -> None:
            for _ in range(batches):
                batch = [order(u, f"w{len(written)}") for u in users]
                await state.put(batch)
                written.extend(batch)

        await write(5)
        replica = cluster.replica_of(victim)
        with cluster.client(replica.port) as admin:
            admin.execute_command("CLUSTER", "FAILOVER")  # an error would raise
        promotion = asyncio.ensure_future(asyncio.to_thread(cluster.wait_promoted, victim))
        while not promotion.done():  # writes go on while the slots move
            await write(1)
        new_primary = await promotion
        promoted_at = time.monotonic()
        await write(5)
        assert new_primary.port == replica.port
        # CLUSTER FAILOVER waits for the replica to catch up before it takes over: nothing to lose.
        for user in users:
            mine = {o.client_order_id: o for o in written if o.user_id == user}
            assert await state.get_many(user, list(mine)) == mine
        assert await eventually(hammer.admitted_at_least(5, since=promoted_at))
        await hammer.stop()
        assert hammer.errors == []
        assert most_in_any_window(hammer.spans, QUOTAS["ip"].window_s) <= QUOTAS["ip"].limit


# ---- the whole cluster down and back -------------------------------------------------------------
async def test_a_cluster_down_altogether_raises_redis_errors_and_the_client_recovers(healthy, tmp_path):
    """What the service tolerates (a RedisError, an OrderStateUnavailableError) is what a cluster that
    cannot be reached raises too: redis-py's own "cannot be connected" is no RedisError, and would
    have escaped the service's step. Once the nodes are back, the same client works again (the user
    whose write failed is read again once rebuilt from the journal, which the state does itself)."""
    cluster = healthy
    settings = settings_on(cluster, redis_failover_s=1.0)
    async with client_for(settings) as client:
        state = RedisOrderState(client, settings.redis_prefix, sqlite_journal(tmp_path))
        limiter = RedisLimiter(client, QUOTAS, settings.redis_prefix)
        membership = Membership(client, settings, member_id="p0")
        await state.put([order("user-1", "a")])
        assert await limiter.try_acquire(SCOPES, 1) == 0.0
        ports = cluster.live_ports
        for port in ports:
            cluster.kill(port)

        with pytest.raises(OrderStateUnavailableError, match="unavailable"):
            await state.put([order("user-1", "b")])
        with pytest.raises(RedisError):
            await limiter.try_acquire(SCOPES, 1)
        with pytest.raises(RedisError):
            await membership.heartbeat()

        for port in ports:  # back empty (no persistence), in the same cluster
            cluster.restart(port)
        cluster.wait_healthy()
        fresh = order("user-1", "c")
        await state.put([fresh])
        assert await state.get("user-1", fresh.client_order_id) == fresh
        assert not state.stale_users
        assert await limiter.try_acquire(SCOPES, 1) == 0.0
        assert await membership.heartbeat() == ["p0"]
