"""Request-weight limits as GCRA cells, what a venue's refusal (429, 418) costs a scope, and the limiter
market-data ingestion shares between the processes of one machine.

Venues count request weight per IP and per API key, each allowing `limit` weight per `window_s`
(the venue's `RateLimits` traits). A scope (an IP, a key) is one GCRA cell: its theoretical arrival
time (TAT). A request of weight w moves the TAT to max(TAT, now) + w * interval and passes while the
TAT stays within `tolerance` of now: a leaky bucket holding `burst` weight that drains at
1 / interval weight per second.

Why the burst is half a window and not all of it: a leaky bucket with burst B and rate r lets
B + r * W through in any span of W seconds. The exchange (and our emulator, see
xray_sim/exchange/ratelimit.py) counts a sliding window: at most `limit` in ANY W seconds. A burst
of the full window followed by pacing at limit / W would pass twice the limit in the first window and
earn 429s. So B + r * (W + jitter) = limit: by default half the window's weight at once, the other
half paced over the window, with `jitter_s` (5 % of the window) absorbing how unevenly requests
travel to the exchange. That bound holds against fixed windows too (a fixed window is one of the
sliding ones).

A refusal means someone else spends the same budget (another program on the IP, the key used
elsewhere) or a ban: the scope is paused for the venue's Retry-After (seconds or an HTTP date), or
`RATE_LIMITED_PAUSE_S` after a 429 and `BANNED_PAUSE_S` after a 418 when it names none. The pause
is kept beside the cell, so every process sharing the cell waits, not only the one that was
refused; the bucket itself is left as it was (a pause is not spent budget).

The trading runtime shares its cells through Redis (`xray_runtime.ratelimit`). Ingestion (the
Dagster runs, `xray ingest`) cannot use Redis from here; `HostLimiter` keeps the cells in a file
under an exclusive lock, shared by every process of the machine, and `install_host_throttle` puts it
in front of a synchronous ccxt client's requests, at the venue's weights, for a share of the
venue's per-IP limit (the rest is the runtime's).
"""

from __future__ import annotations

import contextlib
import email.utils
import fcntl
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ccxt

from xray_core.errors import ConfigError
from xray_core.exchange.venues import RateLimits

# Below a microsecond a wait is rounding (Redis TIME has µs resolution; cells are stored with 6 decimals).
EPSILON_S = 1e-6
RATE_LIMITED_PAUSE_S = 0.5  # after a 429 that names no Retry-After: a breath, not a stall
BANNED_PAUSE_S = 120.0  # after a 418 ("IP banned") that names no Retry-After
MAX_PAUSE_S = 3600.0  # a Retry-After longer than this is taken as this


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


# ---- refusals --------------------------------------------------------------------------------------
def refusal_pause(banned: bool, headers: Mapping[str, Any] | None, now: float | None = None) -> float:
    """Seconds to pause a scope the venue refused: its Retry-After, else the default for a 429
    (`banned` False) or a 418 (True), at most MAX_PAUSE_S."""
    value = None
    for name, header in (headers or {}).items():
        if str(name).lower() == "retry-after":
            value = str(header).strip()
    seconds = None
    if value:
        try:
            seconds = float(value)
        except ValueError:
            with contextlib.suppress(TypeError, ValueError, IndexError):
                when = email.utils.parsedate_to_datetime(value).timestamp()
                seconds = when - (time.time() if now is None else now)
    if seconds is None or seconds != seconds:  # absent, unreadable or NaN
        seconds = BANNED_PAUSE_S if banned else RATE_LIMITED_PAUSE_S
    return min(max(seconds, 0.0), MAX_PAUSE_S)


def is_ban(error: BaseException) -> bool:
    """Whether a ccxt refusal is a ban (418: DDoSProtection) rather than a 429 (RateLimitExceeded)."""
    return isinstance(error, ccxt.DDoSProtection) and not isinstance(error, ccxt.RateLimitExceeded)


