"""Request-weight limits shared by every runtime process: GCRA over several scopes at once.

Venues count request weight per IP and per API key, each allowing `limit` weight per `window_s`;
which requests go to which scope, and the limits, are the venue's `RateLimits` traits (MEXC: public
endpoints per IP, private ones per key, 500 per 10 s each). A request names the scopes it is
charged to, e.g. `("ip:203.0.113.5", key_scope(api_key))`, and is admitted only when every scope
admits it; otherwise nothing is consumed and the caller learns how long to wait. Scopes of kind "ip"
use `weight_limit_ip`, kind "key" `weight_limit_key` (settings; unset: the venue's).

The GCRA cells, why their burst is half a window, and what a 429 or 418 costs a scope are in
`xray_core.ratelimit` (ingestion shares them too). Here: the limiter in process and on Redis, and
its place in front of every ccxt request (`CcxtThrottle`), which also pauses the scope a venue
refused with 429/418 (its Retry-After) for every process at once.

The IP scope is this machine's address as the venue sees it: `XRAY_RUNTIME_EGRESS_IP` (set it to
the shared public address when several hosts leave through one NAT), else the local address this
machine uses to reach the exchange (`egress_ip`).
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextvars import ContextVar
from typing import Any
from urllib.parse import urlsplit

import ccxt

from xray_core.errors import ConfigError
from xray_core.exchange.venues import GENERIC, RateLimits, traits_for
from xray_core.ratelimit import EPSILON_S, Quota, gcra, is_ban, refusal_pause, request_weight
from xray_runtime.redis_conn import AnyRedis, connect
from xray_runtime.settings import RuntimeSettings

__all__ = ["EPSILON_S", "BaseLimiter", "CcxtThrottle", "LocalLimiter", "Quota", "RedisLimiter", "ScopedCost",
           "build_limiter", "ccxt_throttle", "egress_ip", "gcra", "install_ccxt_throttle", "ip_scope",
           "key_scope", "quotas_from_settings"]


def quotas_from_settings(settings: RuntimeSettings, burst_share: float = 0.5) -> dict[str, Quota]:
    """Quotas per scope kind, "ip" and "key": the settings' limits, else those of the venue
    `settings.exchange_id` names."""
    venue = traits_for(settings.exchange_id).rate_limits
    window = settings.weight_window_s or venue.window_s
    return {
        "ip": Quota.of(settings.weight_limit_ip or venue.ip_weight, window, burst_share),
        "key": Quota.of(settings.weight_limit_key or venue.key_weight, window, burst_share),
    }


def egress_ip(settings: RuntimeSettings, url: str | None) -> str:
    """This machine's address as the venue sees it: `settings.egress_ip`, else the local address of
    the route to the exchange's host (`url`, else the venue's first API host). No packet is sent:
    connecting a UDP socket only picks the route. Without a route (offline, no DNS), the host name."""
    if settings.egress_ip:
        return settings.egress_ip
    hosts = traits_for(settings.exchange_id).api_hosts
    target = urlsplit(url or (hosts[0] if hosts else "")).hostname
    if target:
        try:
            family = socket.AF_INET6 if ":" in target else socket.AF_INET
            with socket.socket(family, socket.SOCK_DGRAM) as probe:
                probe.connect((target, 443))
                return str(probe.getsockname()[0])
        except OSError:  # no route or no name resolution: one scope per host is the safe guess
            pass
    return socket.gethostname()


def ip_scope(ip: str) -> str:
    return f"ip:{ip}"


def key_scope(api_key: str) -> str:
    """The scope of an API key: a short SHA-256 digest, so the key itself never reaches Redis or logs."""
    return "key:" + hashlib.sha256(api_key.encode()).hexdigest()[:16]


class BaseLimiter:
    """What both limiters share: quota lookup, validation, the waiting loop and the counters."""

    def __init__(self, quotas: Mapping[str, Quota],
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> None:
        self.quotas = dict(quotas)
        self._sleep = sleep
        self.waits = 0  # acquire calls that had to wait
        self.waited_s = 0.0  # total seconds those calls slept
        self.rate_limited = 0  # 429s the exchange answered despite the limiter
        self.rate_limited_by_scope: Counter[str] = Counter()

    def quota(self, scope: str) -> Quota:
        kind = scope.partition(":")[0]
        quota = self.quotas.get(kind)
        if quota is None:
            raise ConfigError(f"rate-limit scope {scope!r} has no limit",
                              f"scopes start with one of {sorted(self.quotas)} followed by ':'")
        return quota

    def _checked(self, scopes: Sequence[str], weight: float) -> list[Quota]:
        if weight < 0:
            raise ValueError(f"request weight must not be negative, not {weight}")
        quotas = [self.quota(scope) for scope in scopes]
        for scope, quota in zip(scopes, quotas, strict=True):
            if weight > quota.burst:
                raise ConfigError(
                    f"a request of weight {weight:g} can never pass scope {scope!r}: its limit is "
                    f"{quota.limit:g} per {quota.window_s:g}s, of which at most {quota.burst:g} at once",
                    "raise XRAY_RUNTIME_WEIGHT_LIMIT_IP / _KEY or avoid the endpoint (whole-market calls)",
                )
        return quotas

    async def try_acquire(self, scopes: Sequence[str], weight: float) -> float:
        """0.0 when `weight` was charged to every scope; else the seconds to wait, nothing charged."""
        quotas = self._checked(scopes, weight)
        if not scopes or weight == 0:
            return 0.0
        return await self._attempt(list(scopes), quotas, weight)

    async def acquire(self, scopes: Sequence[str], weight: float) -> float:
        """Wait until every scope admits `weight`, charge it, and return the seconds slept. Another
        caller may take the capacity while this one sleeps; it then simply waits again."""
        waited = 0.0
        while (wait := await self.try_acquire(scopes, weight)) > 0:
            await self._sleep(wait)
            waited += wait
        if waited:
            self.waits += 1
            self.waited_s += waited
        return waited

    def record_429(self, scope: str) -> None:
        """Count a 429 the exchange answered (metrics): nonzero means someone else shares the scope's
        budget (another program on the IP, the key used elsewhere) or the limits are set too high."""
        self.rate_limited += 1
        self.rate_limited_by_scope[scope] += 1

    async def pause(self, scopes: Sequence[str], pause_s: float) -> None:
        """Admit nothing on `scopes` for `pause_s` seconds, in every process sharing the cells: the
        venue refused a request (429, or a 418 ban) and named, or implied, how long to stay away."""
        if scopes and pause_s > 0:
            await self._pause(list(scopes), [self.quota(s) for s in scopes], pause_s)
        for scope in scopes:
            self.record_429(scope)

    async def _attempt(self, scopes: list[str], quotas: list[Quota], weight: float) -> float:
        raise NotImplementedError

    async def _pause(self, scopes: list[str], quotas: list[Quota], pause_s: float) -> None:
        raise NotImplementedError


class LocalLimiter(BaseLimiter):
    """The in-process limiter of the embedded default (one process, no Redis). The event loop makes
    each attempt atomic: nothing awaits between reading and writing the cells."""

    def __init__(self, quotas: Mapping[str, Quota], clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> None:
        super().__init__(quotas, sleep)
        self._clock = clock
        self._tats: dict[str, float] = {}
        self._prune_at = 10_000
        self._paused: dict[str, float] = {}  # scope -> paused until (after a 429/418)

    async def _pause(self, scopes: list[str], quotas: list[Quota], pause_s: float) -> None:
        until = self._clock() + pause_s
        for scope in scopes:
            self._paused[scope] = max(self._paused.get(scope, 0.0), until)

    async def _attempt(self, scopes: list[str], quotas: list[Quota], weight: float) -> float:
        now = self._clock()
        paused = max((self._paused.get(s, 0.0) - now for s in scopes), default=0.0)
        if paused > EPSILON_S:
            return paused
        wait, new_tats = gcra([self._tats.get(s, now) for s in scopes], quotas, weight, now)
        if wait > EPSILON_S:
            return wait
        self._tats.update(zip(scopes, new_tats, strict=True))
        if len(self._tats) > self._prune_at:  # forget idle cells (a TAT in the past equals an empty cell)
            self._tats = {s: tat for s, tat in self._tats.items() if tat > now}
            # Twice what stayed: with more busy keys than 10,000 (a tick of 10,000 users), a scan on
            # every request would cost more than the request.
            self._prune_at = max(10_000, 2 * len(self._tats))
        return 0.0


# KEYS: one cell per scope, then one pause key per scope. ARGV: weight, then interval_s and tolerance_s
# per cell. A scope paused (after a 429/418) waits out its pause first; its bucket is left as it was.
# Returns the wait as a string (Redis would truncate a Lua float to an integer).
_GCRA_LUA = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local weight = tonumber(ARGV[1])
local n = #KEYS / 2
local wait = 0
local tats = {}
for i = 1, n do
  local paused = tonumber(redis.call('GET', KEYS[n + i]))
  if paused and paused - now > wait then wait = paused - now end
end
if wait > EPSILON then
  return string.format('%.6f', wait)
end
for i = 1, n do
  local interval = tonumber(ARGV[2 * i])
  local tolerance = tonumber(ARGV[2 * i + 1])
  local tat = tonumber(redis.call('GET', KEYS[i])) or now
  if tat < now then tat = now end
  local new_tat = tat + weight * interval
  local need = new_tat - tolerance - now
  if need > wait then wait = need end
  tats[i] = new_tat
end
if wait > EPSILON then
  return string.format('%.6f', wait)
end
for i = 1, n do
  local ttl_ms = math.ceil((tats[i] - now) * 1000) + 1
  redis.call('SET', KEYS[i], string.format('%.6f', tats[i]), 'PX', ttl_ms)
end
return '0'
""".replace("EPSILON", repr(EPSILON_S))


