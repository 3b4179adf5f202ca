"""Request-weight limits shared by every runtime process: GCRA over several scopes at once.

Venues count request weight per IP and per API key, each allowing `limit` weight per `window_s`;
which requests go to which scope, and the limits, are the venue's `RateLimits` traits (MEXC: public
endpoints per IP, private ones per key, 500 per 10 s each). A request names the scopes it is
charged to, e.g. `("ip:203.0.113.5", key_scope(api_key))`, and is admitted only when every scope
admits it; otherwise nothing is consumed and the caller learns how long to wait. Scopes of kind "ip"
use `weight_limit_ip`, kind "key" `weight_limit_key` (settings; unset: the venue's).

Each scope is one GCRA cell: its theoretical arrival time (TAT). A request of weight w moves the TAT
to max(TAT, now) + w * interval and passes while the TAT stays within `tolerance` of now: a leaky
bucket holding `burst` weight that drains at 1 / interval weight per second.

Why the burst is half a window and not all of it: a leaky bucket with burst B and rate r lets
B + r * W through in any span of W seconds. The exchange (and our emulator, see
xray_sim/exchange/ratelimit.py) counts a sliding window: at most `limit` in ANY W seconds. A burst
of the full window followed by pacing at limit / W would pass twice the limit in the first window and
earn 429s. So B + r * (W + jitter) = limit: by default half the window's weight at once, the other
half paced over the window, with `jitter_s` (5 % of the window) absorbing how unevenly requests
travel to the exchange. That bound holds against fixed windows too (a fixed window is one of the
sliding ones).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from xray_core.errors import ConfigError
from xray_core.exchange.venues import GENERIC, RateLimits, traits_for
from xray_runtime.redis_conn import AnyRedis, connect
from xray_runtime.settings import RuntimeSettings

# Below a microsecond a wait is rounding (Redis TIME has µs resolution; cells are stored with 6 decimals).
EPSILON_S = 1e-6


@dataclass(frozen=True, slots=True)
class Quota:
    """One scope kind's limit as GCRA parameters (see the module docstring for why burst < limit)."""

    limit: float  # weight per window, as the exchange states it
    window_s: float
    burst: float  # weight admitted at once from idle; the heaviest single request this scope allows
    interval_s: float  # seconds one unit of weight occupies at the sustained rate

    @classmethod
    def of(cls, limit: float, window_s: float, burst_share: float = 0.5,
           jitter_s: float | None = None) -> Quota:
        """The quota that never passes more than `limit` in any `window_s` seconds as the exchange
        sees them, given requests arrive up to `jitter_s` (default 5 % of the window) unevenly."""
        if not 0 < burst_share < 1:
            raise ConfigError(f"burst_share must be between 0 and 1, not {burst_share}")
        jitter = 0.05 * window_s if jitter_s is None else jitter_s
        burst = limit * burst_share
        return cls(limit, window_s, burst, (window_s + jitter) / (limit - burst))

    @property
    def tolerance_s(self) -> float:
        return self.burst * self.interval_s


def quotas_from_settings(settings: RuntimeSettings, burst_share: float = 0.5) -> dict[str, Quota]:
    """Quotas per scope kind, "ip" and "key": the settings' limits, else those of the venue
    `settings.exchange_id` names."""
    venue = traits_for(settings.exchange_id).rate_limits
    window = settings.weight_window_s or venue.window_s
    return {
        "ip": Quota.of(settings.weight_limit_ip or venue.ip_weight, window, burst_share),
        "key": Quota.of(settings.weight_limit_key or venue.key_weight, window, burst_share),
    }


def ip_scope(ip: str) -> str:
    return f"ip:{ip}"


def key_scope(api_key: str) -> str:
    """The scope of an API key: a short SHA-256 digest, so the key itself never reaches Redis or logs."""
    return "key:" + hashlib.sha256(api_key.encode()).hexdigest()[:16]


def gcra(tats: Sequence[float], quotas: Sequence[Quota], weight: float,
         now: float) -> tuple[float, list[float]]:
    """One all-or-nothing step over several cells: (wait, new TATs). A wait of at most EPSILON_S
    means admitted, and the new TATs are to be stored; else the cells stay as they were."""
    wait = 0.0
    new_tats: list[float] = []
    for tat, quota in zip(tats, quotas, strict=True):
        new_tat = max(tat, now) + weight * quota.interval_s
        wait = max(wait, new_tat - quota.tolerance_s - now)
        new_tats.append(new_tat)
    return wait, new_tats


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

    async def _attempt(self, scopes: list[str], quotas: list[Quota], weight: float) -> float:
        raise NotImplementedError