# ---- the machine-wide limiter ------------------------------------------------------------------------
class HostLimiter:
    """GCRA cells in a JSON file under an exclusive `flock`, so that every process of this machine
    (each Dagster run, `xray ingest`) draws on one budget. Times are the wall clock, which all
    processes share; a cell further ahead than any wait could be (a clock set back, a file from
    before a reboot) is treated as empty."""

    def __init__(self, path: Path, quotas: Mapping[str, Quota], clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.path = path
        self.quotas = dict(quotas)
        self._clock = clock
        self._sleep = sleep
        self.waits = 0
        self.waited_s = 0.0
        self.refusals = 0

    def quota(self, scope: str) -> Quota:
        quota = self.quotas.get(scope.partition(":")[0])
        if quota is None:
            raise ConfigError(f"rate-limit scope {scope!r} has no limit", f"use one of {sorted(self.quotas)}")
        return quota

    def try_acquire(self, scopes: Sequence[str], weight: float) -> float:
        """0.0 when `weight` was charged to every scope; else the seconds to wait, nothing charged."""
        quotas = [self.quota(s) for s in scopes]
        heaviest = min((q.burst for q in quotas), default=weight)
        weight = min(weight, heaviest)  # a request heavier than the burst passes once the bucket is empty
        with self._cells() as cells:
            now = self._clock()
            paused = max((min(cells.get(f"paused:{s}", 0.0), now + MAX_PAUSE_S) - now for s in scopes),
                         default=0.0)
            if paused > EPSILON_S:
                return paused
            tats = [_sane(cells.get(s, now), now, q) for s, q in zip(scopes, quotas, strict=True)]
            wait, new_tats = gcra(tats, quotas, weight, now)
            if wait > EPSILON_S:
                return wait
            cells.update(zip(scopes, new_tats, strict=True))
            return 0.0

    def acquire(self, scopes: Sequence[str], weight: float) -> float:
        """Wait (sleeping) until every scope admits `weight`, charge it; the seconds slept."""
        waited = 0.0
        while (wait := self.try_acquire(scopes, weight)) > 0:
            self._sleep(wait)
            waited += wait
        if waited:
            self.waits += 1
            self.waited_s += waited
        return waited

    def pause(self, scopes: Sequence[str], pause_s: float) -> None:
        """Admit nothing on `scopes` for `pause_s` seconds (after a 429 or 418), in every process."""
        self.refusals += 1
        with self._cells() as cells:
            now = self._clock()
            for scope in scopes:
                self.quota(scope)  # a known scope
                cells[f"paused:{scope}"] = max(cells.get(f"paused:{scope}", 0.0), now + pause_s)

    @contextlib.contextmanager
    def _cells(self) -> Iterator[dict[str, float]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a+", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes
            handle.seek(0)
            try:
                cells = {str(k): float(v) for k, v in json.loads(handle.read() or "{}").items()}
            except (ValueError, TypeError, AttributeError):  # a torn or foreign file: start empty
                cells = {}
            before = dict(cells)
            yield cells
            if cells != before:
                now = self._clock()
                kept = {k: v for k, v in cells.items() if v > now}  # a TAT in the past is an empty cell
                handle.seek(0)
                handle.truncate()
                handle.write(json.dumps(kept))


def _sane(tat: float, now: float, quota: Quota) -> float:
    return now if tat > now + MAX_PAUSE_S + quota.window_s + quota.tolerance_s else tat


def request_weight(ccxt_cost: Callable[..., Any], limits: RateLimits, api: Any, method: str, path: str,
                   params: dict[str, Any], config: dict[str, Any] | None) -> tuple[float, bool]:
    """A ccxt request's weight at the venue (ccxt's cost, or the venue's whole-market weight where that
    is higher and no symbol narrows it) and whether it is private (the venue charges it to the key)."""
    value = float(ccxt_cost(api, method, path, params, config or {}))
    whole_market = limits.whole_market_weight(path)
    if whole_market is not None and not params.get("symbol"):
        value = max(value, whole_market)
    sections = api if isinstance(api, list | tuple) else [api]
    return value, "private" in sections


def install_host_throttle(exchange: Any, limiter: HostLimiter, limits: RateLimits,
                          ip_scope: str = "ip:host") -> None:
    """Make a synchronous ccxt client's public requests wait on `limiter` (scope `ip_scope`) at
    the venue's weights (ccxt's cost, or the venue's whole-market weight where that is higher),
    before ccxt's own per-client pacing; and pause the scope when the venue answers 429 or 418.
    Private requests are charged where the venue counts them (MEXC: the key, not the IP)."""
    if getattr(exchange, "xray_host_throttle", None) is limiter:
        return
    # ccxt's own methods, kept from the first installation (a second one replaces, never stacks)
    own = getattr(exchange, "xray_own", None)
    if own is None:
        own = exchange.xray_own = (exchange.calculate_rate_limiter_cost, exchange.throttle, exchange.fetch)
    ccxt_cost, own_throttle, own_fetch = own
    last_private = [False]

    def cost(api: Any, method: str, path: str, params: dict[str, Any], config: dict[str, Any] | None = None,
             ) -> float:
        value, last_private[0] = request_weight(ccxt_cost, limits, api, method, path, params, config)
        return value

    def throttle(weight: float | None = None) -> None:
        charged = "ip" in (limits.private_scopes if last_private[0] else limits.public_scopes)
        if charged:
            limiter.acquire([ip_scope], 1.0 if weight is None else float(weight))
        own_throttle(weight)

    def fetch(url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        try:
            return own_fetch(url, method, headers, body)
        except (ccxt.RateLimitExceeded, ccxt.DDoSProtection) as error:
            banned = is_ban(error)
            limiter.pause([ip_scope], refusal_pause(banned, exchange.last_response_headers))
            raise

    exchange.calculate_rate_limiter_cost = cost
    exchange.throttle = throttle
    exchange.fetch = fetch
    exchange.enableRateLimit = True
    exchange.xray_host_throttle = limiter
