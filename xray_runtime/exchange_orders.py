"""Asking the venue about one order, and folding its answer into the local order: shared by the
executor (after an ambiguous send) and by reconciliation.

Everything here reads; nothing sends an order. The venue is the truth: an order found by client
order id is adopted (status, filled, average, exchange id) and its trades become `Fill`s.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xray_core.exchange.protocol import (
    VenueAuthError,
    VenueBannedError,
    VenueClient,
    VenueError,
    VenueOrderNotFoundError,
    VenueRateLimitedError,
)
from xray_core.exchange.reports import OrderReport
from xray_core.trading.orders import Fill, IllegalTransitionError, Order, OrderStatus


@dataclass(frozen=True, slots=True)
class Lookup:
    """What the venue said about a client order id: `order` (found), `missing` (it has no such
    order) or, when neither, `error` (it could not be asked: the answer is unknown), with
    `rate_limited` (a 429), `account` (the API key was refused) or `banned` (a 418) saying why."""

    order: OrderReport | None = None
    missing: bool = False
    error: str = ""
    rate_limited: bool = False
    account: bool = False
    banned: VenueBannedError | None = None


@dataclass(slots=True)
class Adoption:
    """The local order after adopting the venue's view, and the trades that came with it."""

    order: Order
    fills: list[Fill] = field(default_factory=list)
    note: str = ""  # set when the venue's view could not be applied (a mismatch to report)


async def lookup(venue: VenueClient, order: Order) -> Lookup:
    """Ask the venue for `order` by its client order id."""
    try:
        found = await venue.fetch_order_by_client_id(order.client_order_id, order.symbol)
    except VenueOrderNotFoundError:
        return Lookup(missing=True)
    except VenueError as error:
        return Lookup(error=error.reason, rate_limited=isinstance(error, VenueRateLimitedError),
                      account=isinstance(error, VenueAuthError),
                      banned=error if isinstance(error, VenueBannedError) else None)
    return Lookup(order=found)


async def adopt(venue: VenueClient, order: Order, report: OrderReport, now_ms: int) -> Adoption:
    """Apply the venue's view of `order` and fetch its trades when it filled further than the local
    record says. A trade fetch that fails leaves `filled` as it was, so the next resolution (or
    reconciliation) fetches them again: a fill is never counted without its trades."""
    if order.status is OrderStatus.PENDING:  # a stale copy: the order was sent, or it would not exist
        order = order.advance(OrderStatus.SUBMITTED, now_ms)
    exchange_id = report.exchange_order_id
    fills: list[Fill] = []
    if report.filled > order.filled + 1e-12:
        if exchange_id is None:  # its trades cannot be told from the others' on the symbol
            return Adoption(order, [], "trades not fetched: the venue named no exchange order id")
        try:
            trades = await venue.fetch_order_trades(order.symbol, exchange_id)
        except VenueError as error:
            keep = order.advance(order.status, now_ms, exchange_order_id=exchange_id)
            return Adoption(keep, [], f"trades not fetched: {error.reason}")
        fills = [trade.to_fill(order.user_id, order.client_order_id) for trade in trades]
    try:
        adopted = order.advance(report.status, now_ms, filled=report.filled, average=report.average,
                                exchange_order_id=exchange_id)
    except IllegalTransitionError as error:
        return Adoption(order, fills, error.problem)
    return Adoption(adopted, fills)


def rejected(order: Order, now_ms: int, reason: str) -> Order:
    """`order` REJECTED with `reason` (from PENDING or SUBMITTED: the venue never took it)."""
    return order.advance(OrderStatus.REJECTED, now_ms, reason=reason)
