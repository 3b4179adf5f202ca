"""MEXC's signed spot v3 endpoints: wallet, account, orders and the account's trades."""

from __future__ import annotations

import re

from xray_sim.exchange import apierror, shapes, transfers
from xray_sim.exchange.endpoints import Context, Endpoint
from xray_sim.exchange.order_rules import OrderRequest
from xray_sim.exchange.orders import Order, OrderType, Side
from xray_sim.exchange.universe import MarketSpec

_CLIENT_ORDER_ID = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")


def capital_config(ctx: Context) -> object:
    """Coins and networks (ccxt's fetch_currencies, called by load_markets when keys are set)."""
    return ctx.state.coins()


def account(ctx: Context) -> object:
    return shapes.account(ctx.user)


def _order_request(ctx: Context, spec: MarketSpec) -> OrderRequest:
    side_text = ctx.params.required("side").upper()
    type_text = ctx.params.required("type").upper()
    if side_text not in Side.__members__:
        raise apierror.illegal_param("side")
    if type_text not in OrderType.__members__:
        raise apierror.illegal_param("type")
    order_type = OrderType(type_text)
    client_order_id = ctx.params.text("newClientOrderId")
    if client_order_id is not None and not _CLIENT_ORDER_ID.match(client_order_id):
        raise apierror.illegal_param("newClientOrderId")
    return OrderRequest(
        market_id=spec.market_id, side=Side(side_text), type=order_type,
        quantity=ctx.params.decimal("quantity"), quote_qty=ctx.params.decimal("quoteOrderQty"),
        # A market order has no price; ccxt may still send one alongside quoteOrderQty.
        price=None if order_type is OrderType.MARKET else ctx.params.decimal("price"),
        client_order_id=client_order_id,
    )


def new_order(ctx: Context) -> object:
    spec = ctx.spec()
    request = _order_request(ctx, spec)
    order = ctx.state.engine.place(ctx.user.key, request, ctx.now_ms, partial_ratio=ctx.partial_ratio)
    assert order is not None  # only test orders come back empty
    return shapes.order_ack(order)


def test_order(ctx: Context) -> object:
    spec = ctx.spec()
    ctx.state.engine.place(ctx.user.key, _order_request(ctx, spec), ctx.now_ms, test=True)
    return {}


def _find(ctx: Context, spec: MarketSpec) -> Order | None:
    return ctx.state.engine.find(ctx.user.key, spec.market_id, ctx.params.text("orderId"),
                                 ctx.params.text("origClientOrderId"))


def query_order(ctx: Context) -> object:
    order = _find(ctx, ctx.spec())
    if order is None:
        raise apierror.order_not_found()
    return shapes.order(order)


def cancel_order(ctx: Context) -> object:
    spec = ctx.spec()
    order = ctx.state.engine.cancel(ctx.user.key, spec.market_id, ctx.params.text("orderId"),
                                    ctx.params.text("origClientOrderId"), ctx.now_ms)
    return shapes.cancelled_order(order)


def open_orders(ctx: Context) -> object:
    spec = ctx.spec()
    return [shapes.order(o) for o in ctx.state.engine.open_orders(ctx.user.key, spec.market_id)]


def cancel_open_orders(ctx: Context) -> object:
    spec = ctx.spec()
    cancelled = ctx.state.engine.cancel_all(ctx.user.key, spec.market_id, ctx.now_ms)
    return [shapes.cancelled_order(o) for o in cancelled]


def all_orders(ctx: Context) -> object:
    spec = ctx.spec()
    orders = ctx.state.engine.orders(ctx.user.key, spec.market_id, ctx.params.integer("startTime"),
                                     ctx.params.integer("endTime"), ctx.params.limit(500, 1000))
    return [shapes.order(o) for o in orders]


def my_trades(ctx: Context) -> object:
    spec = ctx.spec()
    fills = ctx.state.engine.fills(ctx.user.key, spec.market_id, ctx.params.integer("startTime"),
                                   ctx.params.integer("endTime"), limit=None)
    order_id = ctx.params.text("orderId")
    if order_id is not None:
        fills = [f for f in fills if f.order_id == order_id]
    limit = ctx.params.limit(100, 100)
    fills = fills[:limit] if ctx.params.has("startTime") else fills[-limit:]
    return [shapes.my_trade(f) for f in fills]


def _history(ctx: Context, deposits: bool) -> list[transfers.SimTransfer]:
    limit = ctx.params.integer("limit", transfers.MAX_HISTORY_LIMIT)
    assert limit is not None
    if not 1 <= limit <= transfers.MAX_HISTORY_LIMIT:
        raise apierror.illegal_param("limit")
    return transfers.history(ctx.user, deposits, ctx.params.text("coin"), ctx.params.integer("startTime"),
                             ctx.params.integer("endTime"), limit)


def deposit_history(ctx: Context) -> object:
    return [transfers.deposit_shape(t) for t in _history(ctx, deposits=True)]


def withdraw_history(ctx: Context) -> object:
    return [transfers.withdrawal_shape(t) for t in _history(ctx, deposits=False)]


PRIVATE_ENDPOINTS = (
    Endpoint("GET", "/api/v3/capital/config/getall", capital_config, private=True),
    Endpoint("GET", "/api/v3/account", account, private=True),
    Endpoint("GET", "/api/v3/capital/deposit/hisrec", deposit_history, private=True),
    Endpoint("GET", "/api/v3/capital/withdraw/history", withdraw_history, private=True),
    Endpoint("POST", "/api/v3/order", new_order, private=True),
    Endpoint("POST", "/api/v3/order/test", test_order, private=True),
    Endpoint("GET", "/api/v3/order", query_order, private=True),
    Endpoint("DELETE", "/api/v3/order", cancel_order, private=True),
    Endpoint("GET", "/api/v3/openOrders", open_orders, private=True),
    Endpoint("DELETE", "/api/v3/openOrders", cancel_open_orders, private=True),
    Endpoint("GET", "/api/v3/allOrders", all_orders, private=True),
    Endpoint("GET", "/api/v3/myTrades", my_trades, private=True),
)
