"""The runtime's Redis client under a tick's load: more commands at once than it has connections wait
for one instead of failing (redis-py's default pool raised "Too many connections" past 100, and a
10,000-user tick left most users' orders unsent: "the user's lock could not be checked")."""

from __future__ import annotations

import asyncio
import uuid

from shard_support import REDIS_URL

from xray_runtime.redis_conn import connect
from xray_runtime.settings import RuntimeSettings


async def test_more_commands_at_once_than_connections_all_complete():
    settings = RuntimeSettings(redis_url=REDIS_URL, redis_max_connections=8)
    client = connect(settings)
    key = f"test-pool-{uuid.uuid4().hex}"
    try:
        # BLPOP with a short timeout holds its connection for a while: 300 of them at once need far
        # more connections than 8 (or redis-py's default 100) and must queue for them.
        results = await asyncio.gather(*(client.blpop([key], timeout=0.05) for _ in range(300)))
        assert results == [None] * 300
    finally:
        await client.aclose()
