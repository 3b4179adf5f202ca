"""The hot order state every runtime process reads: each user's orders by client order id.

`RedisOrderState` shares it between processes; `LocalOrderState` keeps it in this process (the
embedded setup). Both are a cache of the journal: the journal in SQL stays the durable record, and
`rebuild_from(journal)` restores the state after a restart or a Redis outage.

Redis layout (all under `prefix`):

* `prefix:orders:{user_id}`       hash: client order id -> order JSON
* `prefix:orders:open:{user_id}`  set: the user's non-terminal client order ids
* `prefix:orders:users`           set: users that have had a non-terminal order

The braces make `{user_id}` a cluster hash tag, so a user's two keys share a slot and one pipeline
stage updates them together. The users set is only ever added to: removing a user when their last
order ends would need the user's keys and the global set in one atomic step, which RedisCluster
cannot do across slots, so `users_with_open` filters it by the per-user open sets instead.

Staleness: a write that fails (Redis down, a timeout) leaves Redis behind the journal for the users
it carried: an order the journal has SUBMITTED may still read PENDING there ("never sent": it would
be sent again), one the journal has settled may still read open. Those users are marked stale; their
reads answer nothing (the executor then reads the journal) until `rebuild_from(journal)` has made
Redis agree again, which a state given its journal does by itself on the next read.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Protocol, cast

import redis.exceptions

from xray_core.errors import XrayError
from xray_core.trading.orders import Order
from xray_runtime.journal import Journal
from xray_runtime.redis_conn import AnyRedis


class OrderStateUnavailableError(XrayError):
    """The shared order state (Redis) could not be read or written; the journal still holds the truth."""


class OrderState(Protocol):
    async def get(self, user_id: str, client_order_id: str) -> Order | None: ...

    async def get_many(self, user_id: str, client_order_ids: Sequence[str]) -> dict[str, Order]: ...

    async def put(self, orders: Sequence[Order]) -> None: ...

    async def open(self, user_id: str) -> list[Order]: ...

    async def users_with_open(self) -> set[str]: ...

    async def rebuild_from(self, journal: Journal, user_ids: Iterable[str] | None = None) -> int: ...


class LocalOrderState:
    """The order state in this process's memory."""

    def __init__(self) -> None:
        self._orders: dict[str, dict[str, Order]] = {}

    async def get(self, user_id: str, client_order_id: str) -> Order | None:
        return self._orders.get(user_id, {}).get(client_order_id)

    async def get_many(self, user_id: str, client_order_ids: Sequence[str]) -> dict[str, Order]:
        orders = self._orders.get(user_id, {})
        return {cid: orders[cid] for cid in client_order_ids if cid in orders}

    async def put(self, orders: Sequence[Order]) -> None:
        for order in orders:
            self._orders.setdefault(order.user_id, {})[order.client_order_id] = order

    async def open(self, user_id: str) -> list[Order]:
        return [order for order in self._orders.get(user_id, {}).values() if not order.terminal]

    async def users_with_open(self) -> set[str]:
        return {user for user, orders in self._orders.items() if any(not o.terminal for o in orders.values())}

    async def rebuild_from(self, journal: Journal, user_ids: Iterable[str] | None = None) -> int:
        return await rebuild_from(journal, self, user_ids)


