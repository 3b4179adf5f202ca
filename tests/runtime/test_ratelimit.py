"""The shared request-weight limiter: GCRA over several scopes, in process and on Redis, and ccxt
requests paced by it against the MEXC emulator."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator

import ccxt
import ccxt.async_support as ccxt_async
import pytest
from shard_support import REDIS_URL, SLOW

from xray_core.errors import ConfigError
from xray_core.exchange.urls import rebase_api_urls
from xray_runtime.ratelimit import (
    LocalLimiter,
    Quota,
    RedisLimiter,
    build_limiter,
    ccxt_throttle,
    install_ccxt_throttle,
    key_scope,
    quotas_from_settings,
)
from xray_runtime.redis_conn import AnyRedis, connect
from xray_runtime.settings import RuntimeSettings
from xray_sim.exchange.ratelimit import RateLimiter, Scope

API_KEY = "mx0vtestkey0000000001"  # the key tests/conftest.py's emulators know
API_SECRET = "0123456789abcdef0123456789abcdef"

# 10 weight per 60 s: burst 5, then one unit per 12.6 s; long enough that a test's own run time
# cannot refill a cell between two calls.


class FakeTime:
    """A clock that only moves when the limiter sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def local(quotas: dict[str, Quota] = SLOW) -> tuple[LocalLimiter, FakeTime]:
    clock = FakeTime()
    return LocalLimiter(quotas, clock=clock, sleep=clock.sleep), clock


