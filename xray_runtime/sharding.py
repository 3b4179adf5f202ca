"""Which runtime process acts for which user: a consistent-hash ring over the live processes.

Each process heartbeats into the sorted set `prefix:members` (score = its lease expiry by the Redis
server's clock) every lease_s / 3. The live members are those with an unexpired lease; every process
builds the same ring from them and acts for the users the ring gives it. A process that dies
(SIGKILL, a lost host) stops heartbeating, and lease_s later the others own its users; adding or
removing a process moves only about 1/N of the users.

Processes read the member set at slightly different moments, so during a hand-over two of them may
both believe they own a user (or, briefly, neither: a skipped tick). Fencing closes the first gap
(`xray_runtime.fencing`): an order is sent only after one atomic check in Redis that this process's
lease is live, that it holds the user's lock under a fencing token, and that the ring of the live
members gives it the user. A user whose order was refused stays unsettled and is decided again.

The heartbeat runs in a thread with its own Redis connection (`start`), so a blocked event loop
does not lose the lease; a loop blocked beyond `loop_stall_s` does, on purpose.

The embedded single-process default uses `LocalMembership`, which owns every user.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import hashlib
import logging
import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterable
from typing import Any, Protocol

from redis.exceptions import RedisError

from xray_core.trading.orders import Order
from xray_runtime.fencing import RENEW_LUA, UserLocks
from xray_runtime.redis_conn import AnyRedis, connect, connect_sync, key
from xray_runtime.send_log import SendLog
from xray_runtime.settings import RuntimeSettings

log = logging.getLogger(__name__)

VNODES = 128
AsyncLock = contextlib.AbstractAsyncContextManager[bool]


def stable_hash(text: str) -> int:
    """A 64-bit hash equal in every process and Python version (unlike hash(), which is salted)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


class HashRing:
    """Consistent hashing with `vnodes` points per member: a user belongs to the member owning the
    first point at or after the user's hash (wrapping around)."""

    def __init__(self, members: Iterable[str] = (), vnodes: int = VNODES) -> None:
        self.vnodes = vnodes
        self._points: list[int] = []
        self._owners: list[str] = []
        self._members: set[str] = set()
        self._members.update(members)
        self._rebuild()

    @property
    def members(self) -> frozenset[str]:
        return frozenset(self._members)

    def add(self, member: str) -> None:
        if member not in self._members:
            self._members.add(member)
            self._rebuild()

    def remove(self, member: str) -> None:
        if member in self._members:
            self._members.discard(member)
            self._rebuild()

    def _rebuild(self) -> None:
        # Sorted by (point, member), so that every process orders even colliding points alike.
        points = sorted((stable_hash(f"{m}#{i}"), m) for m in self._members for i in range(self.vnodes))
        self._points = [p for p, _ in points]
        self._owners = [m for _, m in points]

    def owner(self, user_id: str) -> str:
        if not self._points:
            raise LookupError("the ring has no members")
        at = bisect.bisect_left(self._points, stable_hash(user_id)) % len(self._points)
        return self._owners[at]


class Sharding(Protocol):
    """What the service asks of its membership, embedded or shared."""

    member_id: str
    lease_losses: int  # times this process found its own lease lapsed (metrics)

    async def heartbeat(self) -> list[str]: ...
    async def alive(self) -> list[str]: ...
    async def owned(self, user_ids: Iterable[str]) -> list[str]: ...
    def start(self) -> asyncio.Task[None]: ...
    async def leave(self) -> None: ...
    def user_lock(self, user_id: str, ttl_s: float | None = None) -> AsyncLock: ...
    def acting(self, user_id: str) -> AsyncLock: ...
    async def admit(self, order: Order) -> str: ...
    async def recheck_after_wait(self, waited_s: float) -> None: ...


def default_member_id(settings: RuntimeSettings) -> str:
    return settings.process_id or f"{socket.gethostname()}:{os.getpid()}"


