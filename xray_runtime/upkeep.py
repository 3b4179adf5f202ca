"""What the trading loop does besides trading, kept off its critical path: periodic reconciliation and
market reloads as background tasks, per-user gates that keep them consistent with execution, and the
judgement of API-key refusals (a bad key, or the exchange's own authentication outage).

Consistency with a background reconciliation: reconciling a user reads the exchange's balances and
sets the book from them, and the fills recorded until then are in those balances. So a user is
reconciled under its gate (`UserGates`), which execution takes too, and the book is set and that
user's queued fills dropped in one step without an await: the tick's own `apply_fills` can then
never add a fill the balances already hold, nor lose one they do not. A tick that finds a user's
gate taken leaves the user unsettled (decided again on the next step) instead of waiting.

Key refusals: one user's key refused while others work is that key's fault, and the user is
disabled. Keys refused at once with none accepted (at least `min_outage` of them) are the
exchange's authentication failing for everyone: nobody is disabled, the service says so on
/health, and trading resumes when the exchange accepts keys again.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from xray_core.redaction import describe
from xray_core.trading.orders import Order, OrderStatus

log = logging.getLogger(__name__)
Job = Callable[[], Awaitable[object]]


def settle_heap(young_threshold: int = 50_000) -> None:
    """After start-up: what is built by then (thousands of ccxt clients, markets, the book, the
    strategies' compiled kernels) lives as long as the process, so it is moved out of the cyclic
    collector's sight (`gc.freeze`), and the youngest generation is collected every `young_threshold`
    allocations instead of 700. Measured on a 10,000-user tick: the collector took 38% of the send
    phase (six full collections over ~700,000 long-lived objects), and under 2% after this. Memory
    is still reclaimed: reference counting frees almost everything, the collector only cycles."""
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(young_threshold, middle, oldest)


class UserGates:
    """One asyncio lock per user: held while the user's orders are sent, and while it is reconciled."""

    def __init__(self) -> None:
        self._gates: dict[str, asyncio.Lock] = {}

    def get(self, user_id: str) -> asyncio.Lock:
        gate = self._gates.get(user_id)
        if gate is None:
            gate = self._gates[user_id] = asyncio.Lock()
        return gate

    def busy(self, user_id: str) -> bool:
        gate = self._gates.get(user_id)
        return gate is not None and gate.locked()

    def forget(self, user_ids: set[str]) -> None:
        """Drop the gates of users this process no longer has (unless one is held right now)."""
        for user_id in user_ids:
            gate = self._gates.get(user_id)
            if gate is not None and not gate.locked():
                del self._gates[user_id]


@dataclass
class Periodic:
    """A job run every `every_s` as a background task, never two at once. A failure is logged and
    kept (`last_error`) for /health; the next run is due `every_s` later all the same."""

    name: str
    every_s: float
    last_start: float = 0.0
    last_error: str | None = None
    runs: int = 0
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()

    def due(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        return not self.running and now - self.last_start >= self.every_s

    def hurry(self, min_gap_s: float) -> None:
        """Make the job due now, unless it started less than `min_gap_s` ago (a new listing seen)."""
        if time.monotonic() - self.last_start >= min_gap_s:
            self.last_start = -self.every_s

    def ran(self) -> None:
        """A run made in the foreground (at start) counts as this period's."""
        self.last_start = time.monotonic()

    def start(self, job: Job, errors: tuple[type[BaseException], ...]) -> bool:
        """Start `job` in the background if due; whether it was started."""
        if not self.due():
            return False
        self.last_start = time.monotonic()
        self.task = asyncio.create_task(self._run(job, errors), name=f"upkeep:{self.name}")
        return True

    async def _run(self, job: Job, errors: tuple[type[BaseException], ...]) -> None:
        try:
            await job()
        except errors as exc:  # an outage: the next period tries again
            self.last_error = describe(exc)
            log.error("%s failed", self.name, extra={"event": f"{self.name}_failed",
                                                     "reason": self.last_error})
            return
        except Exception as exc:  # a bug: with its traceback, and on /health; the loop trades on
            self.last_error = describe(exc)
            log.exception("%s failed unexpectedly", self.name, extra={"event": f"{self.name}_failed"})
            return
        self.last_error = None
        self.runs += 1

    async def stop(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    async def wait(self) -> None:
        """Until the running job (if any) is done (tests, shutdown)."""
        if self.task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self.task)


def key_worked(orders: Sequence[Order]) -> bool:
    """Whether the exchange answered any of a user's orders (it took the key), not only refused it."""
    return any(o.exchange_order_id or o.status not in (OrderStatus.PENDING, OrderStatus.SUBMITTED)
               for o in orders)


@dataclass
class KeyRefusals:
    """Who is disabled for a refused API key, and when refusals are the exchange's outage."""

    min_outage: int = 2
    venue_problem: str | None = None

    def to_disable(self, refused: dict[str, str], worked: int) -> list[str]:
        """The users of `refused` to disable, given that `worked` users' keys were accepted in the
        same pass; [] (and `venue_problem` set) when the refusals look like an exchange outage."""
        if len(refused) >= self.min_outage and worked == 0:
            self.venue_problem = (
                f"the exchange refused {len(refused)} API keys at once and accepted none: treated as "
                "its own authentication outage, nobody disabled; trading resumes when it accepts keys again")
            log.error("exchange auth outage", extra={"event": "venue_auth_outage", "refused": len(refused),
                                                     "example": next(iter(refused.values()))[:200]})
            return []
        if worked:
            self.venue_problem = None
        return sorted(refused)
