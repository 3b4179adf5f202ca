"""Fencing: an order leaves only while this process holds the user's lock, under a fencing token, as
the owner the shard ring gives the user — checked in one Redis script right before the venue call.

Why a lock alone is not enough: a process can hold a lock it no longer deserves (its lease lapsed
while its event loop was blocked; a hand-over moved the user while it waited for an order slot). So
every send is admitted by `admit(order)`, one atomic script that

1. checks this process's own lease in the member set is unexpired,
2. takes the user's lock (or renews it, if the value it holds is still there), and
3. returns the live members, from which the ring's owner of the user is computed locally:
   a process that is not the owner releases what it took and does not send.

The lock's value is `member|incarnation|token`. The token comes from the user's fence record
(`max(last token + 1, Redis time in µs)`): strictly increasing per user, even across a Redis restart
that lost the record. A lock whose holder's lease has lapsed (a dead or cut-off process) is taken
over at once instead of waiting out its TTL; the holder cannot send any more, as its own admit
checks its lease first. A lock this very process left behind (its release failed in an outage) is
simply taken again, under a new token.

Taken over from another process: this process decided its orders before it took the lock, maybe
before the other process's last sends were recorded. So while the lock it took was another's last,
an order is sent only if the send log shows no other holder sent for that user on that bar; else
it stays SUBMITTED (unsettled, not lost) and the next step decides the bar again, resolving every
known client order id against the exchange before anything is sent. Every send is recorded before
it leaves, and admitted only while the sender's own lease has `margin_s` to run, so a process that
takes a lapsed holder's lock over finds that holder's admitted sends recorded.

Locks are taken per order slot: the service opens `acting(user_id)` around a user's batch, and the
lock is taken by the batch's first admitted order (after it waited for its slot), held and renewed
(by every admit and by the heartbeat thread) until the batch ends. The ccxt throttle checks the
fence again when the rate limiter made the request wait (`recheck_after_wait`), so a send delayed
there is fenced as late as possible.

Every admitted send is recorded (write-ahead, before the venue call) in the table `order_sends`
(`xray_runtime.send_log`): client order id, user, bar, member, incarnation and token, and the Redis
time of admission. `send_log.double_acting_users` reads it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol

from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from xray_core.exchange.protocol import VenueRateLimitedError
from xray_core.redaction import describe
from xray_core.trading.orders import Order
from xray_runtime.redis_conn import AnyRedis
from xray_runtime.send_log import SendLog

log = logging.getLogger(__name__)

# KEYS: members, lock, fence. ARGV: holder, member, ttl_ms, value held ('' = none), as_member ('1':
# own lease must be live for `margin` seconds more, and a lapsed holder's lock is taken over; '0': a
# plain lock), margin.
# Reply: status, lock value, previous holder, Redis time (µs), then the live members.
_ACQUIRE_LUA = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local now_us = string.format('%.0f', tonumber(clock[1]) * 1000000 + tonumber(clock[2]))
local live = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. string.format('%.6f', now), '+inf')
local function reply(status, value, previous)
  local out = {status, value, previous, now_us}
  for _, m in ipairs(live) do out[#out + 1] = m end
  return out
end
if ARGV[5] == '1' then
  local mine = redis.call('ZSCORE', KEYS[1], ARGV[2])
  if not mine or tonumber(mine) <= now + tonumber(ARGV[6]) then return reply('lapsed', '', '') end
end
local current = redis.call('GET', KEYS[2])
if ARGV[4] ~= '' then
  if current == ARGV[4] then
    redis.call('PEXPIRE', KEYS[2], ARGV[3])
    return reply('held', current, '')
  end
  return reply('lost', current or '', '')
end
if current and string.match(current, '^(.*)|[^|]*$') ~= ARGV[1] then
  local member = string.match(current, '^(.*)|[^|]*|[^|]*$')
  local alive = false
  for _, m in ipairs(live) do
    if m == member then alive = true end
  end
  if ARGV[5] ~= '1' or alive then return reply('busy', current, '') end
end
local fence = redis.call('HMGET', KEYS[3], 'token', 'holder')
local token = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
if fence[1] and tonumber(fence[1]) >= token then token = tonumber(fence[1]) + 1 end
local text = string.format('%.0f', token)
local value = ARGV[1] .. '|' .. text
redis.call('HSET', KEYS[3], 'token', text, 'holder', ARGV[1])
redis.call('SET', KEYS[2], value, 'PX', ARGV[3])
return reply('taken', value, fence[2] or '')
"""

# Delete (release) or extend (renew) the lock only while it still holds our value.
RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
RENEW_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


