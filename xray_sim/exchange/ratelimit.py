"""MEXC's request weights and sliding-window weight limits per IP and per API key.

Weights are MEXC's documented spot v3 weights (exchangeInfo 10, klines 1, ticker/24hr 1 for one
symbol and 40 for all, order POST 1, ...). ccxt's `api` cost table in mexc.py lists different numbers
for some endpoints (e.g. exchangeInfo 25): those pace ccxt's own client-side throttle (rateLimit 50 ms
per cost unit) rather than describe the server's accounting, so the server uses MEXC's.

As on MEXC, public endpoints count against the caller's IP and private (signed) endpoints against
the API key, each pool allowing `limit` weight per sliding `window_s` seconds (MEXC: 500 per 10 s).
A request over the limit is answered 429 and does not consume weight, so a client that backs off
recovers as soon as the window slides on.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum


class Scope(StrEnum):
    IP = "ip"
    KEY = "key"


# (method, path) -> (weight, weight without a symbol: the whole-market variant of ticker endpoints)
WEIGHTS: dict[tuple[str, str], tuple[int, int]] = {
    ("GET", "/api/v3/ping"): (1, 1),
    ("GET", "/api/v3/time"): (1, 1),
    ("GET", "/api/v3/defaultSymbols"): (1, 1),
    ("GET", "/api/v3/exchangeInfo"): (10, 10),
    ("GET", "/api/v3/depth"): (1, 1),
    ("GET", "/api/v3/trades"): (5, 5),
    ("GET", "/api/v3/historicalTrades"): (1, 1),
    ("GET", "/api/v3/aggTrades"): (1, 1),
    ("GET", "/api/v3/klines"): (1, 1),
    ("GET", "/api/v3/avgPrice"): (1, 1),
    ("GET", "/api/v3/ticker/24hr"): (1, 40),
    ("GET", "/api/v3/ticker/price"): (1, 2),
    ("GET", "/api/v3/ticker/bookTicker"): (1, 2),
    ("GET", "/api/v1/contract/detail"): (1, 1),
    ("GET", "/api/v3/capital/config/getall"): (10, 10),
    ("GET", "/api/v3/account"): (10, 10),
    ("GET", "/api/v3/capital/deposit/hisrec"): (10, 10),
    ("GET", "/api/v3/capital/withdraw/history"): (1, 1),
    ("POST", "/api/v3/order"): (1, 1),
    ("POST", "/api/v3/order/test"): (1, 1),
    ("GET", "/api/v3/order"): (2, 2),
    ("DELETE", "/api/v3/order"): (1, 1),
    ("GET", "/api/v3/openOrders"): (3, 3),
    ("DELETE", "/api/v3/openOrders"): (1, 1),
    ("GET", "/api/v3/allOrders"): (10, 10),
    ("GET", "/api/v3/myTrades"): (10, 10),
}


def request_weight(method: str, path: str, has_symbol: bool) -> int:
    """Weight of one request; unknown endpoints weigh 1 (they still cost the caller something)."""
    weight, whole_market = WEIGHTS.get((method, path), (1, 1))
    return weight if has_symbol else whole_market


@dataclass(slots=True)
class _Window:
    events: deque[tuple[float, int]] = field(default_factory=deque)
    used: int = 0

    def expire(self, before: float) -> None:
        events = self.events
        while events and events[0][0] <= before:
            self.used -= events.popleft()[1]


class RateLimiter:
    """Sliding-window weight accounting per (scope, identity), with counters of what it refused."""

    def __init__(self, limit: int, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._windows: dict[tuple[Scope, str], _Window] = {}
        self.violations: Counter[Scope] = Counter()

    def admit(self, scope: Scope, identity: str, weight: int) -> bool:
        """Count `weight` for `identity` if it fits in the window; False (and a violation) if not."""
        now = self._clock()
        window = self._windows.get((scope, identity))
        if window is None:
            window = self._windows[(scope, identity)] = _Window()
        window.expire(now - self.window_s)
        if window.used + weight > self.limit:
            self.violations[scope] += 1
            return False
        window.events.append((now, weight))
        window.used += weight
        return True

    def used(self, scope: Scope, identity: str) -> int:
        window = self._windows.get((scope, identity))
        if window is None:
            return 0
        window.expire(self._clock() - self.window_s)
        return window.used

    def prune(self) -> None:
        """Forget identities whose window has emptied (keeps memory flat under many keys)."""
        cutoff = self._clock() - self.window_s
        for ident, window in list(self._windows.items()):
            window.expire(cutoff)
            if not window.events:
                del self._windows[ident]