class RedisOrderState:
    """The order state in Redis (single node or cluster), shared by every runtime process. With its
    `journal`, a user left stale by a failed write is rebuilt from it on the next read."""

    def __init__(self, client: AnyRedis, prefix: str = "xray", journal: Journal | None = None) -> None:
        self.client = client
        self.prefix = prefix
        self.journal = journal
        self.stale_users: set[str] = set()  # users whose last write may not have reached Redis

    def _orders_key(self, user_id: str) -> str:
        return f"{self.prefix}:orders:{{{user_id}}}"

    def _open_key(self, user_id: str) -> str:
        return f"{self.prefix}:orders:open:{{{user_id}}}"

    @property
    def _users_key(self) -> str:
        return f"{self.prefix}:orders:users"

    async def get(self, user_id: str, client_order_id: str) -> Order | None:
        return (await self.get_many(user_id, [client_order_id])).get(client_order_id)

    async def get_many(self, user_id: str, client_order_ids: Sequence[str]) -> dict[str, Order]:
        if not client_order_ids:
            return {}
        if user_id in self.stale_users:
            await self._heal(user_id)  # or raise: the caller then reads the journal, not stale Redis
        return await self._read(user_id, client_order_ids)

    async def _read(self, user_id: str, client_order_ids: Sequence[str]) -> dict[str, Order]:
        if not client_order_ids:
            return {}
        async with _translated("read orders"):
            values = await self.client.hmget(self._orders_key(user_id), list(client_order_ids))
        return {cid: _decode(value) for cid, value in zip(client_order_ids, values, strict=True)
                if value is not None}

    async def put(self, orders: Sequence[Order]) -> None:
        """Write a batch of orders in one pipelined round trip. If it fails, their users are stale."""
        if not orders:
            return
        try:
            async with _translated("write orders"):
                pipe = self.client.pipeline(transaction=False)
                for order in orders:
                    pipe.hset(self._orders_key(order.user_id), order.client_order_id, _encode(order))
                    if order.terminal:
                        pipe.srem(self._open_key(order.user_id), order.client_order_id)
                    else:
                        pipe.sadd(self._open_key(order.user_id), order.client_order_id)
                        pipe.sadd(self._users_key, order.user_id)
                await pipe.execute()
        except OrderStateUnavailableError:
            self.stale_users.update(order.user_id for order in orders)
            raise

    async def _heal(self, user_id: str) -> None:
        """Rebuild a stale user's state from the journal, or raise OrderStateUnavailableError."""
        if self.journal is not None:
            await rebuild_from(self.journal, self, [user_id])  # raises while Redis is down
        if user_id in self.stale_users:
            raise OrderStateUnavailableError(
                f"order state in Redis unavailable (read orders): user {user_id}'s may be behind the "
                "journal after a failed write", "the journal answers until rebuild_from(journal) ran")

    def mark_fresh(self, user_ids: Iterable[str] | None) -> None:
        """These users (None: all) agree with the journal again (a rebuild wrote them)."""
        if user_ids is None:
            self.stale_users.clear()
        else:
            self.stale_users.difference_update(user_ids)

    async def open(self, user_id: str) -> list[Order]:
        async with _translated("read open orders"):
            # connect() decodes responses, so members are str (redis types them bytes | str)
            ids = sorted(cast("set[str]", await self.client.smembers(self._open_key(user_id))))
        found = await self._read(user_id, ids)  # as Redis has them, stale or not (rebuild_from reads this)
        return [order for order in found.values() if not order.terminal]

    async def users_with_open(self) -> set[str]:
        async with _translated("read users with open orders"):
            users = sorted(cast("set[str]", await self.client.smembers(self._users_key)))
            if not users:
                return set()
            pipe = self.client.pipeline(transaction=False)
            for user_id in users:
                pipe.scard(self._open_key(user_id))
            counts = await pipe.execute()
        return {user for user, count in zip(users, counts, strict=True) if count}

    async def rebuild_from(self, journal: Journal, user_ids: Iterable[str] | None = None) -> int:
        return await rebuild_from(journal, self, user_ids)

    async def clear(self, user_ids: Iterable[str]) -> None:
        """Forget these users' orders (used before a rebuild and by tests)."""
        async with _translated("clear orders"):
            pipe = self.client.pipeline(transaction=False)
            for user_id in user_ids:
                pipe.delete(self._orders_key(user_id))
                pipe.delete(self._open_key(user_id))
                pipe.srem(self._users_key, user_id)
            await pipe.execute()


async def rebuild_from(journal: Journal, state: OrderState, user_ids: Iterable[str] | None = None) -> int:
    """Make `state` agree with the journal for `user_ids` (default: everyone): load the journal's
    non-terminal orders, and overwrite orders the state still holds open that the journal has moved
    on (written while Redis was down). Returns how many orders were written. Terminal orders need no
    hot state: the executor looks ids it does not find up in the journal."""
    wanted = None if user_ids is None else set(user_ids)
    if wanted is None:
        orders = await asyncio.to_thread(journal.open_orders)
    else:
        orders = [o for user_id in wanted for o in await asyncio.to_thread(journal.open_orders, user_id)]
    open_ids = {order.client_order_id for order in orders}
    # Only the users asked about: scanning every user per call would make reconciling N users O(N²).
    for user_id in await state.users_with_open() if wanted is None else wanted:
        stale = [o.client_order_id for o in await state.open(user_id) if o.client_order_id not in open_ids]
        if stale:
            orders.extend((await asyncio.to_thread(journal.get_many, stale)).values())
    await state.put(orders)
    mark_fresh = getattr(state, "mark_fresh", None)
    if mark_fresh is not None:
        mark_fresh(wanted)
    return len(orders)


@contextlib.asynccontextmanager
async def _translated(what: str) -> AsyncIterator[None]:
    """Turn a Redis failure into `OrderStateUnavailableError` naming what was being done."""
    try:
        yield
    except redis.exceptions.RedisError as error:
        raise OrderStateUnavailableError(
            f"order state in Redis unavailable ({what}): {type(error).__name__}: {error}",
            "check XRAY_RUNTIME_REDIS_URL and that Redis is up; the journal keeps every order and "
            "rebuild_from(journal) restores the state",
        ) from error


def _encode(order: Order) -> str:
    return json.dumps(order.as_dict(), separators=(",", ":"))


def _decode(value: str | bytes) -> Order:
    return Order.from_dict(json.loads(value))
