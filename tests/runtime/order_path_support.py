"""Shared pieces of the order-path tests: journals on SQLite and Postgres, hot state on real Redis,
funded emulator users, intents, and one `OrderPath` bundling pool, journal, state and executor.

Test modules declare their fixtures as one-line wrappers around `journal_of` and `state_of`."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis.asyncio as aioredis
import requests
import sqlalchemy as sa

from xray_core.trading.orders import Lineage, Order, OrderIntent, Side
from xray_runtime.db import connect
from xray_runtime.exchange_pool import ExchangeAccount, ExchangePool
from xray_runtime.execution import Executor
from xray_runtime.journal import Journal, fills_table, orders_table
from xray_runtime.order_state import LocalOrderState, OrderState, RedisOrderState
from xray_runtime.reconcile import AuditResult, ReconcileReport, audit, reconcile

PG_URL = os.environ.get("XRAY_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("XRAY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
MINUTE = 60_000
# Short signing windows keep the tests quick: a request of the test's clients can act for 1.5 s after it
# was signed (ccxt's recvWindow), every send is signed within 3 s of its journal write, and the
# clocks agree within 0.25 s. The executor waits exactly that out before it sends an order again.
POOL_OPTIONS: dict[str, Any] = {"options": {"recvWindow": 1500}}
EXECUTOR_TIMING: dict[str, Any] = {"clock_skew_ms": 250, "sign_deadline_ms": 3000}
LINEAGE = Lineage("bundle-7", "sma_cross", '{"fast":5,"slow":20}', "gbm@3", "data-abc")


def sqlite_journal(tmp_path: Any) -> Journal:
    """A journal in a fresh SQLite file."""
    engine = connect(f"sqlite:///{tmp_path}/journal.db", create=False)
    orders_table.create(engine, checkfirst=True)
    fills_table.create(engine, checkfirst=True)
    return Journal(engine)


@dataclass
class PostgresSchema:
    """A journal in a schema of its own on the local Postgres (dropped afterwards)."""

    name: str = field(default_factory=lambda: f"journal_{uuid.uuid4().hex[:12]}")

    def journal(self) -> Journal:
        base = connect(PG_URL, create=False)
        with base.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{self.name}"'))
        engine = base.execution_options(schema_translate_map={None: self.name})
        for table in (orders_table, fills_table):
            table.create(engine)
        self._base = base
        return Journal(engine)

    def drop(self) -> None:
        with self._base.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{self.name}" CASCADE'))
        self._base.dispose()


JOURNAL_KINDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
STATE_KINDS = ["local", pytest.param("redis", marks=pytest.mark.redis)]


def journal_of(kind: str, tmp_path: Any) -> Iterator[Journal]:
    """Body of a `journal` fixture: the order journal on SQLite or on the local Postgres."""
    if kind == "sqlite":
        yield sqlite_journal(tmp_path)
        return
    schema = PostgresSchema()
    try:
        yield schema.journal()
    finally:
        schema.drop()


@contextlib.asynccontextmanager
async def redis_state() -> AsyncIterator[RedisOrderState]:
    """RedisOrderState on the local Redis under a prefix of its own, deleted afterwards."""
    client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    prefix = f"test-orders-{uuid.uuid4().hex[:10]}"
    try:
        yield RedisOrderState(client, prefix)
    finally:
        keys = [key async for key in client.scan_iter(f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def state_of(kind: str) -> AsyncIterator[OrderState]:
    """Body of a `state` fixture: each order-state implementation."""
    if kind == "local":
        yield LocalOrderState()
        return
    async with redis_state() as state:
        yield state


def intents(user_id: str, bar_ms: int, specs: Sequence[tuple[str, str, float]],
            lineage: Lineage = LINEAGE) -> list[OrderIntent]:
    """One intent per (symbol, side, amount), named "enter-0", "enter-1", ... on bar `bar_ms`."""
    return [OrderIntent(user_id, symbol, Side(side), amount, bar_ms, f"enter-{i}", lineage)
            for i, (symbol, side, amount) in enumerate(specs)]


def bar_of(emulator: Any) -> int:
    now = emulator.clock.now_ms()
    return now - now % MINUTE


def fired(admin: Any) -> dict[str, int]:
    """How often each fault kind fired on the emulator so far."""
    return requests.get(admin.url + "/faults", timeout=10).json()["fired"]


@dataclass
class OrderPath:
    """Pool, journal, state and executor against one emulator, with funded users."""

    emulator: Any
    admin: Any
    journal: Journal
    state: OrderState
    pool: ExchangePool
    executor: Executor
    accounts: dict[str, ExchangeAccount] = field(default_factory=dict)

    def add_user(self, user_id: str, funds: dict[str, str] | None = None) -> ExchangeAccount:
        key, secret = self.admin.create_account(funds or {"USDT": "5000"})
        account = ExchangeAccount.of(user_id, "mexc", self.emulator.base_url, key, secret)
        self.accounts[user_id] = account
        return account

    def truth(self, user_id: str) -> dict[str, Any]:
        return self.admin.account(self.accounts[user_id].api_key.get_secret_value())

    async def reconcile(self, user_id: str, symbols: Sequence[str] = ("BTC/USDT", "ETH/USDT"),
                        **options: Any) -> ReconcileReport:
        venue = await self.pool.venue(self.accounts[user_id])
        return await reconcile(self.accounts[user_id], venue, self.journal, self.state, symbols, **options)

    def audit(self, user_id: str) -> AuditResult:
        return audit(self.truth(user_id), self.journal, user_id)

    async def state_equals_journal(self, user_id: str) -> bool:
        recorded = {o.client_order_id: o for o in self.journal.orders(user_id)}
        held = await self.state.get_many(user_id, list(recorded))
        return held == recorded


def no_throttle(_account: ExchangeAccount) -> Callable[[float], Awaitable[None]]:
    """The pool's throttle hook with nothing behind it: the test emulator's weight limit is far above
    what tests send, and ccxt's own per-key throttle would only make them slow (MEXC's account and
    trade-history requests cost 10 units of 50 ms)."""

    async def throttle(_cost: float) -> None:
        return None

    return throttle


def make_order_path(emulator: Any, admin: Any, journal: Journal, state: OrderState, *,
                    timeout_ms: int = 10_000, **executor_options: Any) -> OrderPath:
    pool = ExchangePool(timeout_ms=timeout_ms, throttle_factory=no_throttle, options=POOL_OPTIONS)
    options: dict[str, Any] = {"backoff_s": 0.05, "rate_limit_backoff_s": 0.1, "max_attempts": 4,
                               **EXECUTOR_TIMING}
    executor = Executor(pool, journal, state, **(options | executor_options))
    return OrderPath(emulator, admin, journal, state, pool, executor)


def statuses(orders: Sequence[Order]) -> list[str]:
    return [str(order.status) for order in orders]