# KEYS[1]: the member set. ARGV: member ('' to only read), lease_s. Returns the live members.
_MEMBERS_LUA = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
if ARGV[1] ~= '' then
  redis.call('ZADD', KEYS[1], string.format('%.6f', now + tonumber(ARGV[2])), ARGV[1])
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.6f', now))
return redis.call('ZRANGE', KEYS[1], 0, -1)
"""


class Membership:
    """This process's place in the shared ring on Redis, and its users' locks (see the module
    docstring and `xray_runtime.fencing`)."""

    def __init__(self, redis: AnyRedis, settings: RuntimeSettings, member_id: str | None = None,
                 vnodes: int = VNODES, sends: SendLog | None = None) -> None:
        self.member_id = member_id or default_member_id(settings)
        self.lease_s = settings.lease_s
        self._redis = redis
        self._settings = settings
        self._vnodes = vnodes
        # One hash tag for the member set and every lock: the fencing script reads both atomically,
        # which a RedisCluster allows only within one slot.
        self._members_key = key(settings, "{shard}", "members")
        self._members = redis.register_script(_MEMBERS_LUA)
        self._ring = HashRing(vnodes=vnodes)
        self.locks = UserLocks(redis, settings.redis_prefix, self.member_id, self._members_key, self.ring,
                               ttl_s=settings.user_lock_s, margin_s=settings.lease_s / 3, sends=sends)
        self._beat: _HeartbeatThread | None = None
        self._watch: asyncio.Task[None] | None = None
        self.lease_losses = 0
        self._owning = False  # whether the last `owned` found this process's lease alive

    async def heartbeat(self) -> list[str]:
        """Renew this process's lease (lease_s from now by Redis's clock); the live members."""
        return await self._call_members(self.member_id)

    async def alive(self) -> list[str]:
        """Members with an unexpired lease, sorted; expired ones are pruned on the way."""
        return await self._call_members("")

    async def _call_members(self, member: str) -> list[str]:
        reply = await self._members(keys=[self._members_key], args=[member, repr(self.lease_s)])
        return sorted(reply)

    def ring(self, members: Iterable[str]) -> HashRing:
        """The ring of `members`, rebuilt only when the member set changed."""
        members = frozenset(members)
        if members != self._ring.members:
            self._ring = HashRing(members, self._vnodes)
        return self._ring

    async def owned(self, user_ids: Iterable[str]) -> list[str]:
        """The users this process acts for now. None while its own lease has lapsed (it was paused
        or cut off from Redis): by then the others own its users."""
        members = await self.alive()
        if self.member_id not in members:
            if self._owning:  # counted once per lapse, not once per tick while it lasts
                self.lease_losses += 1
                log.warning("shard lease of %s lapsed: its users belong to the others", self.member_id)
            self._owning = False
            return []
        self._owning = True
        ring = self.ring(members)
        return [u for u in user_ids if ring.owner(u) == self.member_id]

    async def run(self) -> None:
        """Heartbeat every lease_s / 3 on this event loop until cancelled (a child process in the
        tests; the service uses `start`, whose heartbeat does not depend on the loop)."""
        while True:
            try:
                await self.heartbeat()
            except Exception:  # Redis down or slow: keep trying; the lease decides who owns what
                log.warning("shard heartbeat of %s failed", self.member_id, exc_info=True)
            await asyncio.sleep(self.lease_s / 3)

    def start(self) -> asyncio.Task[None]:
        """Start heartbeating from a thread of its own (with its own Redis connection), so a blocked
        event loop (a model loading, a long computation) does not cost this process its users; the
        returned task only tells the thread that the loop is alive (see `loop_stall_s`)."""
        if self._beat is None:
            self._beat = _HeartbeatThread(self)
            self._beat.start()
        if self._watch is None or self._watch.done():
            self._watch = asyncio.create_task(self._loop_alive(), name=f"loop-alive:{self.member_id}")
        return self._watch

    async def _loop_alive(self) -> None:
        while True:
            if self._beat is not None:
                self._beat.loop_seen = time.monotonic()
            await asyncio.sleep(min(1.0, self.lease_s / 3))

    async def stop(self) -> None:
        """Stop heartbeating without leaving: the lease runs out as if the process had died."""
        beat, self._beat = self._beat, None
        if beat is not None:
            beat.halt.set()
            await asyncio.to_thread(beat.join)
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
            self._watch = None

    async def leave(self) -> None:
        """At shutdown: stop heartbeating and hand this process's users over at once."""
        await self.stop()
        await self._redis.zrem(self._members_key, self.member_id)

    # ---- locks and fencing (xray_runtime.fencing) ----------------------------------------------------
    def user_lock(self, user_id: str, ttl_s: float | None = None) -> AsyncLock:
        return self.locks.user_lock(user_id, ttl_s)

    def acting(self, user_id: str) -> AsyncLock:
        return self.locks.acting(user_id)

    async def admit(self, order: Order) -> str:
        return await self.locks.admit(order)

    async def recheck_after_wait(self, waited_s: float) -> None:
        await self.locks.recheck_after_wait(waited_s)


