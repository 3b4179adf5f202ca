"""One place that opens Redis for the runtime: a single node or a RedisCluster, by setting.

Every key goes under `settings.redis_prefix`; keys that must live in one cluster slot (a Lua script
touching several) share a `{hash tag}`.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError, TimeoutError

from xray_core.errors import ConfigError
from xray_runtime.settings import RuntimeSettings

AnyRedis = aioredis.Redis | RedisCluster


def connect(settings: RuntimeSettings, **options: Any) -> AnyRedis:
    """An asyncio Redis client for `settings.redis_url` (decoded strings, short timeouts so a Redis
    outage surfaces as an error the caller handles instead of a hang)."""
    if settings.redis_url is None:
        raise ConfigError("XRAY_RUNTIME_REDIS_URL is not set", "set it, e.g. redis://127.0.0.1:6379/0")
    # A command on a connection Redis closed (a restart, a failover) is retried on a fresh one, so a
    # brief outage costs the commands issued during it, not the ones after.
    retry = Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=3)
    defaults: dict[str, Any] = {
        "decode_responses": True, "socket_timeout": 5.0, "socket_connect_timeout": 5.0, "retry": retry,
        "retry_on_error": [ConnectionError, TimeoutError], "health_check_interval": 30,
    }
    options = defaults | options
    if settings.redis_cluster:
        return RedisCluster.from_url(settings.redis_url, **options)
    return aioredis.Redis.from_url(settings.redis_url, **options)


def key(settings: RuntimeSettings, *parts: str) -> str:
    return ":".join((settings.redis_prefix, *parts))
