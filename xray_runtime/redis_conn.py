"""One place that opens Redis for the runtime: a single node or a RedisCluster, by setting.

Every key goes under `settings.redis_prefix`; keys that must live in one cluster slot (a Lua script
touching several) share a `{hash tag}`.

A cluster primary that dies is replaced by its replica, but not at once: until the other nodes mark
it failed (after `cluster-node-timeout`) and a replica wins the election, its slots answer nothing
(connections refused or cut, CLUSTERDOWN). redis-py's cluster client re-reads the topology after
such an error, but retries only a few times and, on a refused connection, without pausing: measured
against a real cluster, every command on the failed slots failed for the whole two seconds a failover
took. So the cluster client here keeps retrying, with pauses, for `settings.redis_failover_s`.
And when it gives up, or no node answers at all, it raises a redis-py ConnectionError: redis-py's own
"Redis Cluster cannot be connected" is no RedisError, so it would slip past the callers that handle a
Redis outage (the order state's translation, the service's step).
A retried command must be safe to repeat, and the runtime's are: writes that set a value (HSET, SADD,
SREM, ZADD, DEL), the limiter's script (a repeat whose first reply was lost charges twice: the safe
side) and the fencing script (a repeat finds the lock its own holder took and takes it again under a
newer token).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis
import redis.asyncio as aioredis
import redis.cluster
from redis.asyncio.cluster import ClusterPipeline, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import (
    AuthenticationError,
    AuthorizationError,
    ClusterDownError,
    ConnectionError,
    RedisClusterException,
    RedisError,
    SlotNotCoveredError,
    TimeoutError,
    TryAgainError,
)

from xray_core.errors import ConfigError
from xray_core.redaction import scrub
from xray_runtime.settings import RuntimeSettings

T = TypeVar("T")

# What a failover looks like to a client. Wrong credentials are ConnectionErrors too, but no wait cures them.
_FAILOVER_ERRORS = (ConnectionError, TimeoutError, ClusterDownError, TryAgainError, SlotNotCoveredError)
_NOT_FAILOVER = (AuthenticationError, AuthorizationError)


async def _through_failover(call: Callable[[], Awaitable[T]], patience_s: float) -> T:
    """`call()`, retried on failover errors with growing pauses (50 ms to 0.5 s) until `patience_s`
    has passed; then the last error goes to the caller, as a RedisError."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience_s
    pause = 0.05
    while True:
        try:
            return await call()
        except _FAILOVER_ERRORS as error:
            if isinstance(error, _NOT_FAILOVER):
                raise
            if loop.time() + pause > deadline:
                if isinstance(error, RedisError):
                    raise
                raise ConnectionError(f"Redis Cluster unavailable: {error}") from error
        await asyncio.sleep(pause)
        pause = min(2 * pause, 0.5)