class FenceLostError(VenueRateLimitedError):
    """Raised from the ccxt throttle when the fence no longer admits a send that the rate limiter
    delayed: like a 429, nothing was sent; the executor's next attempt asks `admit`, which says why."""


class Ring(Protocol):
    def owner(self, user_id: str) -> str: ...


@dataclass
class Lease:
    """This process's hold on one user's lock."""

    user_id: str
    ttl_ms: int
    value: str = ""  # the lock's value while held: holder|token
    taken_over_from: str = ""  # another process held it last: this batch sends nothing
    lost: str = ""  # set by the renewer when the value was gone

    @property
    def token(self) -> int:
        return int(self.value.rsplit("|", 1)[1]) if self.value else 0


@dataclass(frozen=True, slots=True)
class _Ticket:
    locks: UserLocks
    user_id: str
    value: str


# The send admitted last in this task; the ccxt throttle reads (and clears) it.
SENDING: ContextVar[_Ticket | None] = ContextVar("xray_sending", default=None)


@dataclass
class FenceStats:
    admitted: int = 0
    refused: dict[str, int] = field(default_factory=dict)  # by status

    def refuse(self, status: str) -> None:
        self.refused[status] = self.refused.get(status, 0) + 1


class UserLocks:
    """The per-user locks of one process (`member_id`, this run: `incarnation`) on Redis."""

    def __init__(self, redis: AnyRedis, prefix: str, member_id: str, members_key: str,
                 ring: Callable[[Iterable[str]], Ring], *, ttl_s: float, margin_s: float = 0.0,
                 sends: SendLog | None = None, incarnation: str | None = None) -> None:
        self.member_id = member_id
        self.margin_s = margin_s
        self.holder = f"{member_id}|{incarnation or secrets.token_hex(4)}"
        self.ttl_ms = max(1, round(ttl_s * 1000))
        self.stats = FenceStats()
        self._redis = redis
        self._prefix = prefix
        self._members_key = members_key
        self._ring = ring
        self._sends = sends
        self._acquire = redis.register_script(_ACQUIRE_LUA)
        self._release = redis.register_script(RELEASE_LUA)
        self._leases: dict[str, Lease] = {}

    def lock_key(self, user_id: str) -> str:
        return f"{self._prefix}:{{shard}}:lock:{user_id}"

    def fence_key(self, user_id: str) -> str:
        return f"{self._prefix}:{{shard}}:fence:{user_id}"

    # ---- holding ------------------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def user_lock(self, user_id: str, ttl_s: float | None = None) -> AsyncIterator[bool]:
        """Take the user's lock now (no ring check) for as long as the block runs, renewed by the
        heartbeat thread; yields False, without waiting, when another holder has it."""
        lease = Lease(user_id, self.ttl_ms if ttl_s is None else max(1, round(ttl_s * 1000)))
        if user_id in self._leases:
            yield False
            return
        reply = await self._call(lease, as_member=False)
        acquired = reply[0] == "taken"
        if acquired:
            lease.value = reply[1]
            self._leases[user_id] = lease
        try:
            yield acquired
        finally:
            if acquired:
                await self._end(lease)

    @contextlib.asynccontextmanager
    async def acting(self, user_id: str) -> AsyncIterator[bool]:
        """Act for the user for as long as the block runs: the lock is taken by the first admitted
        send (see the module docstring) and released at the end. False if this process is already
        acting for the user."""
        if user_id in self._leases:
            yield False
            return
        lease = self._leases[user_id] = Lease(user_id, self.ttl_ms)
        try:
            yield True
        finally:
            await self._end(lease)

    async def _end(self, lease: Lease) -> None:
        if self._leases.get(lease.user_id) is lease:
            del self._leases[lease.user_id]
        if lease.value:
            with contextlib.suppress(RedisError):  # unreleased, it lapses after its TTL
                await self._release(keys=[self.lock_key(lease.user_id)], args=[lease.value])

    def held(self) -> list[tuple[str, str, int]]:
        """(lock key, value, ttl ms) of every lock held now: what the heartbeat thread renews."""
        return [(self.lock_key(u), lease.value, lease.ttl_ms) for u, lease in list(self._leases.items())
                if lease.value]

    def renew_failed(self, key: str, value: str) -> None:
        """The heartbeat thread found a lock's value gone (it lapsed, or was taken over)."""
        for lease in list(self._leases.values()):
            if lease.value == value:
                lease.lost = f"the lock {key} was no longer ours when renewed"

    # ---- admitting sends ------------------------------------------------------------------------------
    async def admit(self, order: Order) -> str:
        """'' when `order` may be sent now (and the send is recorded); else why not. See the module
        docstring; a refusal leaves the order unsettled, to be decided again."""
        lease = self._leases.get(order.user_id)
        if lease is None:
            return self._refused("unopened", f"not sent: no batch for user {order.user_id} is open here")
        try:
            status, value, previous, now_us, members = await self._check(lease)
        except RedisError as error:
            why = describe(error)
            return self._refused("unavailable", f"not sent: the user's lock could not be checked ({why})")
        if status == "lapsed":
            return self._refused(status, f"not sent: the lease of {self.member_id} lapsed; its users pass on")
        if status in ("lost", "busy"):
            lease.value = ""
            return self._refused(status, f"not sent: {_member(value) or 'nobody'} holds user "
                                         f"{order.user_id}'s lock now")
        owner = self._ring(members).owner(order.user_id)
        if status == "taken":
            lease.value, lease.lost = value, ""
        if owner != self.member_id:
            await self._end_hold(lease)
            return self._refused("not_owner", f"not sent: the ring gives user {order.user_id} to {owner} now")
        if status == "taken" and previous and previous != self.holder:
            lease.taken_over_from = previous
        if lease.taken_over_from and await self._others_sent(order):
            return self._refused("taken_over", _taken_over(order.user_id, lease.taken_over_from))
        if self._sends is not None:
            try:
                await asyncio.to_thread(self._sends.record, order, self.holder, lease.token, int(now_us))
            except SQLAlchemyError as error:
                why = describe(error)
                return self._refused("unrecorded", f"not sent: the send could not be recorded ({why})")
        self.stats.admitted += 1
        SENDING.set(_Ticket(self, order.user_id, lease.value))
        return ""

    async def recheck_after_wait(self, waited_s: float) -> None:
        """Called by the ccxt throttle after the limiter admitted a request: when it had to wait,
        the send admitted last in this task is fenced again. Raises FenceLostError when refused."""
        ticket = SENDING.get()
        if ticket is None or ticket.locks is not self:
            return
        SENDING.set(None)  # one request per admission: the lookups that follow are not sends
        if waited_s <= 0:
            return
        lease = self._leases.get(ticket.user_id)
        if lease is None or lease.value != ticket.value:
            raise FenceLostError(f"user {ticket.user_id}'s lock changed while the request waited", "Fence")
        try:
            status, _, _, _, members = await self._check(lease)
        except RedisError as error:
            why = describe(error)
            raise FenceLostError(f"the user's lock could not be checked ({why})", "Fence") from None
        if status != "held" or self._ring(members).owner(ticket.user_id) != self.member_id:
            lease.value = "" if status != "held" else lease.value
            raise FenceLostError(f"user {ticket.user_id} is no longer this process's ({status})", "Fence")

    # ---- plumbing -------------------------------------------------------------------------------------
    async def _check(self, lease: Lease) -> tuple[str, str, str, str, list[str]]:
        reply = await self._call(lease, as_member=True)
        return reply[0], reply[1], reply[2], reply[3], list(reply[4:])

    async def _call(self, lease: Lease, *, as_member: bool) -> list[Any]:
        keys = [self._members_key, self.lock_key(lease.user_id), self.fence_key(lease.user_id)]
        args = [self.holder, self.member_id, str(lease.ttl_ms), lease.value, "1" if as_member else "0",
                repr(self.margin_s)]
        return list(await self._acquire(keys=keys, args=args))

    async def _others_sent(self, order: Order) -> bool:
        """Whether another holder may have sent for this user on this bar (then this process, which
        decided before it took the lock over, must not send: see the module docstring). Without a
        send log nobody can tell: assume it did."""
        if self._sends is None:
            return True
        try:
            return await asyncio.to_thread(self._sends.others_sent, order.user_id, order.bar_ms, self.holder)
        except SQLAlchemyError:
            return True

    async def _end_hold(self, lease: Lease) -> None:
        if lease.value:
            value, lease.value = lease.value, ""
            with contextlib.suppress(RedisError):
                await self._release(keys=[self.lock_key(lease.user_id)], args=[value])

    def _refused(self, status: str, reason: str) -> str:
        self.stats.refuse(status)
        log.info("send refused", extra={"event": "send_refused", "status": status, "reason": reason})
        return reason


def _member(value: str) -> str:
    """The member id in a lock value `member|incarnation|token`."""
    return value.rsplit("|", 2)[0] if value.count("|") >= 2 else value


def _taken_over(user_id: str, previous: str) -> str:
    return (f"not sent: user {user_id} was taken over from {previous.rsplit('|', 1)[0]}; the bar is decided "
            f"again on the next step, from what the exchange has")
