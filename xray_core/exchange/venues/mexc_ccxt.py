"""MEXC market orders through stock ccxt without `createOrder`'s unified wrapping.

`ccxt.mexc.create_order` builds the request with `create_spot_order_request`, sends it with the
signed `spotPrivatePostOrder` endpoint, and then turns MEXC's answer into a unified order. The
answer to a new order carries no state and no fills (`{"symbol", "orderId", "orderListId", "price",
"origQty", "type", "side", "transactTime"}`: the captures in ../shared/data/mexc_api), so that last
step, with the margin-mode and option handling before it, is about a quarter of ccxt's CPU time
per order (0.52 against 0.38 ms, measured on the emulator) and tells nothing. Here the same two
ccxt calls build and send the request (same signing, throttle, error mapping and precision
rounding) and the acknowledgement is read directly.
"""

from __future__ import annotations

from typing import Any

from xray_core.exchange.protocol import MalformedReportError
from xray_core.exchange.reports import OrderReport
from xray_core.trading.orders import OrderStatus, Side


async def place_market_order(exchange: Any, symbol: str, side: Side, amount: float,
                             client_order_id: str) -> OrderReport:
    """A market order of `amount` base units on a ccxt `mexc` client; its acknowledgement."""
    await exchange.load_markets()  # once per client (a pooled one shares its template's)
    market = exchange.market(symbol)  # BadSymbol (a refusal) for a symbol the markets lack
    request = exchange.create_spot_order_request(market, "market", side.value, amount, None, None,
                                                 {"clientOrderId": client_order_id})
    raw = await exchange.spotPrivatePostOrder(request)
    return acknowledgement(raw, symbol, side, client_order_id)


def acknowledgement(raw: object, symbol: str, side: Side, client_order_id: str) -> OrderReport:
    """MEXC's answer to POST /api/v3/order as a report: SUBMITTED, nothing filled yet."""
    context = f"mexc create_order {symbol}"
    if not isinstance(raw, dict):
        raise MalformedReportError(f"{context}: expected an object, got {type(raw).__name__}")
    order_id = raw.get("orderId")
    if not isinstance(order_id, str | int) or isinstance(order_id, bool) or str(order_id) == "":
        raise MalformedReportError(f"{context}: the answer names no orderId ({str(raw)[:200]})")
    return OrderReport(
        exchange_order_id=str(order_id), client_order_id=client_order_id, symbol=symbol, side=side,
        status=OrderStatus.SUBMITTED, amount=_number(raw.get("origQty")), filled=0.0, average=None,
        timestamp_ms=_integer(raw.get("transactTime")),
    )


def _number(value: object) -> float | None:
    try:
        return float(value) if value is not None and not isinstance(value, bool) else None  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _integer(value: object) -> int | None:
    number = _number(value)
    return int(number) if number is not None else None
