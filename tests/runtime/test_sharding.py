"""User sharding: the consistent-hash ring, process membership with leases on Redis (including a
process killed with SIGKILL), and per-user locks for the hand-over."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from shard_support import REDIS_URL, eventually

from xray_runtime.redis_conn import AnyRedis, connect
from xray_runtime.settings import RuntimeSettings
from xray_runtime.sharding import HashRing, LocalMembership, Membership, build_membership, stable_hash

USERS = [f"user-{i}" for i in range(30_000)]
LEASE_S = 0.6


# ---- the ring ------------------------------------------------------------------------------------
def test_the_hash_is_stable_across_processes():
    script = "from xray_runtime.sharding import stable_hash; print(stable_hash('user-1'))"
    child = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                           env=os.environ | {"PYTHONHASHSEED": "123"})
    assert int(child.stdout) == stable_hash("user-1")


def test_users_spread_evenly_over_the_members():
    ring = HashRing(["a", "b", "c"])
    shares = Counter(ring.owner(u) for u in USERS)
    assert set(shares) == {"a", "b", "c"}
    assert all(0.27 < n / len(USERS) < 0.40 for n in shares.values()), shares


def test_the_owner_does_not_depend_on_the_order_members_joined():
    first, second = HashRing(["a", "b", "c"]), HashRing()
    for member in ["c", "a", "b"]:
        second.add(member)
    assert all(first.owner(u) == second.owner(u) for u in USERS[:2000])


def test_a_joining_member_takes_about_a_quarter_of_the_users_and_nothing_else_moves():
    ring = HashRing(["a", "b", "c"])
    before = {u: ring.owner(u) for u in USERS}
    ring.add("d")
    moved = [u for u in USERS if ring.owner(u) != before[u]]
    assert all(ring.owner(u) == "d" for u in moved)
    assert 0.18 < len(moved) / len(USERS) < 0.32


def test_a_leaving_member_hands_over_only_its_own_users():
    ring = HashRing(["a", "b", "c", "d"])
    before = {u: ring.owner(u) for u in USERS}
    ring.remove("b")
    moved = {u for u in USERS if ring.owner(u) != before[u]}
    assert moved == {u for u in USERS if before[u] == "b"}
    assert "b" not in {ring.owner(u) for u in moved}


def test_an_empty_ring_has_no_owner():
    with pytest.raises(LookupError):
        HashRing().owner("user-1")


# ---- the embedded default ------------------------------------------------------------------------
async def test_the_embedded_process_owns_everyone_and_locks_users_among_its_own_tasks():
    membership = build_membership(RuntimeSettings(redis_url=None, process_id="solo"))
    assert isinstance(membership, LocalMembership) and membership.member_id == "solo"
    assert await membership.owned(USERS[:10]) == USERS[:10]
    async with membership.user_lock("user-1", 5) as first, membership.user_lock("user-1", 5) as second:
        assert (first, second) == (True, False)
    async with membership.user_lock("user-1", 5) as again:
        assert again


# ---- on Redis ------------------------------------------------------------------------------------
@pytest.fixture
async def shard_redis() -> AsyncIterator[tuple[RuntimeSettings, AnyRedis]]:
    """Settings with a short lease under a prefix of this test's own; its keys are deleted afterwards."""
    settings = RuntimeSettings(redis_url=REDIS_URL, redis_prefix=f"test-shard-{uuid.uuid4().hex}",
                               lease_s=LEASE_S)
    client = connect(settings)
    yield settings, client
    keys = [k async for k in client.scan_iter(match=f"{settings.redis_prefix}:*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def owned_by(memberships: list[Membership], users: list[str]) -> list[list[str]]:
    return [await m.owned(users) for m in memberships]


def partitions(owned: list[list[str]], users: list[str]) -> bool:
    """Every user owned by exactly one of the processes."""
    return sorted(u for part in owned for u in part) == sorted(users)


@pytest.mark.redis
async def test_live_processes_own_disjoint_sets_covering_every_user_and_a_dead_ones_users_move(shard_redis):
    settings, client = shard_redis
    users = USERS[:3000]
    processes = [Membership(client, settings, member_id=f"p{i}") for i in range(3)]
    for process in processes:
        process.start()
    try:
        assert await eventually(lambda: _alive_is(processes[0], {"p0", "p1", "p2"}))
        owned = await owned_by(processes, users)
        assert partitions(owned, users) and all(owned)

        await processes[2].stop()  # stops heartbeating as a crashed process would; it does not leave
        assert await eventually(lambda: _alive_is(processes[0], {"p0", "p1"}))
        survivors = await owned_by(processes[:2], users)
        assert partitions(survivors, users)
        assert set(survivors[0]) >= set(owned[0]) and set(survivors[1]) >= set(owned[1])  # only p2's moved
        assert await processes[2].owned(users) == []  # its lease lapsed: it must not act any more
    finally:
        for process in processes:
            await process.stop()


async def _alive_is(membership: Membership, expected: set[str]) -> bool:
    return set(await membership.alive()) == expected


@pytest.mark.redis
async def test_a_process_that_leaves_hands_over_at_once(shard_redis):
    settings, client = shard_redis
    first, second = Membership(client, settings, "p0"), Membership(client, settings, "p1")
    await first.heartbeat()
    await second.heartbeat()
    await second.leave()
    assert await first.alive() == ["p0"]
    assert await first.owned(USERS[:100]) == USERS[:100]


_CHILD = textwrap.dedent("""
    import asyncio, sys
    from xray_runtime.redis_conn import connect
    from xray_runtime.settings import RuntimeSettings
    from xray_runtime.sharding import Membership

    async def main() -> None:
        url, prefix, lease_s = sys.argv[1], sys.argv[2], float(sys.argv[3])
        settings = RuntimeSettings(redis_url=url, redis_prefix=prefix, lease_s=lease_s)
        membership = Membership(connect(settings), settings, member_id="child")
        await membership.heartbeat()
        print("ready", flush=True)
        await membership.run()

    asyncio.run(main())
""")


@pytest.mark.redis
async def test_a_process_killed_with_sigkill_loses_its_users_after_the_lease(shard_redis):
    settings, client = shard_redis
    users = USERS[:3000]
    survivor = Membership(client, settings, member_id="survivor")
    survivor.start()
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _CHILD, REDIS_URL, settings.redis_prefix, "1.0", stdout=asyncio.subprocess.PIPE)
    try:
        assert child.stdout is not None
        assert (await asyncio.wait_for(child.stdout.readline(), 30)).strip() == b"ready"
        assert set(await survivor.alive()) == {"survivor", "child"}
        assert 0 < len(await survivor.owned(users)) < len(users)

        child.send_signal(signal.SIGKILL)
        assert await child.wait() == -signal.SIGKILL
        assert await eventually(lambda: _alive_is(survivor, {"survivor"}))
        assert await survivor.owned(users) == users
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
        await survivor.stop()


@pytest.mark.redis
async def test_a_user_lock_excludes_a_second_holder_until_released(shard_redis):
    settings, client = shard_redis
    first, second = Membership(client, settings, "p0"), Membership(client, settings, "p1")
    async with first.user_lock("user-1", ttl_s=30) as held:
        assert held
        async with second.user_lock("user-1", ttl_s=30) as also:
            assert not also
        async with second.user_lock("user-2", ttl_s=30) as other_user:
            assert other_user
    async with second.user_lock("user-1", ttl_s=30) as after_release:
        assert after_release


@pytest.mark.redis
async def test_a_lock_whose_holder_died_expires_and_a_late_release_frees_nothing(shard_redis):
    settings, client = shard_redis
    first, second, third = (Membership(client, settings, f"p{i}") for i in range(3))
    stale = first.user_lock("user-1", ttl_s=0.2)
    assert await stale.__aenter__()  # held, and its holder never comes back in time

    async def second_gets_it() -> bool:
        lock = second.user_lock("user-1", ttl_s=30)
        if await lock.__aenter__():
            taken.append(lock)
            return True
        await lock.__aexit__(None, None, None)
        return False

    taken: list[object] = []
    assert await eventually(second_gets_it)
    await stale.__aexit__(None, None, None)  # the first holder wakes up and releases: not second's lock
    async with third.user_lock("user-1", ttl_s=30) as third_held:
        assert not third_held
