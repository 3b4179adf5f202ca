"""Sending one order, and settling what an earlier send of it may have done: the per-order half of the
executor (`xray_runtime.execution`, whose module docstring states the rules; `Executor` is an
`OrderSender`). Every method here works on one order of one user through its `Target`.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence

from xray_core.exchange.protocol import (
    VenueAuthError,
    VenueBannedError,
    VenueClient,
    VenueDuplicateOrderError,
    VenueError,
    VenueNotProcessedError,
    VenueRateLimitedError,
    VenueRejectedError,
)
from xray_core.exchange.reports import OrderReport
from xray_core.trading.orders import Fill, Order, OrderStatus
from xray_runtime.exchange_orders import Lookup, adopt, lookup, rejected
from xray_runtime.execution_types import NOT_RESENT, ExecutorStats, Fence, Outcome, SendLedger, Slots, Target
from xray_runtime.halts import Halt, Halts

log = logging.getLogger("xray_runtime.execution")
# Trades adding up to the amount sent, to within float rounding of the amounts: the order is filled.
FILLED_TOLERANCE = 1e-9


class OrderSender:
    """What the executor does for one order. The executor sets these attributes (see its __init__)."""

    now_ms: Callable[[], int]
    max_attempts: int
    backoff_s: float
    backoff_max_s: float
    rate_limit_backoff_s: float
    clock_skew_ms: int
    sign_deadline_ms: int
    max_wait_ms: int
    resend_within_ms: int
    halts: Halts
    fence: Fence | None
    stats: ExecutorStats
    _slots: Slots
    _sends: SendLedger
    _observe_ack_s: Callable[[float], None] | None

    async def _record(self, orders: Sequence[Order], fills: Sequence[Fill] = ()) -> None:
        raise NotImplementedError  # the executor's: journal first, then the hot state

    async def _send(self, target: Target, order: Order, attempts: int | None = None,
                    wait: bool = True, read_back: bool = True) -> Outcome:
        """Send `order` (or settle an earlier send of it) within `attempts` (default `max_attempts`);
        without `wait`, an earlier send that may still act ends the attempt instead of being waited out;
        without `read_back`, an acknowledged order is returned as acknowledged (`_acknowledged`) and
        what it did is read later (`_read_back`)."""
        venue, cid = target.venue, order.client_order_id
        rate_limited, last = False, order.reason
        attempts = self.max_attempts if attempts is None else attempts
        for attempt in range(attempts + 1):
            if attempt:
                await self._slots.idle(self._pause(attempt, rate_limited))
            rate_limited = False
            halt = self.halts.active(target.scopes)
            if halt is not None:
                return self._held(order, halt)
            if self._sends.may_act(cid):  # an earlier send may have reached the venue
                settled = await self._settle_earlier_sends(target, order, self.max_wait_ms if wait else 0)
                if isinstance(settled, Outcome):
                    return settled
                if settled is not None:  # the venue could not be asked: try again after a pause
                    last, rate_limited = settled.error, settled.rate_limited
                    continue
            if attempt == attempts:
                break  # the last round only asks
            if attempt:
                self.stats.retried += 1
            if self.now_ms() - order.updated_ms > self.sign_deadline_ms // 2:  # re-date it in the journal
                order = order.advance(order.status, self.now_ms())
                await self._record([order])
            if self.fence is not None and (refusal := await self.fence.admit(order)):  # xray_runtime.fencing
                return Outcome(order.advance(order.status, self.now_ms(), reason=refusal))
            try:
                self.stats.sent += 1
                sent_at = time.perf_counter()
                ack = await venue.create_order(order.symbol, order.side, order.amount, cid,
                                               sign_by_ms=order.updated_ms + self.sign_deadline_ms)
                if self._observe_ack_s is not None:
                    self._observe_ack_s(time.perf_counter() - sent_at)
            except VenueNotProcessedError as error:  # 429, stale timestamp: refused, nothing placed
                if isinstance(error, VenueRateLimitedError):
                    self.stats.rate_limited += 1
                    rate_limited = True
                last = error.reason
            except VenueAuthError as error:
                return self._refused(order, error.reason, self._sends.may_act(cid))
            except VenueDuplicateOrderError as error:  # an order under this id exists: ask for it
                self._sent(target, cid)
                last = error.reason
            except VenueRejectedError as error:
                return await self._rejected(venue, order, error.reason)
            except VenueBannedError as error:  # the ban may have cut the request short: it may exist
                self._sent(target, cid)
                return self._held(order, self._ban(target, error))
            except VenueError as error:  # timeout, dropped connection, 5xx, garbled answer: it may exist
                self._sent(target, cid)
                last = error.reason
            else:
                if read_back or ack.exchange_order_id is None:
                    return await self._confirmed(venue, order, ack.exchange_order_id)
                return self._acknowledged(order, ack.exchange_order_id)
        self.stats.unresolved += 1
        reason = f"unresolved after {attempts} attempts ({last}); asked again on the next bar"
        log.warning("order %s unresolved: %s", cid, last)
        return Outcome(order.advance(order.status, self.now_ms(), reason=reason))

    async def _settle_earlier_sends(self, target: Target, order: Order,
                                    max_wait_ms: int) -> Outcome | Lookup | None:
        """After a send that may have reached the venue: the order adopted (or the outcome that ends
        the attempt), a Lookup that could not ask (try later), or None: every earlier send is dead
        and the venue does not have the order — it may be sent again."""
        venue, cid = target.venue, order.client_order_id
        for _ in range(2):  # once at once (adopt what arrived), once after the earlier sends expired
            found = await lookup(venue, order)
            if found.order is not None:
                self.stats.adopted += 1
                return await self._adopted(venue, order, found.order)
            if found.account:
                return self._refused(order, found.error, True)
            if found.banned is not None:
                return self._held(order, self._ban(target, found.banned))
            if not found.missing:
                return found
            live_until = self._sends.live_until(cid)
            if live_until == SendLedger.ON_VENUE or not venue.traits.deduplicates_client_order_ids:
                self.stats.unresolved += 1  # "missing" is a lagging read, or may be one
                acked = live_until == SendLedger.ON_VENUE
                reason = "acknowledged, now not found: not sent again" if acked else NOT_RESENT
                return Outcome(order.advance(order.status, self.now_ms(), reason=reason))
            wait_ms = live_until - self.now_ms()
            if wait_ms <= 0:
                self._sends.not_sent(cid)  # confirmed missing with no send left that could still act
                return None
            if wait_ms > max_wait_ms:
                reason = f"not on the exchange yet; an earlier send may act until {live_until} ms"
                return Outcome(order.advance(order.status, self.now_ms(), reason=reason))
            self.stats.waited_out += 1
            await self._slots.idle(wait_ms / 1000)
        return Lookup(error="the venue answered inconsistently")  # not reached: the wait above expired

    async def _confirmed(self, venue: VenueClient, order: Order, exchange_id: str | None) -> Outcome:
        """Accepted: read its state (an acknowledgement may carry no status or fills; MEXC's does
        not). Without an exchange id in the answer, the order is read by its client id."""
        self._sends.on_venue(order.client_order_id)  # the venue has it: never sent again
        try:
            if exchange_id is None:
                found = await venue.fetch_order_by_client_id(order.client_order_id, order.symbol)
            else:
                found = await venue.fetch_order(exchange_id, order.symbol)
        except VenueError as error:
            reason = f"accepted; state not read yet ({error.reason})"
            return Outcome(order.advance(order.status, self.now_ms(), exchange_order_id=exchange_id,
                                          reason=reason))
        return await self._adopted(venue, order, found)

    def _acknowledged(self, order: Order, exchange_id: str) -> Outcome:
        """Accepted, and not read yet: SUBMITTED with the venue's id (never sent again; read back by
        `_read_back` once every order of the bar is out)."""
        self._sends.on_venue(order.client_order_id)
        return Outcome(order.advance(order.status, self.now_ms(), exchange_order_id=exchange_id))

    async def _read_back(self, target: Target, order: Order) -> Outcome:
        """What an acknowledged order did. Where the venue lists one order's trades, that is one
        request: trades covering the amount mean FILLED (a market order's usual end), at their
        volume-weighted price. Otherwise (no trades yet, a partial fill, no such filter) the order
        itself is read and its trades fetched as after any lookup (`_confirmed`)."""
        venue, exchange_id = target.venue, order.exchange_order_id
        assert exchange_id is not None, "only acknowledged orders are read back"
        if self.halts.active(target.scopes) is not None:
            return Outcome(order)  # banned meanwhile: read when the ban lifts (follow, reconciliation)
        if venue.traits.trades_order_filter_param:
            try:
                trades = await venue.fetch_order_trades(order.symbol, exchange_id)
            except VenueError:
                trades = []  # read the order instead: it says whether it filled
            filled = sum(trade.amount for trade in trades)
            if trades and filled >= order.amount * (1 - FILLED_TOLERANCE):
                average = sum(trade.amount * trade.price for trade in trades) / filled
                self.stats.read_back_by_trades += 1
                fills = [trade.to_fill(order.user_id, order.client_order_id) for trade in trades]
                return Outcome(order.advance(OrderStatus.FILLED, self.now_ms(), filled=filled,
                                             average=average), fills)
        return await self._confirmed(venue, order, exchange_id)

    async def _adopted(self, venue: VenueClient, order: Order, report: OrderReport) -> Outcome:
        self._sends.on_venue(order.client_order_id)
        adoption = await adopt(venue, order, report, self.now_ms())
        if adoption.note:
            log.warning("order %s: %s", order.client_order_id, adoption.note)
        return Outcome(adoption.order, adoption.fills)

    async def _rejected(self, venue: VenueClient, order: Order, reason: str) -> Outcome:
        if self._sends.may_act(order.client_order_id):  # e.g. funds short because an earlier send did
            found = await lookup(venue, order)           # buy: adopt that one
            if found.order is not None:
                self.stats.adopted += 1
                return await self._adopted(venue, order, found.order)
            if not found.missing:
                return Outcome(order.advance(order.status, self.now_ms(), reason=f"{reason}; {found.error}"))
        self.stats.rejected += 1
        return Outcome(rejected(order, self.now_ms(), reason))

    def _refused(self, order: Order, reason: str, maybe_placed: bool) -> Outcome:
        """The API key was refused. Without an earlier ambiguous attempt nothing was placed; with
        one, the order's fate is unknown until the user's key works again."""
        if maybe_placed:
            return Outcome(order.advance(order.status, self.now_ms(), reason=f"API key refused: {reason}"),
                            account_error=reason)
        self.stats.rejected += 1
        return Outcome(rejected(order, self.now_ms(), f"API key refused: {reason}"), account_error=reason)

    def _resendable(self, target: Target, order: Order) -> bool:
        """Whether an earlier bar's order may be sent again (under `_send`'s rule): never acknowledged,
        to a venue that deduplicates, and decided recently (`resend_within_ms` of its last write)."""
        if order.exchange_order_id or order.status is not OrderStatus.SUBMITTED:
            return False
        if not target.venue.traits.deduplicates_client_order_ids:
            return False
        if not self._sends.known(order.client_order_id):
            if self.now_ms() - order.updated_ms > self.resend_within_ms:
                return False  # an old decision: reconciliation's to settle, not to send late
            self._date_from_journal(target, order)
        return True

    def _date_from_journal(self, target: Target, order: Order) -> None:
        """An order not sent by this process (or sent before a restart): every send of it was signed
        by the deadline after its last journal write, so it is dead a recvWindow and the skew later."""
        ttl = self.sign_deadline_ms + target.venue.request_ttl_ms + self.clock_skew_ms
        self._sends.date_unknown(order.client_order_id, order.updated_ms + ttl)

    def _held(self, order: Order, halt: Halt) -> Outcome:
        self.stats.halted += 1
        reason = f"not sent or asked: {halt.reason}"
        return Outcome(order.advance(order.status, self.now_ms(), reason=reason))

    def _ban(self, target: Target, error: VenueBannedError) -> Halt:
        return self.halts.halt(target.scopes, error.scope, error.retry_after_s, error.reason)

    def _sent(self, target: Target, cid: str) -> None:
        """A send of `cid` ended without a usable answer now: it may act at the venue until its signed
        timestamp (at most now) plus the client's recvWindow plus the clock skew."""
        self._sends.sent(cid, self.now_ms() + target.venue.request_ttl_ms + self.clock_skew_ms)

    # ---- plumbing ----------------------------------------------------------------------------------
    def _pause(self, attempt: int, rate_limited: bool) -> float:
        base = self.rate_limit_backoff_s if rate_limited else self.backoff_s
        return min(base * 2 ** (attempt - 1), self.backoff_max_s) * (0.5 + random.random())