@pytest.fixture
async def redis() -> AsyncIterator[tuple[RuntimeSettings, AnyRedis]]:
    """A Redis client under a prefix of this test's own; its keys are deleted afterwards."""
    settings = RuntimeSettings(redis_url=REDIS_URL, redis_prefix=f"test-rl-{uuid.uuid4().hex}")
    client = connect(settings)
    yield settings, client
    keys = [k async for k in client.scan_iter(match=f"{settings.redis_prefix}:*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


# ---- the algorithm (in process, on a fake clock) -------------------------------------------------
async def test_a_burst_of_half_the_window_passes_then_requests_are_spaced_at_the_sustained_rate():
    limiter, clock = local()
    quota = SLOW["ip"]
    assert [await limiter.try_acquire(["ip:a"], 1) for _ in range(5)] == [0.0] * 5
    assert await limiter.try_acquire(["ip:a"], 1) == pytest.approx(quota.interval_s)
    assert quota.interval_s == pytest.approx(60 * 1.05 / 5)
    start = clock.now
    waits = [await limiter.acquire(["ip:a"], 1) for _ in range(3)]
    assert waits == pytest.approx([quota.interval_s] * 3)
    assert clock.now - start == pytest.approx(3 * quota.interval_s)
    assert limiter.waits == 3 and limiter.waited_s == pytest.approx(3 * quota.interval_s)


async def test_an_idle_scope_refills_to_the_full_burst_and_no_further():
    limiter, clock = local()
    for _ in range(5):
        await limiter.acquire(["ip:a"], 1)
    clock.now += 3600
    assert await limiter.try_acquire(["ip:a"], 5) == 0.0
    assert await limiter.try_acquire(["ip:a"], 1) > 0


async def test_a_request_one_scope_refuses_consumes_nothing_in_the_others():
    limiter, _ = local()
    assert await limiter.try_acquire(["key:k"], 5) == 0.0
    assert await limiter.try_acquire(["ip:a", "key:k"], 1) > 0
    assert await limiter.try_acquire(["ip:a"], 5) == 0.0  # ip:a still had its whole burst


async def test_weights_are_charged_in_full_and_the_wait_is_that_of_the_fullest_scope():
    limiter, _ = local()
    await limiter.acquire(["ip:a"], 4)
    await limiter.acquire(["key:k"], 2)
    # ip:a needs 2 more units drained, key:k none: the wait is ip:a's
    assert await limiter.try_acquire(["ip:a", "key:k"], 3) == pytest.approx(2 * SLOW["ip"].interval_s)


async def test_a_weight_no_burst_could_ever_hold_is_a_config_error_naming_scope_and_limit():
    limiter, _ = local({"ip": Quota.of(100, 60.0), "key": Quota.of(10, 60.0)})
    with pytest.raises(ConfigError, match=r"weight 6 can never pass scope 'key:k'.*limit is 10 per 60s"):
        await limiter.acquire(["ip:a", "key:k"], 6)
    with pytest.raises(ConfigError, match="'user:1' has no limit"):
        await limiter.try_acquire(["user:1"], 1)


def test_limits_come_from_the_settings_per_scope_kind():
    settings = RuntimeSettings(weight_limit_ip=500, weight_limit_key=100, weight_window_s=10)
    quotas = quotas_from_settings(settings)
    assert (quotas["ip"].limit, quotas["ip"].burst) == (500, 250)
    assert (quotas["key"].limit, quotas["key"].burst, quotas["key"].window_s) == (100, 50, 10)
    assert isinstance(build_limiter(RuntimeSettings(redis_url=None)), LocalLimiter)


def _arrivals_at_the_exchange(quota: Quota, requests: int, jitter_s: float) -> list[tuple[float, int]]:
    """Hammer a limiter with random weights and return when each request reaches the exchange:
    admitted, then delayed in transit by up to `jitter_s` (so they may arrive out of order)."""
    limiter, clock = local({"ip": quota})
    rng = random.Random(3)
    admitted = []

    async def hammer() -> None:
        for _ in range(requests):
            weight = rng.choice([1, 1, 1, 2, 3, 10])
            await limiter.acquire(["ip:a"], weight)
            admitted.append((clock.now + rng.uniform(0, jitter_s), weight))

    asyncio.run(hammer())
    return sorted(admitted)


def _exchange_refusals(arrivals: list[tuple[float, int]], limit: int, window_s: float) -> int:
    now = [0.0]
    exchange = RateLimiter(limit, window_s, clock=lambda: now[0])
    for now[0], weight in arrivals:
        exchange.admit(Scope.IP, "a", weight)
    return exchange.violations[Scope.IP]


def test_paced_requests_never_exceed_the_exchanges_sliding_window_even_with_transit_jitter():
    quota = Quota.of(500, 10.0)
    arrivals = _arrivals_at_the_exchange(quota, 3000, jitter_s=0.5)
    assert arrivals[-1][0] > 100  # long enough to have been paced over many windows
    assert _exchange_refusals(arrivals, 500, 10.0) == 0


def test_a_burst_of_the_whole_window_would_earn_429s_from_a_sliding_window():
    """Why Quota.of keeps the burst to half a window (see xray_runtime/ratelimit.py)."""
    whole_window = Quota(limit=500, window_s=10.0, burst=500, interval_s=10.0 / 500)
    assert _exchange_refusals(_arrivals_at_the_exchange(whole_window, 3000, jitter_s=0.0), 500, 10.0) > 0


def test_429s_answered_anyway_are_counted_per_scope():
    limiter, _ = local()
    limiter.record_429("ip:a")
    limiter.record_429("ip:a")
    assert limiter.rate_limited == 2 and limiter.rate_limited_by_scope["ip:a"] == 2


async def test_ccxt_costs_go_to_the_key_when_private_and_to_the_ip_when_public():
    limiter, _ = local()
    exchange = ccxt_async.mexc({"apiKey": API_KEY, "secret": API_SECRET})
    install_ccxt_throttle(exchange, limiter, ["ip:a", "key:k"])
    try:
        cost = exchange.calculate_rate_limiter_cost  # ccxt passes the endpoint's cost in `config`
        private = cost(["spot", "private"], "GET", "openOrders", {}, {"cost": 3})
        public = cost(["spot", "public"], "GET", "klines", {}, {"cost": 1})
        whole_market = cost(["spot", "public"], "GET", "ticker/24hr", {}, {"cost": 25})
        assert (private, private.private, public, public.private, whole_market) == (3, True, 1, False, 40)
        await exchange.throttle(private)
        await exchange.throttle(public)
        assert await limiter.try_acquire(["key:k"], 2) == 0.0  # 3 + 2 = the key's burst
        assert await limiter.try_acquire(["ip:a"], 4) == 0.0  # 1 + 4 = the IP's burst
        assert await limiter.try_acquire(["key:k"], 1) > 0 and await limiter.try_acquire(["ip:a"], 1) > 0
        assert exchange.enableRateLimit
    finally:
        await exchange.close()


async def test_a_plain_ccxt_cost_is_charged_to_every_scope():
    limiter, _ = local()
    throttle = ccxt_throttle(limiter, ["ip:a", "key:k"])
    await throttle(5)
    assert await limiter.try_acquire(["ip:a"], 1) > 0 and await limiter.try_acquire(["key:k"], 1) > 0


def test_key_scopes_hide_the_api_key():
    scope = key_scope(API_KEY)
    assert scope.startswith("key:") and len(scope) == 20 and API_KEY not in scope
    assert scope == key_scope(API_KEY) != key_scope(API_KEY + "x")


# ---- on Redis ------------------------------------------------------------------------------------
@pytest.mark.redis
async def test_redis_burst_then_refusal_with_a_wait_of_at_most_one_interval(redis):
    settings, client = redis
    limiter = RedisLimiter(client, SLOW, settings.redis_prefix)
    assert [await limiter.try_acquire(["ip:a"], 1) for _ in range(5)] == [0.0] * 5
    wait = await limiter.try_acquire(["ip:a"], 1)
    assert 0 < wait <= SLOW["ip"].interval_s
    assert await client.pttl(limiter.cell_key("ip:a")) > 0  # drained cells expire


@pytest.mark.redis
async def test_redis_request_one_scope_refuses_consumes_nothing_in_the_others(redis):
    settings, client = redis
    limiter = RedisLimiter(client, SLOW, settings.redis_prefix)
    assert await limiter.try_acquire(["key:k"], 5) == 0.0
    assert await limiter.try_acquire(["ip:a", "key:k"], 1) > 0
    assert await client.exists(limiter.cell_key("ip:a")) == 0
    assert await limiter.try_acquire(["ip:a"], 5) == 0.0


@pytest.mark.redis
async def test_two_processes_share_one_budget(redis):
    settings, client = redis
    other = connect(settings)  # a second connection, as a second process would have
    try:
        first = RedisLimiter(client, SLOW, settings.redis_prefix)
        second = RedisLimiter(other, SLOW, settings.redis_prefix)
        assert await first.try_acquire(["ip:a", "key:k"], 3) == 0.0
        assert await second.try_acquire(["ip:a"], 2) == 0.0
        assert await second.try_acquire(["ip:a"], 1) > 0
        assert await first.try_acquire(["ip:a"], 1) > 0
        assert await second.try_acquire(["key:k"], 2) == 0.0  # the key had 3 of 5 used
    finally:
        await other.aclose()


@pytest.mark.redis
async def test_redis_oversize_weight_is_refused_before_touching_redis(redis):
    settings, client = redis
    limiter = RedisLimiter(client, SLOW, settings.redis_prefix)
    with pytest.raises(ConfigError, match="'ip:a'"):
        await limiter.try_acquire(["ip:a"], 11)
    assert [k async for k in client.scan_iter(match=f"{settings.redis_prefix}:*")] == []


@pytest.mark.redis
async def test_redis_acquire_waits_until_admitted(redis):
    settings, client = redis
    quota = Quota.of(10, 0.5)  # burst 5, then one unit per 52.5 ms
    limiter = RedisLimiter(client, {"ip": quota}, settings.redis_prefix)
    for _ in range(5):
        assert await limiter.acquire(["ip:a"], 1) == 0.0
    assert await limiter.acquire(["ip:a"], 1) > 0
    assert limiter.waits == 1 and limiter.waited_s > 0


@pytest.mark.redis
def test_build_limiter_uses_redis_when_configured():
    settings = RuntimeSettings(redis_url=REDIS_URL, redis_prefix="test-rl-build")
    assert isinstance(build_limiter(settings), RedisLimiter)


# ---- ccxt against the emulator -------------------------------------------------------------------
def _async_client(base_url: str) -> ccxt_async.mexc:
    exchange = ccxt_async.mexc({"apiKey": API_KEY, "secret": API_SECRET, "enableRateLimit": False})
    exchange.urls["api"] = rebase_api_urls(exchange.urls["api"], base_url, "mexc")
    return exchange


async def _hammer(clients: list[ccxt_async.mexc], rounds: int) -> list[object]:
    """Each client alternates a public klines request (weight 1, charged to the IP) with a private
    openOrders one (weight 3, charged to the key), all clients at once."""

    async def one(exchange: ccxt_async.mexc) -> None:
        for _ in range(rounds):
            await exchange.spotPublicGetKlines({"symbol": "BTCUSDT", "interval": "1m", "limit": 5})
            await exchange.spotPrivateGetOpenOrders({"symbol": "BTCUSDT"})

    return await asyncio.gather(*(one(c) for c in clients), return_exceptions=True)


@pytest.mark.redis
async def test_ccxt_clients_paced_by_the_shared_limiter_earn_no_429s(redis, start_custom_emulator, admin_at):
    settings, client = redis
    emulator = start_custom_emulator(weight_limit=60, weight_window_s=1.0)
    admin = admin_at(emulator.base_url)
    quotas = {"ip": Quota.of(60, 1.0), "key": Quota.of(60, 1.0)}
    other = connect(settings)
    limiters = [RedisLimiter(client, quotas, settings.redis_prefix),
                RedisLimiter(other, quotas, settings.redis_prefix)]  # as two processes
    scopes = ["ip:127.0.0.1", key_scope(API_KEY)]
    clients = [_async_client(emulator.base_url) for _ in range(4)]
    for i, exchange in enumerate(clients):
        install_ccxt_throttle(exchange, limiters[i % 2], scopes)
    try:
        # 4 clients x 6 rounds: 72 weight on the key, more than its 60 per second, in ~1.5 s.
        results = await _hammer(clients, rounds=6)
        assert [r for r in results if r is not None] == []
        assert admin.stats()["responses_429"] == {"ip": 0, "key": 0, "fault": 0}
        assert sum(limiter.waits for limiter in limiters) > 0  # it did have to pace them

        for exchange in clients:  # the same load without the limiter
            exchange.enableRateLimit = False
        results = await _hammer(clients, rounds=6)
        assert any(isinstance(r, ccxt.RateLimitExceeded) for r in results)
        assert admin.stats()["responses_429"]["key"] > 0
    finally:
        for exchange in clients:
            await exchange.close()
        await other.aclose()


async def test_idle_cells_are_forgotten_but_busy_ones_are_not_scanned_on_every_request():
    """A tick of more busy keys than the pruning threshold (10,000 users) must not rescan every cell
    on each request; cells whose TAT has passed are still dropped later."""
    limiter, clock = local()
    scans = 0
    real = dict

    class CountingDict(real):  # every prune builds a new dict from a comprehension
        pass

    for i in range(15_000):  # all busy at once: TATs in the future
        assert await limiter.try_acquire([f"key:{i:05d}"], 1) == 0.0
        if type(limiter._tats) is real:
            scans += 1
            limiter._tats = CountingDict(limiter._tats)
    assert len(limiter._tats) == 15_000
    assert scans <= 2  # once past 10,000 (nothing idle), not on each of the next 5,000 requests
    clock.now += 3600.0  # every cell idle now
    for i in range(15_000, 45_001):
        await limiter.try_acquire([f"key:{i:05d}"], 1)
    assert not any(f"key:{i:05d}" in limiter._tats for i in range(15_000))  # idle ones dropped
