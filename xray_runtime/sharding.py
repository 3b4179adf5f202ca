"""Which runtime process acts for which user: a consistent-hash ring over the live processes.

Each process heartbeats into the sorted set `prefix:members` (score = its lease expiry by the Redis
server's clock) every lease_s / 3. The live members are those with an unexpired lease; every process
builds the same ring from them and acts for the users the ring gives it. A process that dies
(SIGKILL, a lost host) stops heartbeating, and lease_s later the others own its users; adding or
removing a process moves only about 1/N of the users.

Processes read the member set at slightly different moments, so during a hand-over two of them may
both believe they own a user (or, briefly, neither: a skipped tick). `user_lock` closes the first
gap: a process acts for a user only while holding that user's lock, so two never act at once.

The embedded single-process default uses `LocalMembership`, which owns every user.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import hashlib
import logging
import math
import os
import secrets
import socket
from collections.abc import AsyncIterator, Iterable
from typing import Protocol

from xray_runtime.redis_conn import AnyRedis, connect, key
from xray_runtime.settings import RuntimeSettings

log = logging.getLogger(__name__)

VNODES = 128


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
    def user_lock(self, user_id: str, ttl_s: float) -> contextlib.AbstractAsyncContextManager[bool]: ...


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

# Delete the lock only if it still holds our token: after our TTL ran out, it may be someone else's.
_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class Membership:
    """This process's place in the shared ring on Redis (see the module docstring)."""

    def __init__(self, redis: AnyRedis, settings: RuntimeSettings, member_id: str | None = None,
                 vnodes: int = VNODES) -> None:
        self.member_id = member_id or default_member_id(settings)
        self.lease_s = settings.lease_s
        self._redis = redis
        self._settings = settings
        self._vnodes = vnodes
        self._members_key = key(settings, "members")
        self._members = redis.register_script(_MEMBERS_LUA)
        self._release = redis.register_script(_RELEASE_LUA)
        self._ring = HashRing(vnodes=vnodes)
        self._task: asyncio.Task[None] | None = None
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
        """Heartbeat every lease_s / 3 until cancelled. A failed heartbeat is logged and retried at
        the next beat: two more chances before the lease runs out."""
        while True:
            try:
                await self.heartbeat()
            except Exception:  # Redis down or slow: keep trying; the lease decides who owns what
                log.warning("shard heartbeat of %s failed", self.member_id, exc_info=True)
            await asyncio.sleep(self.lease_s / 3)

    def start(self) -> asyncio.Task[None]:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run(), name=f"heartbeat:{self.member_id}")
        return self._task

    async def stop(self) -> None:
        """Stop heartbeating without leaving: the lease runs out as if the process had died."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def leave(self) -> None:
        """At shutdown: stop heartbeating and hand this process's users over at once."""
        await self.stop()
        await self._redis.zrem(self._members_key, self.member_id)

    @contextlib.asynccontextmanager
    async def user_lock(self, user_id: str, ttl_s: float) -> AsyncIterator[bool]:
        """Hold `user_id`'s lock for at most `ttl_s` seconds; yields False (without waiting) when
        another process holds it: then skip the user this tick. Set `ttl_s` above the longest time
        one user's work may take; after it the lock frees itself (a holder that died)."""
        lock_key = key(self._settings, "lock", "user", user_id)
        token = secrets.token_hex(16)
        acquired = bool(await self._redis.set(lock_key, token, nx=True, px=max(1, math.ceil(ttl_s * 1000))))
        try:
            yield acquired
        finally:
            if acquired:
                await self._release(keys=[lock_key], args=[token])


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
    async def user_lock(self, user_id: str, ttl_s: float) -> AsyncIterator[bool]:
        acquired = user_id not in self._locked
        if acquired:
            self._locked.add(user_id)
        try:
            yield acquired
        finally:
            if acquired:
                self._locked.discard(user_id)


def build_membership(settings: RuntimeSettings, redis: AnyRedis | None = None) -> Sharding:
    """The shared membership when the runtime has Redis (`redis` or `settings.redis_url`), else local."""
    if redis is None and settings.redis_url is not None:
        redis = connect(settings)
    if redis is None:
        return LocalMembership(default_member_id(settings))
    return Membership(redis, settings)
