"""MEXC's acceptance rules for a new spot order, and how much of what it reserves.

`plan_order` is pure: given the market's parameters and its current top of book it either raises the
ApiError MEXC would answer with, or returns a `Plan` that the matching engine carries out.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from xray_sim.exchange import apierror
from xray_sim.exchange.book import Quote
from xray_sim.exchange.decimals import floor_to, places, quantum
from xray_sim.exchange.orders import OrderType, Side
from xray_sim.exchange.universe import MarketSpec

MAX_QUOTE_AMOUNT = Decimal(2_000_000)  # MEXC's maxQuoteAmount for USDT markets
# Commissions keep four more decimals than the asset's trading precision, so that the fee of a small
# order stays proportional instead of being rounded up to a whole lot (exchangeInfo advertises it as
# baseCommissionPrecision / quoteCommissionPrecision).
COMMISSION_EXTRA_DECIMALS = 4


def base_commission_decimals(spec: MarketSpec) -> int:
    return spec.amount_decimals + COMMISSION_EXTRA_DECIMALS


def quote_commission_decimals(spec: MarketSpec) -> int:
    return spec.price_decimals + COMMISSION_EXTRA_DECIMALS


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """A new order as the client sent it (quantities as Decimals, not yet validated)."""

    market_id: str
    side: Side
    type: OrderType
    quantity: Decimal | None = None
    quote_qty: Decimal | None = None
    price: Decimal | None = None
    client_order_id: str | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    """What an accepted order does now: its size, whether it trades at once and what it reserves."""

    qty: Decimal  # base quantity of the order
    marketable: bool  # trades on arrival (market orders always; limits that cross the spread)
    fill_price: Decimal  # price of an immediate fill: the ask for buys, the bid for sells
    lock_asset: str
    lock_amount: Decimal


def plan_order(spec: MarketSpec, request: OrderRequest, quote: Quote) -> Plan:
    """Validate `request` like MEXC does and work out its immediate effect."""
    _check_values(spec, request)
    is_buy = request.side is Side.BUY
    fill_price = quote.ask if is_buy else quote.bid
    if request.type is OrderType.MARKET:
        qty = request.quantity
        if qty is None:  # sized by cost: as much as quoteOrderQty buys (or raises) at the touch
            assert request.quote_qty is not None  # _check_values guarantees one of the two
            _check_cost(spec, request.quote_qty)
            qty = floor_to(request.quote_qty / fill_price, spec.amount_decimals)
        marketable, limit = True, fill_price
    else:
        assert request.price is not None and request.quantity is not None
        qty, limit = request.quantity, request.price
        marketable = limit >= quote.ask if is_buy else limit <= quote.bid
        if marketable and request.type is OrderType.LIMIT_MAKER:
            raise apierror.would_take()
    _check_size(spec, qty, qty * limit)
    if not is_buy:
        return Plan(qty, marketable, fill_price, spec.base, qty)
    if request.type is OrderType.MARKET and request.quantity is None:
        assert request.quote_qty is not None
        return Plan(qty, marketable, fill_price, spec.quote, request.quote_qty)
    return Plan(qty, marketable, fill_price, spec.quote, qty * limit)


def _check_values(spec: MarketSpec, request: OrderRequest) -> None:
    """Presence, sign and precision of quantity, quoteOrderQty and price for the order type."""
    if request.type is OrderType.MARKET:
        if request.quantity is None and request.quote_qty is None:
            raise apierror.bad_combination("A MARKET order needs quantity or quoteOrderQty.")
    else:
        if request.quantity is None:
            raise apierror.missing_param("quantity")
        if request.price is None:
            raise apierror.missing_param("price")
    for name, value, decimals in (("quantity", request.quantity, spec.amount_decimals),
                                  ("quoteOrderQty", request.quote_qty, spec.price_decimals),
                                  ("price", request.price, spec.price_decimals)):
        if value is None:
            continue
        if value <= 0:
            raise apierror.not_positive(name)
        if places(value) > decimals:
            raise apierror.too_many_decimals(name, decimals)


def _check_cost(spec: MarketSpec, cost: Decimal) -> None:
    if cost < Decimal(spec.min_quote):
        raise apierror.below_minimum("volume", f"{spec.min_quote}{spec.quote}")
    if cost > MAX_QUOTE_AMOUNT:
        raise apierror.above_maximum(f"{MAX_QUOTE_AMOUNT}{spec.quote}")


def _check_size(spec: MarketSpec, qty: Decimal, cost: Decimal) -> None:
    lot = quantum(spec.amount_decimals)
    if qty < lot:
        raise apierror.below_minimum("amount", f"{lot}{spec.base}")
    _check_cost(spec, cost)