class _HeartbeatThread(threading.Thread):
    """Renews the member lease and the held user locks every lease_s / 3 (at most every
    user_lock_s / 3), through a blocking Redis client of its own. When the event loop has not run
    for `loop_stall_s`, it stops renewing: a process stuck that long is as good as dead, and its
    users are better served by the others (it rejoins when the loop runs again)."""

    def __init__(self, membership: Membership) -> None:
        super().__init__(name=f"heartbeat:{membership.member_id}", daemon=True)
        self.membership = membership
        self.halt = threading.Event()
        self.loop_seen = time.monotonic()
        settings = membership._settings
        self.period_s = min(settings.lease_s, settings.user_lock_s) / 3
        self.stall_s = settings.loop_stall_s
        self._stalled = False

    def run(self) -> None:
        membership = self.membership
        client = connect_sync(membership._settings)
        members = client.register_script(_MEMBERS_LUA)
        renew = client.register_script(RENEW_LUA)
        try:
            while True:
                self._beat(members, renew)
                if self.halt.wait(self.period_s):
                    return
        finally:
            client.close()

    def _beat(self, members: Any, renew: Any) -> None:
        membership = self.membership
        stalled = time.monotonic() - self.loop_seen > self.stall_s
        if stalled != self._stalled:
            self._stalled = stalled
            log.warning("event loop stalled: heartbeat paused" if stalled else "event loop runs again",
                        extra={"event": "loop_stalled" if stalled else "loop_resumed",
                               "member": membership.member_id})
        if stalled:
            return
        try:
            members(keys=[membership._members_key], args=[membership.member_id, repr(membership.lease_s)])
            for lock_key, value, ttl_ms in membership.locks.held():
                if not renew(keys=[lock_key], args=[value, str(ttl_ms)]):
                    membership.locks.renew_failed(lock_key, value)
        except RedisError:  # Redis down or slow: keep trying; the lease decides who owns what
            log.warning("shard heartbeat of %s failed", membership.member_id, exc_info=True)
        except Exception:  # a bug must not end the thread silently (the lease would lapse unseen)
            log.exception("shard heartbeat of %s failed unexpectedly", membership.member_id)


class LocalMembership:
    """The embedded single process: owns every user; user_lock only excludes this process's tasks."""

    def __init__(self, member_id: str = "local") -> None:
        self.member_id = member_id
        self.lease_losses = 0  # no lease to lose
        self._locked: set[str] = set()

    async def heartbeat(self) -> list[str]:
        return [self.member_id]

    async def alive(self) -> list[str]:
        return [self.member_id]

    async def owned(self, user_ids: Iterable[str]) -> list[str]:
        return list(user_ids)

    def start(self) -> asyncio.Task[None]:
        return asyncio.create_task(asyncio.sleep(0))

    async def leave(self) -> None:
        return None

    @contextlib.asynccontextmanager
    async def user_lock(self, user_id: str, ttl_s: float | None = None) -> AsyncIterator[bool]:
        acquired = user_id not in self._locked
        if acquired:
            self._locked.add(user_id)
        try:
            yield acquired
        finally:
            if acquired:
                self._locked.discard(user_id)

    def acting(self, user_id: str) -> AsyncLock:
        return self.user_lock(user_id)

    async def admit(self, order: Order) -> str:
        return ""  # one process: nobody else sends for its users

    async def recheck_after_wait(self, waited_s: float) -> None:
        return None


def build_membership(settings: RuntimeSettings, redis: AnyRedis | None = None,
                     sends: SendLog | None = None) -> Sharding:
    """The shared membership when the runtime has Redis (`redis` or `settings.redis_url`), else local.
    `sends`: where admitted sends are recorded (the runtime's database)."""
    if redis is None and settings.redis_url is not None:
        redis = connect(settings)
    if redis is None:
        return LocalMembership(default_member_id(settings))
    return Membership(redis, settings, sends=sends)
