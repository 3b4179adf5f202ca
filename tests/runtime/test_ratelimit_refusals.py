"""What the venue's refusals do to the shared limiter (a 429 or 418 pauses the scope for its
Retry-After, in every process), and which address the per-IP scope is."""

from __future__ import annotations

import email.utils
import time
import uuid
from collections.abc import AsyncIterator

import ccxt
import ccxt.async_support as ccxt_async
import pytest
from aiohttp import web
from shard_support import REDIS_URL, SLOW

from xray_core.exchange.urls import rebase_api_urls
from xray_core.ratelimit import BANNED_PAUSE_S, RATE_LIMITED_PAUSE_S, refusal_pause
from xray_runtime.exchange_pool import ExchangeAccount, ExchangePool
from xray_runtime.ratelimit import RedisLimiter, ccxt_throttle, egress_ip, install_ccxt_throttle, key_scope
from xray_runtime.redis_conn import AnyRedis, connect
from xray_runtime.settings import RuntimeSettings
from xray_sim.loopback import LoopbackServer

pytestmark = pytest.mark.redis
QUOTAS = {"ip": SLOW["ip"].__class__.of(500, 10.0), "key": SLOW["key"].__class__.of(500, 10.0)}


@pytest.fixture
async def shared() -> AsyncIterator[tuple[RedisLimiter, RedisLimiter]]:
    """Two processes' limiters on one Redis prefix."""
    settings = RuntimeSettings(redis_url=REDIS_URL, redis_prefix=f"test-refuse-{uuid.uuid4().hex}")
    clients: list[AnyRedis] = [connect(settings), connect(settings)]
    yield RedisLimiter(clients[0], QUOTAS, settings.redis_prefix), RedisLimiter(clients[1], QUOTAS,
                                                                                settings.redis_prefix)
    keys = [k async for k in clients[0].scan_iter(match=f"{settings.redis_prefix}:*")]
    if keys:
        await clients[0].delete(*keys)
    for client in clients:
        await client.aclose()


def refusing(status: int, headers: dict[str, str]) -> LoopbackServer:
    """A loopback venue that answers every request `status` with `headers`."""
    app = web.Application()

    async def answer(_: web.Request) -> web.Response:  # a plain body: ccxt maps the HTTP status
        return web.Response(text="go away", status=status, headers=headers)

    app.router.add_route("*", "/{tail:.*}", answer)
    return LoopbackServer(app, "127.0.0.1", 0, name="refusing").start()


@pytest.mark.parametrize(("status", "headers", "pause_s"), [
    (429, {"Retry-After": "7"}, 7.0), (429, {}, RATE_LIMITED_PAUSE_S),
    (418, {"Retry-After": "30"}, 30.0), (418, {}, BANNED_PAUSE_S),
])
async def test_a_refusal_pauses_the_scope_for_every_process(shared, status, headers, pause_s):
    """429/418 used to be counted and retried, while every other process kept spending the budget."""
    mine, other = shared
    venue = refusing(status, headers)
    exchange = ccxt_async.mexc({"enableRateLimit": True})
    exchange.urls["api"] = rebase_api_urls(exchange.urls["api"], venue.base_url, "mexc")
    install_ccxt_throttle(exchange, mine, ("ip:198.51.100.1",))
    try:
        with pytest.raises(ccxt.RateLimitExceeded if status == 429 else ccxt.DDoSProtection):
            await exchange.fetch_time()
        refused_at = time.monotonic()
    finally:
        await exchange.close()
        venue.stop()
    wait = await other.try_acquire(["ip:198.51.100.1"], 1)
    elapsed = time.monotonic() - refused_at
    assert pause_s - elapsed - 0.01 <= wait <= pause_s + QUOTAS["ip"].interval_s + 0.01
    assert mine.rate_limited_by_scope["ip:198.51.100.1"] == 1


async def test_a_pooled_clients_429_pauses_its_key_and_a_418_the_ip_too(shared, emulator, admin):
    mine, other = shared
    key, secret = admin.create_account({"USDT": "100"})
    egress = "ip:198.51.100.2"

    def throttle(account: ExchangeAccount) -> object:
        return ccxt_throttle(mine, (key_scope(account.api_key.get_secret_value()),), ban_scopes=(egress,))

    pool = ExchangePool(throttle_factory=throttle)
    account = ExchangeAccount.of("u1", "mexc", emulator.base_url, key, secret)
    venue = await pool.venue(account)
    try:
        admin.set_faults("burst429:n=1:path=/api/v3/account")
        with pytest.raises(Exception, match="429"):
            await venue.fetch_balance()
        assert await other.try_acquire([key_scope(key)], 1) > 0  # paused (by RATE_LIMITED_PAUSE_S)
        assert await other.try_acquire([egress], 1) == 0.0  # a 429 is the key's business
        await throttle(account).refused(ccxt.DDoSProtection("418 banned"), {})
        assert await other.try_acquire([egress], 1) >= BANNED_PAUSE_S - 60  # a ban halts the IP scope
    finally:
        admin.set_faults("")
        await pool.close()


def test_retry_after_in_seconds_or_as_a_date_and_nonsense_falls_back():
    now = time.time()
    assert refusal_pause(False, {"retry-after": "12"}) == 12
    date = email.utils.formatdate(now + 90, usegmt=True)
    assert 85 <= refusal_pause(False, {"Retry-After": date}, now=now) <= 91
    assert refusal_pause(False, {"Retry-After": "soon"}) == RATE_LIMITED_PAUSE_S
    assert refusal_pause(True, None) == BANNED_PAUSE_S
    assert refusal_pause(False, {"Retry-After": "1e9"}) == 3600  # capped


def test_the_ip_scope_is_the_setting_or_the_route_to_the_exchange():
    """It was 127.0.0.1 for everyone: two hosts shared one budget, a NAT'd fleet had none."""
    configured = RuntimeSettings(egress_ip="203.0.113.7")
    assert egress_ip(configured, "http://127.0.0.1:8765") == "203.0.113.7"
    assert egress_ip(RuntimeSettings(), "http://127.0.0.1:8765") == "127.0.0.1"
    assert egress_ip(RuntimeSettings(), "http://[::1]:8765") == "::1"
    fallback = egress_ip(RuntimeSettings(), "http://no-such-host.invalid:8765")  # no name, no route
    assert fallback and fallback != "127.0.0.1"
