"""Sending orders so that nothing is lost and nothing is doubled, whatever the exchange does.

`Executor.submit(account, intents)` for one user's intents of one bar:

1. An intent whose client order id is already known (hot state, else journal) is never sent as a new
   decision: it is resolved instead. Ids derive from (user, symbol, bar, intent), so re-deciding a
   bar after a crash or a restart yields the same ids and lands here.
2. Write-ahead: the new orders are recorded PENDING (journal, then state), then SUBMITTED, before
   anything is sent. A crash at any later point leaves a record that resolution and reconciliation
   find.
3. Each order is sent as a market order with its client order id, through the account's
   `VenueClient`. After an ambiguous failure (`VenueUnavailableError`: timeout, dropped connection, 5xx)
   the venue is asked by client order id: an order it has is adopted; one it does not have is sent
   again with the same id, but only to a venue that deduplicates client order ids (its traits: it
   returns, never duplicates, an order it already has); elsewhere it is left to reconciliation. A
   429 is a refusal before processing: back off and send again. Attempts are bounded; an order still
   unknown stays SUBMITTED with the reason, for reconciliation — never guessed.
4. Refusals (`VenueRejectedError`: insufficient funds, invalid order, bad symbol) -> REJECTED with the
   venue's reason. A refused API key -> REJECTED and, after the whole batch is recorded,
   `AccountError` for the user.
5. Orders that filled get their trades recorded as fills, in the same final write as their states.

Concurrency: all intents of a batch run at once, bounded by one semaphore per executor (orders in
flight per process). The journal is written in batches through `asyncio.to_thread`; the hot state
is a cache, so a Redis outage is counted and logged and trading goes on with the journal as truth.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from xray_core.errors import XrayError
from xray_core.exchange.protocol import (
    VenueAuthError,
    VenueClient,
    VenueError,
    VenueRateLimitedError,
    VenueRejectedError,
)
from xray_core.exchange.reports import OrderReport
from xray_core.trading.orders import Fill, Order, OrderIntent, OrderStatus
from xray_runtime.exchange_orders import adopt, lookup, rejected
from xray_runtime.exchange_pool import ExchangeAccount, ExchangePool
from xray_runtime.journal import Journal
from xray_runtime.order_state import OrderState, OrderStateUnavailableError

log = logging.getLogger(__name__)
_NOT_RESENT = ("not on the exchange; not sent again, as the venue does not deduplicate client order ids: "
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


@dataclass(slots=True)
class _Outcome:
    order: Order
    fills: list[Fill] = field(default_factory=list)
    account_error: str = ""


class Executor:
    """Submits one user's intents at a time (call it for many users concurrently)."""

    def __init__(self, pool: ExchangePool, journal: Journal, state: OrderState, *,
                 now_ms: Callable[[], int] = wall_ms, max_attempts: int = 4, concurrency: int = 64,
                 backoff_s: float = 0.25, backoff_max_s: float = 5.0, rate_limit_backoff_s: float = 1.0,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 fence: Fence | None = None) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.pool = pool
        self.journal = journal
        self.state = state
        self.now_ms = now_ms
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.rate_limit_backoff_s = rate_limit_backoff_s
        self.stats = ExecutorStats()
        self.state_stale = False  # a state write failed: rebuild it from the journal when Redis is back
        self._sleep = sleep
        self._slots = asyncio.Semaphore(concurrency)
        self.fence = fence

    async def submit(self, account: ExchangeAccount, intents: Sequence[OrderIntent]) -> list[Order]:
        """Send (or resolve) `intents` of `account`'s user; returns their orders in intent order.
        Raises AccountError (after recording everything) when the exchange refused the API key."""
        unique = {intent.client_order_id: intent for intent in reversed(intents)}  # first one wins
        if any(intent.user_id != account.user_id for intent in unique.values()):
            raise ValueError(f"intents of other users in a batch for user {account.user_id}")
        if not unique:
            return []
        venue = await self.pool.venue(account)
        known = await self._known(account.user_id, list(unique))
        fresh = await self._write_ahead([intent for cid, intent in unique.items() if cid not in known])
        self.stats.resolved += len(known)
        outcomes = await self._run(venue, fresh, list(known.values()))
        finished = list(outcomes.values())
        await self._record([o.order for o in finished], [fill for o in finished for fill in o.fills])
        orders = [outcomes[intent.client_order_id].order for intent in intents]
        refusal = next((o.account_error for o in finished if o.account_error), "")
        if refusal:
            self.pool.evict(account)
            raise AccountError(account.user_id, account.fingerprint, refusal, orders)
        return orders

    async def _write_ahead(self, intents: Sequence[OrderIntent]) -> list[Order]:
        """Record new orders PENDING (decided), then SUBMITTED (may reach the exchange from now on)."""
        pending = [Order.from_intent(intent, self.now_ms()) for intent in intents]
        await self._record(pending)
        submitted = [order.advance(OrderStatus.SUBMITTED, self.now_ms()) for order in pending]
        await self._record(submitted)
        return submitted

    async def _run(self, venue: VenueClient, fresh: list[Order], known: list[Order]) -> dict[str, _Outcome]:
        """Send the fresh orders and resolve the known ones, all at once within the semaphore."""
        steps = [*(self._send(venue, order) for order in fresh), *(self._resolve(venue, o) for o in known)]
        results = await asyncio.gather(*(self._bounded(step) for step in steps), return_exceptions=True)
        outcomes: dict[str, _Outcome] = {}
        for order, result in zip([*fresh, *known], results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, Exception):
                    raise result  # cancellation and the like
                log.error("order %s: unexpected failure", order.client_order_id, exc_info=result)
                result = _Outcome(order)  # kept as recorded: reconciliation resolves it
            outcomes[order.client_order_id] = result
        return outcomes

    # ---- one order ---------------------------------------------------------------------------------
    async def _resolve(self, venue: VenueClient, order: Order) -> _Outcome:
        """A known intent: the venue's view of it, or (if it never got there) a send. A SUBMITTED
        order may have been sent before a crash, so only a venue that deduplicates client order
        ids gets it again; a PENDING one never left."""
        if order.terminal:
            return _Outcome(order)
        found = await lookup(venue, order)
        if found.order is not None:
            return await self._adopted(venue, order, found.order)
        if found.missing and order.status is OrderStatus.PENDING:
            return await self._send(venue, order.advance(OrderStatus.SUBMITTED, self.now_ms()))
        if found.missing and order.status is OrderStatus.SUBMITTED:
            if venue.traits.deduplicates_client_order_ids:
                return await self._send(venue, order)
            return _Outcome(order.advance(order.status, self.now_ms(), reason=_NOT_RESENT))
        if found.account:
            return _Outcome(order, account_error=found.error)
        reason = "not on the exchange" if found.missing else f"exchange not asked: {found.error}"
        return _Outcome(order.advance(order.status, self.now_ms(), reason=reason))

    async def _send(self, venue: VenueClient, order: Order) -> _Outcome:
        maybe_placed = False  # an earlier attempt may have been processed
        rate_limited = False
        last = ""
        for attempt in range(self.max_attempts + 1):
            if attempt:
                await self._sleep(self._pause(attempt, rate_limited))
            rate_limited = False
            if maybe_placed:  # ask before sending again: adopt what the venue already has
                found = await lookup(venue, order)
                if found.order is not None:
                    self.stats.adopted += 1
                    return await self._adopted(venue, order, found.order)
                if found.account:
                    return self._refused(order, found.error, maybe_placed)
                if not found.missing:
                    last, rate_limited = found.error, found.rate_limited
                    continue
                if not venue.traits.deduplicates_client_order_ids:  # "missing" may be a lagging read
                    self.stats.unresolved += 1
                    reason = f"{_NOT_RESENT} ({last})"
                    return _Outcome(order.advance(order.status, self.now_ms(), reason=reason))
            if attempt == self.max_attempts:
                break  # the last round only asks
            if attempt:
                self.stats.retried += 1
            if self.fence is not None and (refusal := await self.fence.admit(order)):  # xray_runtime.fencing
                return _Outcome(order.advance(order.status, self.now_ms(), reason=refusal))
            try:
                self.stats.sent += 1
                ack = await venue.create_order(order.symbol, order.side, order.amount, order.client_order_id)
            except VenueRateLimitedError as error:  # refused before processing: nothing placed
                self.stats.rate_limited += 1
                rate_limited, last = True, error.reason
            except VenueAuthError as error:
                return self._refused(order, error.reason, maybe_placed)
            except VenueRejectedError as error:
                return await self._rejected(venue, order, error.reason, maybe_placed)
            except VenueError as error:  # timeout, dropped connection, 5xx, garbled answer: it may exist
                maybe_placed, last = True, error.reason
            else:
                return await self._confirmed(venue, order, ack)
        self.stats.unresolved += 1
        reason = f"unresolved after {self.max_attempts} attempts ({last}); reconciliation asks the exchange"
        log.warning("order %s unresolved: %s", order.client_order_id, last)
        return _Outcome(order.advance(order.status, self.now_ms(), reason=reason))

    async def _confirmed(self, venue: VenueClient, order: Order, ack: OrderReport) -> _Outcome:
        """Accepted: read its state (an acknowledgement may carry no status or fills; MEXC's does
        not). Without an exchange id in the answer, the order is read by its client id."""
        exchange_id = ack.exchange_order_id
        try:
            if exchange_id is None:
                found = await venue.fetch_order_by_client_id(order.client_order_id, order.symbol)
            else:
                found = await venue.fetch_order(exchange_id, order.symbol)
        except VenueError as error:
            reason = f"accepted; state not read yet ({error.reason})"
            return _Outcome(order.advance(order.status, self.now_ms(), exchange_order_id=exchange_id,
                                          reason=reason))
        return await self._adopted(venue, order, found)

    async def _adopted(self, venue: VenueClient, order: Order, report: OrderReport) -> _Outcome:
        adoption = await adopt(venue, order, report, self.now_ms())
        if adoption.note:
            log.warning("order %s: %s", order.client_order_id, adoption.note)
        return _Outcome(adoption.order, adoption.fills)

    async def _rejected(self, venue: VenueClient, order: Order, reason: str, maybe_placed: bool) -> _Outcome:
        if maybe_placed:  # e.g. funds now short because an earlier attempt did buy: adopt that one
            found = await lookup(venue, order)
            if found.order is not None:
                self.stats.adopted += 1
                return await self._adopted(venue, order, found.order)
            if not found.missing:
                return _Outcome(order.advance(order.status, self.now_ms(), reason=f"{reason}; {found.error}"))
        self.stats.rejected += 1
        return _Outcome(rejected(order, self.now_ms(), reason))

    def _refused(self, order: Order, reason: str, maybe_placed: bool) -> _Outcome:
        """The API key was refused. Without an earlier ambiguous attempt nothing was placed; with
        one, the order's fate is unknown until the user's key works again."""
        if maybe_placed:
            return _Outcome(order.advance(order.status, self.now_ms(), reason=f"API key refused: {reason}"),
                            account_error=reason)
        self.stats.rejected += 1
        return _Outcome(rejected(order, self.now_ms(), f"API key refused: {reason}"), account_error=reason)

    # ---- plumbing ----------------------------------------------------------------------------------
    async def _bounded(self, step: Awaitable[_Outcome]) -> _Outcome:
        async with self._slots:
            return await step

    def _pause(self, attempt: int, rate_limited: bool) -> float:
        base = self.rate_limit_backoff_s if rate_limited else self.backoff_s
        return min(base * 2 ** (attempt - 1), self.backoff_max_s) * (0.5 + random.random())

    async def _known(self, user_id: str, client_order_ids: list[str]) -> dict[str, Order]:
        """Orders already recorded for these ids: the hot state first, the journal for the rest."""
        try:
            known = await self.state.get_many(user_id, client_order_ids)
        except OrderStateUnavailableError as error:
            self._state_failed(error)
            known = {}
        missing = [cid for cid in client_order_ids if cid not in known]
        if missing:
            known |= await asyncio.to_thread(self.journal.get_many, missing)
        return known

    async def _record(self, orders: Sequence[Order], fills: Sequence[Fill] = ()) -> None:
        """Journal first (fills before orders: an order never claims fills the journal lacks), then
        the hot state."""
        if fills:
            await asyncio.to_thread(self.journal.add_fills, fills)
        if not orders:
            return
        await asyncio.to_thread(self.journal.upsert_orders, orders)
        try:
            await self.state.put(orders)
        except OrderStateUnavailableError as error:
            self._state_failed(error)

    def _state_failed(self, error: OrderStateUnavailableError) -> None:
        self.stats.state_errors += 1
        self.state_stale = True
        log.warning("order state unavailable, going on with the journal: %s", error.problem)