# KEYS: pause keys. ARGV: pause_s. Pauses each scope until now + pause_s (never shortens a pause).
_PAUSE_LUA = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local until_ = now + tonumber(ARGV[1])
for _, key in ipairs(KEYS) do
  local paused = tonumber(redis.call('GET', key)) or 0
  if paused < until_ then
    redis.call('SET', key, string.format('%.6f', until_), 'PX', math.ceil(tonumber(ARGV[1]) * 1000) + 1)
  end
end
return 0
"""


class RedisLimiter(BaseLimiter):
    """The limiter several runtime processes share: the GCRA step is one Lua script (EVALSHA, loaded
    once per server), timed by the Redis server's clock so the processes' own clocks do not matter.

    Every cell key carries the hash tag `{rl}`, so in a RedisCluster all cells live in one slot and a
    request's scopes (an IP shared by all users, a key used by one) are still checked and charged in
    one atomic script. Evaluating per scope across slots would need a refund when a later scope
    refuses, and between charge and refund other processes would see a budget that is not there.
    The cost is one node serving every limiter call, one short script per exchange request: far
    below what a node handles. A cell expires once it has drained, so idle scopes cost nothing.
    """

    def __init__(self, redis: AnyRedis, quotas: Mapping[str, Quota], prefix: str = "xray",
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> None:
        super().__init__(quotas, sleep)
        self._redis = redis
        self._prefix = prefix
        self._script = redis.register_script(_GCRA_LUA)
        self._pause_script = redis.register_script(_PAUSE_LUA)

    def cell_key(self, scope: str) -> str:
        return f"{self._prefix}:{{rl}}:{scope}"

    def pause_key(self, scope: str) -> str:
        return f"{self._prefix}:{{rl}}:paused:{scope}"

    async def _attempt(self, scopes: list[str], quotas: list[Quota], weight: float) -> float:
        args: list[float] = [weight]
        for quota in quotas:
            args += [quota.interval_s, quota.tolerance_s]
        keys = [*(self.cell_key(s) for s in scopes), *(self.pause_key(s) for s in scopes)]
        reply = await self._script(keys=keys, args=[repr(a) for a in args])
        return float(reply)

    async def _pause(self, scopes: list[str], quotas: list[Quota], pause_s: float) -> None:
        await self._pause_script(keys=[self.pause_key(s) for s in scopes], args=[repr(pause_s)])


Limiter = LocalLimiter | RedisLimiter


def build_limiter(settings: RuntimeSettings, redis: AnyRedis | None = None) -> Limiter:
    """The shared Redis limiter when the runtime has Redis (`redis` or `settings.redis_url`), else the
    in-process one."""
    quotas = quotas_from_settings(settings)
    if redis is None and settings.redis_url is not None:
        redis = connect(settings)
    if redis is None:
        return LocalLimiter(quotas)
    return RedisLimiter(redis, quotas, settings.redis_prefix)


# ---- ccxt ----------------------------------------------------------------------------------------
# ccxt's async fetch2() does `if self.enableRateLimit: await self.throttle(cost)` once per request
# (not again for its own retries), where cost = calculate_rate_limiter_cost(api, method, path, params,
# config) = the endpoint's {'cost': n} from ccxt's `api` table of the exchange. One cost unit is
# charged as one unit of the venue's weight; where ccxt's cost for a whole-market call is below the
# venue's weight, the venue's traits say so (`RateLimits.whole_market_weights`) and that is charged.


class ScopedCost(float):
    """A ccxt cost that also says whether its endpoint is private: venues may charge private
    endpoints to other scopes than public ones, and ccxt passes throttle() nothing but the cost."""

    private: bool

    def __new__(cls, value: float, private: bool) -> ScopedCost:
        cost = super().__new__(cls, value)
        cost.private = private
        return cost


Throttle = Callable[[float], Awaitable[None]]  # ccxt's throttle(cost); also `after(waited_s)`
# The scopes the current task's last request was charged to (a refusal pauses those).
_CHARGED: ContextVar[tuple[str, ...]] = ContextVar("xray_rate_limit_charged", default=())


class CcxtThrottle:
    """A replacement for a ccxt async exchange's `throttle(cost)`: waits on `limiter` for `cost`
    weight. A plain cost is charged to every scope; a ScopedCost (see install_ccxt_throttle) only to
    the scopes of the kinds `limits` charges private (or public) requests to (to all, if none of
    those kinds is among `scopes`). `after(waited_s)` runs once the limiter admitted the request,
    the last moment before ccxt signs and sends it (the fencing check of a delayed order send).

    `refused(error, headers)` is for the client's `fetch` to call when the venue answered 429 or
    418: the scopes the request was charged to (a 418 ban: every scope, `ban_scopes` too) are paused
    for the answer's Retry-After, or the default, in the shared limiter."""

    def __init__(self, limiter: BaseLimiter, scopes: Sequence[str], limits: RateLimits = GENERIC.rate_limits,
                 after: Throttle | None = None, ban_scopes: Sequence[str] = ()) -> None:
        self.limiter = limiter
        self.scopes = tuple(scopes)
        self.private_scopes = _of_kinds(self.scopes, limits.private_scopes)
        self.public_scopes = _of_kinds(self.scopes, limits.public_scopes)
        self.ban_scopes = tuple(dict.fromkeys((*self.scopes, *ban_scopes)))
        self.after = after

    async def __call__(self, cost: float | None = None) -> None:
        charged = self.scopes
        if isinstance(cost, ScopedCost):
            charged = self.private_scopes if cost.private else self.public_scopes
        _CHARGED.set(charged)
        waited = await self.limiter.acquire(charged, 1.0 if cost is None else float(cost))
        if self.after is not None:
            await self.after(waited)

    async def refused(self, error: BaseException, headers: Mapping[str, Any] | None) -> None:
        banned = is_ban(error)
        scopes = self.ban_scopes if banned else (_CHARGED.get() or self.scopes)
        await self.limiter.pause(scopes, refusal_pause(banned, headers))


