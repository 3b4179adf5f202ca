"""The Operations view on a runtime that shares Redis: live processes from the shard ring, users per
process, and the shared limiter's busiest scopes."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import uuid

import pytest
import redis

from xray_runtime.ratelimit import RedisLimiter, quotas_from_settings
from xray_runtime.redis_conn import connect as redis_connect
from xray_runtime.settings import RuntimeSettings
from xray_web import ops_reads

REDIS_URL = os.environ.get("XRAY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def prefix():
    name = f"test-web-{uuid.uuid4().hex}"
    yield name
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(match=f"{name}:*"):
        client.delete(key)


def test_processes_users_per_process_and_the_busiest_scopes(world, prefix):
    settings = RuntimeSettings(redis_url=REDIS_URL, redis_prefix=prefix,
                               http_port=world.sources.runtime_settings.http_port)
    client = redis.Redis.from_url(REDIS_URL)
    seconds, _ = client.time()
    client.zadd(f"{prefix}:members", {"proc-a": seconds + 600, "proc-b": seconds + 600,
                                      "proc-dead": seconds - 1})  # an expired lease is not alive

    async def spend() -> None:
        shared = redis_connect(settings)
        limiter = RedisLimiter(shared, quotas_from_settings(settings), prefix)
        await limiter.acquire(["ip:203.0.113.5"], 100.0)
        await shared.aclose()

    asyncio.run(spend())
    view = ops_reads.runtime(dataclasses.replace(world.sources, runtime_settings=settings))
    processes = {p["process"]: p["users"] for p in view["processes"]}
    assert set(processes) <= {"proc-a", "proc-b"} and sum(processes.values()) == 2
    [cell] = view["rate_limit_cells"]
    burst = quotas_from_settings(settings)["ip"].burst
    assert cell["scope"] == "ip:203.0.113.5" and 0 < cell["in_use"] <= 100.0
    assert cell["available_now"] == pytest.approx(burst - cell["in_use"], abs=1e-3)
