"""Sending orders so that nothing is lost and nothing is doubled, whatever the exchange does.

`Executor.submit(account, intents)` for one user's intents of one bar:

1. An intent whose client order id is already known (hot state, else journal) is never sent as a new
   decision: it is resolved instead. Ids derive from (user, symbol, bar, intent), so re-deciding a
   bar after a crash or a restart yields the same ids and lands here.
2. Write-ahead: the new orders are recorded SUBMITTED (journal, then state) before anything is
   sent. A crash at any later point leaves a record that resolution and reconciliation find.
3. Each order is sent as a market order with its client order id, through the account's
   `VenueClient`. After an ambiguous failure (`VenueUnavailableError`: timeout, dropped connection,
   5xx) the request may still be on its way or held at the venue and act later, so the venue is
   asked by client order id: an order it has is adopted. One it does not have is sent again (same id)
   only once every earlier send of it is dead (signed timestamp + the client's `request_ttl_ms`, its
   recvWindow, + `clock_skew_ms`; see `SendLedger` for sends of other processes) and a lookup after
   that still misses it; and only to a venue whose traits say it deduplicates client order ids
   (elsewhere "missing" may be a lagging read: reconciliation settles it). So whatever the venue does
   with a repeated id (return the first order, refuse it, accept it once the first closed), no second
   order appears. Refusals before processing (429, a stale timestamp) are sent again after a pause; a
   refused duplicate id is looked up. Attempts are bounded; an order still unknown stays SUBMITTED
   with the reason, for reconciliation — never guessed.
4. A 418 bans a scope (the IP address or the key): every order and lookup on it halts (`halts.Halts`)
   until the ban lifts; the orders it stopped keep their state, with the reason.
5. Refusals (`VenueRejectedError`: funds, invalid order, bad symbol) -> REJECTED with the venue's
   reason; a refused API key -> REJECTED and, once the batch is recorded, `AccountError`.
6. Fills are recorded with their orders' states, in one final write.

`follow` settles orders still open from earlier bars (a partial fill's rest, an order left unknown)
before the next decision. Concurrency: one `Slots` per executor (orders in flight per process). The
journal is written in group commits (`journal_batch`: concurrent orders' writes share a transaction);
the hot state is a cache (the journal stays the truth).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence

from xray_core.trading.orders import Fill, Order, OrderIntent, OrderStatus

__all__ = ["AccountError", "Executor", "ExecutorStats", "wall_ms"]
from xray_runtime.exchange_orders import lookup
from xray_runtime.exchange_pool import ExchangeAccount, ExchangePool
from xray_runtime.execution_types import (
    NOT_RESENT,
    AccountError,
    ExecutorStats,
    Fence,
    Outcome,
    SendLedger,
    Slots,
    Target,
    wall_ms,
)
from xray_runtime.halts import Halt, Halts, scopes_of
from xray_runtime.journal import Journal
from xray_runtime.journal_batch import JournalBatcher
from xray_runtime.order_sender import OrderSender
from xray_runtime.order_state import OrderState, OrderStateUnavailableError

log = logging.getLogger(__name__)


class Executor(OrderSender):
    """Submits one user's intents at a time (call it for many users concurrently)."""

    def __init__(self, pool: ExchangePool, journal: Journal, state: OrderState, *,
                 now_ms: Callable[[], int] = wall_ms, max_attempts: int = 4, concurrency: int = 64,
                 backoff_s: float = 0.25, backoff_max_s: float = 5.0, rate_limit_backoff_s: float = 1.0,
                 clock_skew_ms: int = 1_000, sign_deadline_ms: int = 10_000, max_wait_s: float = 30.0,
                 halts: Halts | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 fence: Fence | None = None,
                 observe_ack_s: Callable[[float], None] | None = None) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.pool = pool
        self.journal = journal
        self.batcher = JournalBatcher(journal)  # concurrent orders' writes share transactions
        self.state = state
        self.now_ms = now_ms
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.rate_limit_backoff_s = rate_limit_backoff_s
        self.clock_skew_ms = clock_skew_ms
        self.sign_deadline_ms = sign_deadline_ms
        self.max_wait_ms = int(max_wait_s * 1000)  # longer than this, a resend waits for the next pass
        self.resend_within_ms = 600_000  # an earlier bar's order older than this is not sent late
        self.halts = halts if halts is not None else Halts(now_ms)
        self.stats = ExecutorStats()
        self.state_stale = False  # a state write failed: rebuild it from the journal when Redis is back
        self._slots = Slots(concurrency, sleep)
        self._sends = SendLedger()  # whether (and until when) an earlier send of an order may act
        self._observe_ack_s = observe_ack_s  # seconds from sending an order to its ack (metrics)
        self.fence = fence  # several processes: may this one still send for the user (fencing.py)?

    async def submit(self, account: ExchangeAccount, intents: Sequence[OrderIntent],
                     read_back: bool = True) -> list[Order]:
        """Send (or resolve) `intents` of `account`'s user; returns their orders in intent order.
        Raises AccountError (after recording everything) when the exchange refused the API key.
        Without `read_back`, an order the venue acknowledged is returned SUBMITTED with its exchange
        id, and `read_back` (the method) learns what it did: every user's orders of a bar go out
        before any is read back."""
        unique = {intent.client_order_id: intent for intent in reversed(intents)}  # first one wins
        if any(intent.user_id != account.user_id for intent in unique.values()):
            raise ValueError(f"intents of other users in a batch for user {account.user_id}")
        if not unique:
            return []
        target = Target(await self.pool.venue(account), scopes_of(account))
        known = await self._known(account.user_id, list(unique))
        halt = self.halts.active(target.scopes)
        fresh_intents = [intent for cid, intent in unique.items() if cid not in known]
        if halt is not None:  # banned: decided orders are kept PENDING (never sent), nothing is asked
            outcomes = {o.client_order_id: Outcome(o) for o in await self._pending(fresh_intents, halt)}
            outcomes |= {cid: self._held(order, halt) for cid, order in known.items()}
            return [outcomes[intent.client_order_id].order for intent in intents]
        fresh = await self._write_ahead(fresh_intents)
        self.stats.resolved += len(known)
        outcomes = await self._run(target, fresh, list(known.values()), read_back)
        finished = list(outcomes.values())
        # An acknowledgement that `read_back` settles next is not journaled on its own: the write-
        # ahead record (SUBMITTED) is what a crash in between needs (resolution finds the order by
        # its client id), and the read-back records the order with its fills moments later.
        await self._finish([o for o in finished if read_back or not _acknowledged_only(o)])
        orders = [outcomes[intent.client_order_id].order for intent in intents]
        refusal = next((o.account_error for o in finished if o.account_error), "")
        if refusal:
            self.pool.evict(account)
            raise AccountError(account.user_id, account.fingerprint, refusal, orders)
        return orders

    async def follow(self, accounts: Mapping[str, ExchangeAccount], orders: Sequence[Order],
                     resend: bool = True) -> list[Order]:
        """Settle `orders` (open ones of earlier bars) as far as the venue answers now, in one round
        without waiting: adopt what it has; with `resend`, send again, under `_send`'s rule, an order
        this process sent whose every send is dead and which the venue does not have (a fault it never
        saw ends in a retried order); leave the rest. Records what changed; returns every order."""
        async def one(order: Order) -> Outcome:
            account = accounts.get(order.user_id)
            if account is None or order.terminal:
                return Outcome(order)
            target = Target(await self.pool.venue(account), scopes_of(account))
            if self.halts.active(target.scopes) is not None:
                return Outcome(order)
            self.stats.followed += 1
            if resend and self._resendable(target, order):  # dated by the ledger or the journal
                return await self._send(target, order, attempts=1, wait=False)
            found = await lookup(target.venue, order)
            if found.banned is not None:
                self._ban(target, found.banned)
            return await self._adopted(target.venue, order, found.order) if found.order else Outcome(order)

        results = await asyncio.gather(*(self._slots.run(one(o)) for o in orders), return_exceptions=True)
        outcomes = [r if isinstance(r, Outcome) else Outcome(o) for r, o in zip(results, orders, strict=True)]
        await self._finish([new for new, old in zip(outcomes, orders, strict=True)
                            if new.order != old or new.fills])
        return [outcome.order for outcome in outcomes]

    async def _write_ahead(self, intents: Sequence[OrderIntent]) -> list[Order]:
        """Record new orders SUBMITTED (decided, and may reach the exchange from now on) before any is
        sent. One write: a PENDING record first would change nothing, as nothing happens between it
        and this one (a crash there leaves an order never sent either way, which resolution finds
        missing and, on a venue that deduplicates client ids, sends once its id is safe to reuse)."""
        now = self.now_ms()
        submitted = [Order.from_intent(intent, now).advance(OrderStatus.SUBMITTED, now) for intent in intents]
        await self._record(submitted)
        for order in submitted:
            self._sends.not_sent(order.client_order_id)
        return submitted

    async def _pending(self, intents: Sequence[OrderIntent], halt: Halt) -> list[Order]:
        """New orders recorded PENDING only, with the ban as the reason (decided again later)."""
        now, reason = self.now_ms(), f"not sent: {halt.reason}"
        pending = [Order.from_intent(intent, now).advance(OrderStatus.PENDING, now, reason=reason)
                   for intent in intents]
        await self._record(pending)
        self.stats.halted += len(pending)
        return pending

    async def read_back(self, account: ExchangeAccount, orders: Sequence[Order]) -> list[Order]:
        """`orders` (of `submit` without read-back) with what the venue did with each acknowledged
        one (`OrderSender._read_back`), recorded; the others as they are."""
        acknowledged = [o for o in orders if not o.terminal and o.exchange_order_id is not None
                        and o.status is OrderStatus.SUBMITTED]
        if not acknowledged:
            return list(orders)
        target = Target(await self.pool.venue(account), scopes_of(account))
        results = await self._steps(acknowledged, (self._read_back(target, o) for o in acknowledged),
                                    "reading it back failed")
        # A read-back that failed leaves its order acknowledged: following open orders reads it next bar.
        outcomes = {o.client_order_id: r for o, r in zip(acknowledged, results, strict=True) if r is not None}
        await self._finish(list(outcomes.values()))
        return [outcomes[o.client_order_id].order if o.client_order_id in outcomes else o for o in orders]

    async def _run(self, target: Target, fresh: list[Order], known: list[Order],
                   read_back: bool = True) -> dict[str, Outcome]:
        """Send the fresh orders and resolve the known ones, all at once within the semaphore."""
        steps = [*(self._send(target, order, read_back=read_back) for order in fresh),
                 *(self._resolve(target, o) for o in known)]
        orders = [*fresh, *known]
        results = await self._steps(orders, steps, "unexpected failure")
        # A step that failed keeps its order as recorded: reconciliation resolves it.
        return {o.client_order_id: r or Outcome(o) for o, r in zip(orders, results, strict=True)}

    async def _steps(self, orders: Sequence[Order], steps: Iterable[Awaitable[Outcome]],
                     failed: str) -> list[Outcome | None]:
        """Run `steps` (one per order, in order) within the slots; None where one raised (logged
        as `failed`). Cancellation and the like propagate."""
        results = await _all(self._slots.run(step) for step in steps)
        outcomes: list[Outcome | None] = []
        for order, result in zip(orders, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, Exception):
                    raise result
                log.error("order %s: %s", order.client_order_id, failed, exc_info=result)
                outcomes.append(None)
            else:
                outcomes.append(result)
        return outcomes

    async def _finish(self, outcomes: Sequence[Outcome]) -> None:
        """Record `outcomes` (fills first) and forget the sends of the orders that ended."""
        await self._record([o.order for o in outcomes], [fill for o in outcomes for fill in o.fills])
        for outcome in outcomes:
            if outcome.order.terminal:
                self._sends.forget(outcome.order.client_order_id)

    # ---- one order ---------------------------------------------------------------------------------
    async def _resolve(self, target: Target, order: Order) -> Outcome:
        """A known intent: the venue's view of it, or (if it never got there) a send. A SUBMITTED
        order may have been sent before (by this process, another, or one that crashed), so it is
        sent again only under `_send`'s rule; a PENDING one never left."""
        if order.terminal:
            return Outcome(order)
        cid = order.client_order_id
        if order.exchange_order_id is not None:
            self._sends.on_venue(cid)  # acknowledged once: looked up, never sent again
        elif order.status is OrderStatus.SUBMITTED and target.venue.traits.deduplicates_client_order_ids:
            self._date_from_journal(target, order)
            return await self._send(target, order)
        found = await lookup(target.venue, order)
        if found.order is not None:
            return await self._adopted(target.venue, order, found.order)
        if found.missing and order.status is OrderStatus.PENDING:  # recorded before any send: never sent
            self._sends.not_sent(cid)
            return await self._send(target, order.advance(OrderStatus.SUBMITTED, self.now_ms()))
        if found.missing and order.status is OrderStatus.SUBMITTED:
            return Outcome(order.advance(order.status, self.now_ms(), reason=NOT_RESENT))
        if found.account:
            return Outcome(order, account_error=found.error)
        if found.banned is not None:
            return self._held(order, self._ban(target, found.banned))
        reason = "not on the exchange" if found.missing else f"exchange not asked: {found.error}"
        return Outcome(order.advance(order.status, self.now_ms(), reason=reason))

    async def _known(self, user_id: str, client_order_ids: list[str]) -> dict[str, Order]:
        """Orders already recorded for these ids: the hot state first, the journal for the rest."""
        try:
            known = await self.state.get_many(user_id, client_order_ids)
        except OrderStateUnavailableError as error:
            self._state_failed(error)
            known = {}
        missing = [cid for cid in client_order_ids if cid not in known]
        if missing:
            known |= await self.batcher.get_many(missing)
        return known

    async def _record(self, orders: Sequence[Order], fills: Sequence[Fill] = ()) -> None:
        """Journal first (fills before orders: an order never claims fills the journal lacks), then
        the hot state."""
        await self.batcher.write(orders, fills)  # one transaction with other orders' writes
        if not orders:
            return
        try:
            await self.state.put(orders)
        except OrderStateUnavailableError as error:
            self._state_failed(error)

    def _state_failed(self, error: OrderStateUnavailableError) -> None:
        self.stats.state_errors += 1
        self.state_stale = True
        log.warning("order state unavailable, going on with the journal: %s", error.problem)


def _acknowledged_only(outcome: Outcome) -> bool:
    order = outcome.order
    return (order.status is OrderStatus.SUBMITTED and order.exchange_order_id is not None
            and not outcome.fills and not outcome.account_error)


async def _all(steps: Iterable[Awaitable[Outcome]]) -> list[Outcome | BaseException]:
    """`asyncio.gather(..., return_exceptions=True)`, but a lone step (a user's one order of a bar:
    the common case) is awaited in place, without a task and a gathering future of its own."""
    pending = list(steps)
    if len(pending) != 1:
        return list(await asyncio.gather(*pending, return_exceptions=True))
    try:
        return [await pending[0]]
    except Exception as error:  # as gather would return it; cancellation and the like propagate
        return [error]
