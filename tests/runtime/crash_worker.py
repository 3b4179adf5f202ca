"""A runtime process for the crash test: submits its users' intents with write-ahead, and is killed
(SIGKILL) by the test while orders are in flight.

    python tests/runtime/crash_worker.py '{"base_url": ..., "db_url": ..., "redis_url": ...,
        "prefix": ..., "bar_ms": ..., "specs": [[symbol, side, amount], ...],
        "users": [{"user_id": ..., "key": ..., "secret": ...}, ...]}'
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import redis.asyncio as aioredis
from order_path_support import (  # this script's folder is on sys.path when run as a file
    EXECUTOR_TIMING,
    POOL_OPTIONS,
    intents,
)

from xray_runtime.db import connect
from xray_runtime.exchange_pool import ExchangeAccount, ExchangePool
from xray_runtime.execution import Executor
from xray_runtime.journal import Journal
from xray_runtime.order_state import RedisOrderState


async def main(job: dict[str, Any]) -> None:
    journal = Journal(connect(job["db_url"], create=False))
    state = RedisOrderState(aioredis.Redis.from_url(job["redis_url"], decode_responses=True), job["prefix"])
    pool = ExchangePool(options=POOL_OPTIONS)  # signing windows as the test's own executor's
    executor = Executor(pool, journal, state, concurrency=2, **EXECUTOR_TIMING)  # the kill lands mid-batch
    specs = [tuple(spec) for spec in job["specs"]]
    submits = []
    for user in job["users"]:
        account = ExchangeAccount.of(user["user_id"], "mexc", job["base_url"], user["key"], user["secret"])
        submits.append(executor.submit(account, intents(user["user_id"], job["bar_ms"], specs)))
    await asyncio.gather(*submits)
    print("finished", flush=True)  # the test fails if the worker gets this far
    await pool.close()


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
