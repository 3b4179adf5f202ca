"""Asking the exchange about one order, and folding its answer into the local order: shared by the
executor (after an ambiguous send) and by reconciliation.

Everything here reads; nothing sends an order. The exchange is the truth: an order found by client
order id is adopted (status, filled, average, exchange id) and its trades become `Fill`s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import ccxt

from xray_core.trading.orders import Fill, IllegalTransitionError, Order, OrderStatus, Side, status_from_ccxt

# MEXC answers a query for an order it does not have with code -2013, which ccxt raises as a plain
# ExchangeError; other exchanges raise OrderNotFound.
_MEXC_NO_SUCH_ORDER = "-2013"

# Refusals that say the order can never succeed as sent: it is REJECTED with the exchange's reason.
REJECTIONS: tuple[type[Exception], ...] = (ccxt.InsufficientFunds, ccxt.InvalidOrder, ccxt.BadRequest)
# Refusals of the API key itself: the whole account is unusable until the user fixes it.
ACCOUNT_REFUSALS: tuple[type[Exception], ...] = (ccxt.AuthenticationError,)
# Refused before processing, for too many requests: nothing was placed; back off and try again.
RATE_LIMITED: tuple[type[Exception], ...] = (ccxt.RateLimitExceeded, ccxt.DDoSProtection)


@dataclass(frozen=True, slots=True)
class Lookup:
    """What the exchange said about a client order id: `order` (found), `missing` (it has no such
    order) or, when neither, `error` (it could not be asked: the answer is unknown), with
    `rate_limited` (a 429) or `account` (the API key was refused) saying why."""

    order: dict[str, Any] | None = None
    missing: bool = False
    error: str = ""
    rate_limited: bool = False
    account: bool = False


@dataclass(slots=True)
class Adoption:
    """The local order after adopting the exchange's view, and the trades that came with it."""

    order: Order
    fills: list[Fill] = field(default_factory=list)
    note: str = ""  # set when the exchange's view could not be applied (a mismatch to report)


def describe(error: BaseException) -> str:
    """One line naming the error, without request URLs (which carry signatures) or secrets."""
    text = str(error).splitlines()[0] if str(error) else ""
    for marker in ("http://", "https://"):  # ccxt prefixes messages with 'mexc GET https://...'
        if marker in text:
            text = text.split(marker)[0].strip()
    return f"{type(error).__name__}: {text[:200]}".rstrip(": ")


def is_missing(error: BaseException) -> bool:
    return isinstance(error, ccxt.OrderNotFound) or (
        isinstance(error, ccxt.ExchangeError) and _MEXC_NO_SUCH_ORDER in str(error))


async def lookup(client: Any, order: Order) -> Lookup:
    """Ask the exchange for `order` by its client order id."""
    try:
        found = await client.fetch_order("", order.symbol, {"clientOrderId": order.client_order_id})
    except ccxt.BaseError as error:
        if is_missing(error):
            return Lookup(missing=True)
        return Lookup(error=describe(error), rate_limited=isinstance(error, RATE_LIMITED),
                      account=isinstance(error, ACCOUNT_REFUSALS))
    return Lookup(order=found)


async def adopt(client: Any, order: Order, exchange_order: dict[str, Any], now_ms: int) -> Adoption:
    """Apply the exchange's view of `order` and fetch its trades when it filled further than the
    local record says. A trade fetch that fails leaves `filled` as it was, so the next resolution
    (or reconciliation) fetches them again: a fill is never counted without its trades."""
    if order.status is OrderStatus.PENDING:  # a stale copy: the order was sent, or it would not exist
        order = order.advance(OrderStatus.SUBMITTED, now_ms)
    status = status_from_ccxt(exchange_order)
    filled = float(exchange_order.get("filled") or 0.0)
    average = exchange_order.get("average")
    exchange_id = str(exchange_order.get("id") or "") or None
    fills: list[Fill] = []
    if filled > order.filled + 1e-12:
        try:
            fills = await order_fills(client, order, exchange_id)
        except ccxt.BaseError as error:
            keep = order.advance(order.status, now_ms, exchange_order_id=exchange_id)
            return Adoption(keep, [], f"trades not fetched: {describe(error)}")
    try:
        adopted = order.advance(status, now_ms, filled=filled,
                                average=float(average) if average is not None else None,
                                exchange_order_id=exchange_id)
    except IllegalTransitionError as error:
        return Adoption(order, fills, error.problem)
    return Adoption(adopted, fills)


async def order_fills(client: Any, order: Order, exchange_id: str | None) -> list[Fill]:
    """Every trade of one order (MEXC's myTrades filters by orderId)."""
    params = {"orderId": exchange_id} if exchange_id else {}
    trades = await client.fetch_my_trades(order.symbol, None, None, params)
    return [trade_to_fill(trade, order.user_id, order.client_order_id) for trade in trades
            if exchange_id is None or str(trade.get("order")) == exchange_id]


def trade_to_fill(trade: dict[str, Any], user_id: str, client_order_id: str | None = None) -> Fill:
    """A ccxt unified trade as a `Fill`; the client order id comes from the caller or the raw trade."""
    fee = trade.get("fee") or {}
    info = trade.get("info") or {}
    cid = client_order_id or trade.get("clientOrderId") or info.get("clientOrderId") or ""
    return Fill(
        trade_id=str(trade["id"]), client_order_id=str(cid), user_id=user_id, symbol=trade["symbol"],
        side=Side(trade["side"]), amount=float(trade["amount"]), price=float(trade["price"]),
        fee=float(fee.get("cost") or 0.0), fee_currency=str(fee.get("currency") or ""),
        timestamp_ms=int(trade["timestamp"]),
    )


def rejected(order: Order, now_ms: int, reason: str) -> Order:
    """`order` REJECTED with `reason` (from PENDING or SUBMITTED: the exchange never took it)."""
    return order.advance(OrderStatus.REJECTED, now_ms, reason=reason)