def ccxt_throttle(limiter: BaseLimiter, scopes: Sequence[str], limits: RateLimits = GENERIC.rate_limits,
                  after: Throttle | None = None, ban_scopes: Sequence[str] = ()) -> CcxtThrottle:
    """The `CcxtThrottle` of `limiter` over `scopes` (see there)."""
    return CcxtThrottle(limiter, scopes, limits, after, ban_scopes)


def install_ccxt_throttle(exchange: Any, limiter: BaseLimiter, scopes: Sequence[str]) -> None:
    """Make every request of a ccxt async `exchange` wait on `limiter`, each charged to the scopes
    its venue counts it in (MEXC: private requests to the key, public ones to the IP), at ccxt's
    cost or the venue's weight where ccxt's is lower. Replaces ccxt's own per-instance throttle,
    which paces one instance only. A 429 or 418 pauses the scopes for every process (Retry-After)."""
    limits = traits_for(exchange.id).rate_limits
    ccxt_cost = exchange.calculate_rate_limiter_cost

    def cost(api: Any, method: str, path: str, params: dict[str, Any], config: dict[str, Any] | None = None,
             ) -> ScopedCost:
        value, private = request_weight(ccxt_cost, limits, api, method, path, params, config)
        return ScopedCost(value, private=private)

    throttle = ccxt_throttle(limiter, scopes, limits)
    own_fetch = exchange.fetch

    async def fetch(url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        try:
            return await own_fetch(url, method, headers, body)
        except (ccxt.RateLimitExceeded, ccxt.DDoSProtection) as error:
            await throttle.refused(error, exchange.last_response_headers)
            raise

    exchange.calculate_rate_limiter_cost = cost
    exchange.throttle = throttle
    exchange.fetch = fetch
    exchange.enableRateLimit = True


def _of_kinds(scopes: tuple[str, ...], kinds: Sequence[str]) -> tuple[str, ...]:
    return tuple(s for s in scopes if s.partition(":")[0] in kinds) or scopes