class LocalLimiter(BaseLimiter):
    """The in-process limiter of the embedded default (one process, no Redis). The event loop makes
    each attempt atomic: nothing awaits between reading and writing the cells."""

    def __init__(self, quotas: Mapping[str, Quota], clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> None:
        super().__init__(quotas, sleep)
        self._clock = clock
        self._tats: dict[str, float] = {}

    async def _attempt(self, scopes: list[str], quotas: list[Quota], weight: float) -> float:
        now = self._clock()
        wait, new_tats = gcra([self._tats.get(s, now) for s in scopes], quotas, weight, now)
        if wait > EPSILON_S:
            return wait
        self._tats.update(zip(scopes, new_tats, strict=True))
        if len(self._tats) > 10_000:  # forget idle cells (a TAT in the past equals an empty cell)
            self._tats = {s: tat for s, tat in self._tats.items() if tat > now}
        return 0.0


# KEYS: one cell per scope. ARGV: weight, then interval_s and tolerance_s per cell.
# Returns the wait as a string (Redis would truncate a Lua float to an integer).
_GCRA_LUA = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local weight = tonumber(ARGV[1])
local wait = 0
local tats = {}
for i, cell in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i])
  local tolerance = tonumber(ARGV[2 * i + 1])
  local tat = tonumber(redis.call('GET', cell)) or now
  if tat < now then tat = now end
  local new_tat = tat + weight * interval
  local need = new_tat - tolerance - now
  if need > wait then wait = need end
  tats[i] = new_tat
end
if wait > EPSILON then
  return string.format('%.6f', wait)
end
for i, cell in ipairs(KEYS) do
  local ttl_ms = math.ceil((tats[i] - now) * 1000) + 1
  redis.call('SET', cell, string.format('%.6f', tats[i]), 'PX', ttl_ms)
end
return '0'
""".replace("EPSILON", repr(EPSILON_S))


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

    def cell_key(self, scope: str) -> str:
        return f"{self._prefix}:{{rl}}:{scope}"

    async def _attempt(self, scopes: list[str], quotas: list[Quota], weight: float) -> float:
        args: list[float] = [weight]
        for quota in quotas:
            args += [quota.interval_s, quota.tolerance_s]
        reply = await self._script(keys=[self.cell_key(s) for s in scopes], args=[repr(a) for a in args])
        return float(reply)


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


def ccxt_throttle(limiter: BaseLimiter, scopes: Sequence[str],
                  limits: RateLimits = GENERIC.rate_limits) -> Callable[[float], Awaitable[None]]:
    """A replacement for a ccxt async exchange's `throttle(cost)`: waits on `limiter` for `cost`
    weight. A plain cost is charged to every scope; a ScopedCost (see install_ccxt_throttle) only to
    the scopes of the kinds `limits` charges private (or public) requests to (to all, if none of
    those kinds is among `scopes`)."""
    scopes = tuple(scopes)
    private_scopes = _of_kinds(scopes, limits.private_scopes)
    public_scopes = _of_kinds(scopes, limits.public_scopes)

    async def throttle(cost: float | None = None) -> None:
        charged = scopes
        if isinstance(cost, ScopedCost):
            charged = private_scopes if cost.private else public_scopes
        await limiter.acquire(charged, 1.0 if cost is None else float(cost))

    return throttle


def install_ccxt_throttle(exchange: Any, limiter: BaseLimiter, scopes: Sequence[str]) -> None:
    """Make every request of a ccxt async `exchange` wait on `limiter`, each charged to the scopes
    its venue counts it in (MEXC: private requests to the key, public ones to the IP), at ccxt's
    cost or the venue's weight where ccxt's is lower. Replaces ccxt's own per-instance throttle,
    which paces one instance only."""
    limits = traits_for(exchange.id).rate_limits
    ccxt_cost = exchange.calculate_rate_limiter_cost

    def cost(api: Any, method: str, path: str, params: dict[str, Any], config: dict[str, Any] | None = None,
             ) -> ScopedCost:
        value = float(ccxt_cost(api, method, path, params, config or {}))
        whole_market = limits.whole_market_weight(path)
        if whole_market is not None and not params.get("symbol"):
            value = max(value, whole_market)
        sections = api if isinstance(api, list | tuple) else [api]
        return ScopedCost(value, private="private" in sections)

    exchange.calculate_rate_limiter_cost = cost
    exchange.throttle = ccxt_throttle(limiter, scopes, limits)
    exchange.enableRateLimit = True


def _of_kinds(scopes: tuple[str, ...], kinds: Sequence[str]) -> tuple[str, ...]:
    return tuple(s for s in scopes if s.partition(":")[0] in kinds) or scopes
