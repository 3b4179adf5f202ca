"""The executor's values: what it counts, the outcome of one order, where a user's orders go, and the
error for a refused API key (`xray_runtime.execution` uses them)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from xray_core.errors import XrayError
from xray_core.exchange.protocol import VenueClient
from xray_core.trading.orders import Fill, Order

T = TypeVar("T")
NOT_RESENT = ("not on the exchange; not sent again, as the venue does not deduplicate client order ids: "
              "reconciliation asks the exchange")


def wall_ms() -> int:
    return int(time.time() * 1000)


class Fence(Protocol):
    """Says, right before each create_order, whether this process may still send for the order's user
    ('' yes; else why not: the order is left unsettled). The sharded runtime's is
    `xray_runtime.fencing.UserLocks.admit`."""

    async def admit(self, order: Order) -> str: ...


class AccountError(XrayError):
    """The exchange refused a user's API key: every order of that user will fail the same way. The
    message names the key by fingerprint only. `orders` are the batch's orders, already recorded."""

    def __init__(self, user_id: str, fingerprint: str, reason: str, orders: Sequence[Order] = ()) -> None:
        super().__init__(
            f"the exchange refused user {user_id}'s API key {fingerprint}: {reason}",
            "stop trading for this user until they enter a working key with spot trading enabled",
        )
        self.user_id = user_id
        self.fingerprint = fingerprint
        self.reason = reason
        self.orders = list(orders)


@dataclass
class ExecutorStats:
    sent: int = 0  # create_order requests
    resolved: int = 0  # known intents resolved instead of sent as new decisions
    adopted: int = 0  # orders found on the exchange by client order id after an ambiguous answer
    retried: int = 0  # attempts after the first
    rejected: int = 0
    unresolved: int = 0  # left SUBMITTED for reconciliation
    rate_limited: int = 0  # 429s met while sending
    state_errors: int = 0  # hot-state writes that failed (the journal has them)
    waited_out: int = 0  # resends held back until an earlier send could no longer act
    halted: int = 0  # orders not sent (or not asked about) because their scope was banned (418)
    followed: int = 0  # open orders of earlier bars asked about
    read_back_by_trades: int = 0  # acknowledged orders settled by one trades request (no order query)


@dataclass(slots=True)
class Outcome:
    order: Order
    fills: list[Fill] = field(default_factory=list)
    account_error: str = ""


@dataclass(frozen=True, slots=True)
class Target:
    """Where one user's orders go: the venue client and the ban scopes its requests count against."""

    venue: VenueClient
    scopes: tuple[str, ...]


class SendLedger:
    """For each client order id this process handles: whether a send of it may still act at the
    venue, and until when (wall-clock ms).

    * `NOT_SENT` (0): no send can act — never sent, or confirmed missing once every send was dead;
    * a time: the latest send may act until then (its signed timestamp + recvWindow + clock skew);
    * `ON_VENUE`: the venue acknowledged it — looked up from now on, never sent again.

    An id without an entry was handled by another process or before a restart. The journal dates its
    sends: the executor signs every send within `sign_deadline_ms` of the order's last journal write
    (it re-records an order before a send that would come later, and a request that waits past its
    deadline for a rate limit is not sent), so they are dead after updated_ms + sign_deadline_ms +
    recvWindow + skew (`date_unknown`)."""

    NOT_SENT = 0
    ON_VENUE = -1

    def __init__(self) -> None:
        self._until: dict[str, int] = {}

    def not_sent(self, cid: str) -> None:
        self._until[cid] = self.NOT_SENT

    def on_venue(self, cid: str) -> None:
        self._until[cid] = self.ON_VENUE

    def sent(self, cid: str, live_until_ms: int) -> None:
        """A send ended without a usable answer: it may act until `live_until_ms`."""
        if self._until.get(cid) != self.ON_VENUE:
            self._until[cid] = max(self._until.get(cid, 0), live_until_ms)

    def date_unknown(self, cid: str, live_until_ms: int) -> None:
        self._until.setdefault(cid, live_until_ms)

    def live_until(self, cid: str) -> int:
        return self._until.get(cid, self.ON_VENUE)

    def may_act(self, cid: str) -> bool:
        """Whether an earlier send may have reached the venue (or still can): ask before sending."""
        return self.live_until(cid) != self.NOT_SENT

    def known(self, cid: str) -> bool:
        """Whether this process handled `cid` (wrote it ahead or sent it) since it started."""
        return cid in self._until

    def forget(self, cid: str) -> None:
        self._until.pop(cid, None)


class Slots:
    """Orders in flight per process: each step runs holding one slot (`run`), and gives it back while
    it only waits (`idle`: a backoff, a recvWindow), so waiting orders do not hold up the others."""

    def __init__(self, concurrency: int, sleep: Callable[[float], Awaitable[None]]) -> None:
        self._semaphore = asyncio.Semaphore(concurrency)
        self._sleep = sleep

    async def run(self, step: Awaitable[T]) -> T:
        async with self._semaphore:
            return await step

    async def idle(self, seconds: float) -> None:
        """Wait without the slot; called only from inside `run`, which holds exactly one."""
        self._semaphore.release()
        try:
            await self._sleep(seconds)
        finally:
            await self._semaphore.acquire()