class FailoverCluster(RedisCluster):
    """A RedisCluster client whose commands, scripts and pipelines ride through a failover."""

    def __init__(self, *args: Any, failover_s: float = 20.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.failover_s = failover_s

    async def initialize(self, *args: Any, **kwargs: Any) -> FailoverCluster:
        """Read the topology. Failing to means Redis is unreachable (no node answered, or their slot
        maps disagree or leave slots uncovered while a failover settles): a ConnectionError, or the
        authentication error that stopped every node from answering."""
        try:
            await super().initialize(*args, **kwargs)
        except RedisClusterException as error:
            kind = type(error.__cause__) if isinstance(error.__cause__, _NOT_FAILOVER) else ConnectionError
            raise kind(f"Redis Cluster topology unavailable: {error}") from error
        return self

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        # A fresh kwargs per attempt: redis-py pops routing options off the one it is given.
        parent = super().execute_command
        return await _through_failover(lambda: parent(*args, **kwargs), self.failover_s)

    def pipeline(self, transaction: Any | None = None, shard_hint: Any | None = None) -> ClusterPipeline:
        if transaction or shard_hint:  # a transaction's repeat is not ours to judge safe; none is used
            return super().pipeline(transaction, shard_hint)
        return _ReplayingPipeline(self)  # type: ignore[abstract]  # redis-py's types; __init__ sets it


class _ReplayingPipeline(ClusterPipeline):
    """A non-transactional cluster pipeline that queues its commands again and re-sends them all when
    a failover error ends an attempt (redis-py empties the pipeline after every execute)."""

    def __init__(self, client: FailoverCluster) -> None:
        super().__init__(client)
        self._failover_s = client.failover_s
        self._queued: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def execute_command(self, *args: Any, **kwargs: Any) -> ClusterPipeline:
        self._queued.append((args, dict(kwargs)))
        return super().execute_command(*args, **kwargs)

    async def execute(self, raise_on_error: bool = True, allow_redirections: bool = True) -> list[Any]:
        queued, self._queued = self._queued, []
        attempts = 0

        async def attempt() -> list[Any]:
            nonlocal attempts
            if attempts:
                for args, kwargs in queued:
                    ClusterPipeline.execute_command(self, *args, **dict(kwargs))
            attempts += 1
            return await ClusterPipeline.execute(self, raise_on_error, allow_redirections)

        return await _through_failover(attempt, self._failover_s)

    # The pipeline's reset (empty the queue), which redis-py's types confuse with the RESET command.
    async def reset(self) -> None:  # type: ignore[override]
        self._queued = []
        await super().reset()


AnyRedis = aioredis.Redis | RedisCluster
SyncRedis = redis.Redis | redis.cluster.RedisCluster


def connect(settings: RuntimeSettings, **options: Any) -> AnyRedis:
    """An asyncio Redis client for `settings.redis_url` (decoded strings, short timeouts so a Redis
    outage surfaces as an error the caller handles instead of a hang)."""
    if settings.redis_url is None:
        raise ConfigError("XRAY_RUNTIME_REDIS_URL is not set", "set it, e.g. redis://127.0.0.1:6379/0")
    check_url(settings.redis_url)
    # A command on a connection Redis closed (a restart, a failover) is retried on a fresh one, so a
    # brief outage costs the commands issued during it, not the ones after.
    retry = Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=3)
    defaults: dict[str, Any] = {
        "decode_responses": True, "socket_timeout": 5.0, "socket_connect_timeout": 5.0, "retry": retry,
        "retry_on_error": [ConnectionError, TimeoutError], "health_check_interval": 30,
    }
    options = defaults | options
    if settings.redis_cluster:
        options.setdefault("failover_s", settings.redis_failover_s)
        return FailoverCluster.from_url(settings.redis_url, **options)
    # A blocking pool: a command waits (up to the socket timeout) for one of the pool's connections
    # instead of failing. redis-py's default pool raises "Too many connections" past 100, and a tick
    # of 10,000 users' locks, fences and order states asks for more than that at once.
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.redis_url, max_connections=settings.redis_max_connections, timeout=5.0, **options)
    client = aioredis.Redis(connection_pool=pool)
    client.auto_close_connection_pool = True  # closing the client closes its pool, as from_url does
    return client


def connect_sync(settings: RuntimeSettings) -> SyncRedis:
    """A blocking client for `settings.redis_url`, for work that must not depend on the event loop
    (the shard heartbeat thread): same timeouts, same retry of a dropped connection."""
    from redis.backoff import ExponentialBackoff as Backoff
    from redis.retry import Retry as SyncRetry

    if settings.redis_url is None:
        raise ConfigError("XRAY_RUNTIME_REDIS_URL is not set", "set it, e.g. redis://127.0.0.1:6379/0")
    check_url(settings.redis_url)
    options: dict[str, Any] = {
        "decode_responses": True, "socket_timeout": 5.0, "socket_connect_timeout": 5.0,
        "retry": SyncRetry(Backoff(cap=1.0, base=0.05), retries=3),
        "retry_on_error": [ConnectionError, TimeoutError], "health_check_interval": 30,
    }
    if settings.redis_cluster:
        return redis.cluster.RedisCluster.from_url(settings.redis_url, **options)
    return redis.Redis.from_url(settings.redis_url, **options)


def check_url(url: str, name: str = "XRAY_RUNTIME_REDIS_URL") -> None:
    """A ConfigError naming `name` unless `url` is a Redis URL (the error never shows a password)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        valid = parts.scheme in ("redis", "rediss", "unix") and bool(parts.hostname or parts.path)
        parts.port  # noqa: B018  (raises ValueError for a port that is not a number)
    except ValueError:
        valid = False
    if not valid:
        raise ConfigError(f"{name} {scrub(url)!r} is not a Redis URL", "use redis://host:6379/0")


def key(settings: RuntimeSettings, *parts: str) -> str:
    return ":".join((settings.redis_prefix, *parts))
