"""Scopes a venue has banned (HTTP 418): while one is halted, this process sends nothing on it.

A 418 is not a refusal of one request, to be retried after a pause like a 429: it bans the caller's IP
address (MEXC, after requests kept coming despite 429s) or API key for a while, and every further
request extends it. So the whole scope stops — orders, lookups and reconciliation of every account
that shares it — until the ban's Retry-After (or `default_s`) has passed.

Scopes, as `scopes_of(account)` names them: the IP address, shared by every account this process
trades on one venue (exchange and URL), and the API key. The paper broker has neither.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from xray_runtime.exchange_pool import ExchangeAccount

log = logging.getLogger(__name__)


def scopes_of(account: ExchangeAccount) -> tuple[str, ...]:
    if account.paper_broker:
        return ()
    venue = f"{account.exchange_id}:{account.base_url or ''}"
    return f"ip:{venue}", f"key:{venue}:{account.fingerprint}"


@dataclass(frozen=True, slots=True)
class Halt:
    until_ms: int
    reason: str


class Halts:
    def __init__(self, now_ms: Callable[[], int], default_s: float = 120.0) -> None:
        self.now_ms = now_ms
        self.default_s = default_s
        self._halts: dict[str, Halt] = {}

    def halt(self, scopes: tuple[str, ...], scope_kind: str, retry_after_s: float | None,
             reason: str) -> Halt:
        """Halt the scope of `scope_kind` ("ip" or "key") among `scopes` for `retry_after_s`."""
        seconds = retry_after_s if retry_after_s is not None and retry_after_s > 0 else self.default_s
        until = self.now_ms() + int(seconds * 1000)
        chosen = [s for s in scopes if s.startswith(f"{scope_kind}:")] or list(scopes)
        halt = Halt(until, f"{scope_kind} banned by the venue (HTTP 418) until {until} ms: {reason}")
        for scope in chosen:
            current = self._halts.get(scope)
            if current is None or current.until_ms < until:
                self._halts[scope] = halt
        log.error("venue ban: nothing is sent on %s until %d", ", ".join(chosen), until,
                  extra={"event": "venue_ban", "scopes": chosen, "until_ms": until})
        return halt

    def active(self, scopes: Iterable[str]) -> Halt | None:
        """The longest ban in force on any of `scopes` (None: free to send)."""
        now = self.now_ms()
        found = [h for s in scopes if (h := self._halts.get(s)) is not None and h.until_ms > now]
        return max(found, key=lambda h: h.until_ms) if found else None
