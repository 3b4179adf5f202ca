"""What the sharding, fencing and shared-limiter tests share: the test Redis, a polling helper, a slow
quota, and fixtures for a private Postgres database and a private Redis key prefix."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Awaitable, Callable

import psycopg
import pytest
import redis.asyncio as aioredis

from xray_runtime.ratelimit import Quota

PG_ADMIN = os.environ.get("XRAY_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("XRAY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
SLOW = {"ip": Quota.of(10, 60.0), "key": Quota.of(10, 60.0)}


async def eventually(check: Callable[[], Awaitable[bool]], within_s: float = 10.0) -> bool:
    """Poll `check` until it holds; False if it never did within `within_s` (a generous bound)."""
    for _ in range(int(within_s / 0.05)):
        if await check():
            return True
        await asyncio.sleep(0.05)
    return False


@pytest.fixture
def database_url():
    name = f"xray_shard_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    server = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    yield f"{server}/{name}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def redis_prefix():
    prefix = f"test-shard-{uuid.uuid4().hex[:10]}"
    yield prefix
    client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    keys = [key async for key in client.scan_iter(f"{prefix}:*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()
