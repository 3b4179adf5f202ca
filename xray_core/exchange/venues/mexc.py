"""MEXC spot (API v3): every way it differs from a generic ccxt venue, in one place.

Sources: MEXC's spot v3 API documentation (limits, error codes, order parameters) and ccxt's
`mexc` class (its costs, its exception map). The emulator (`xray_sim/exchange`) imitates the same
behaviour, so the values here are what the tests exercise.
"""

from __future__ import annotations

from xray_core.exchange.venues.traits import RateLimits, VenueTraits
from xray_core.trading.orders import OrderStatus

MEXC = VenueTraits(
    exchange_id="mexc",
    # newClientOrderId: at most 32 characters (our ids are "x" + 31 hex digits).
    max_client_order_id_length=32,
    # A second POST /order with a newClientOrderId MEXC already has returns that order.
    deduplicates_client_order_ids=True,
    # -2013 "Order does not exist." answers a query, -2011 "Unknown order sent." a cancel; ccxt
    # raises them as ExchangeError and BadRequest, not OrderNotFound.
    no_such_order_codes=("-2013", "-2011"),
    # GET /api/v3/myTrades returns at most 100 trades per request.
    trades_page_limit=100,
    # ... and filters by `orderId`.
    trades_order_filter_param="orderId",
    # recvWindow may be at most 60 s (ccxt sends 5 s): a signed request is refused after that.
    max_recv_window_ms=60_000,
    api_hosts=("https://api.mexc.com", "https://www.mexc.com", "https://contract.mexc.com"),
    # MEXC runs no spot testnet: a paper user trades on the built-in paper broker or on loopback.
    sandbox_hosts=(),
    # MEXC documents no code for a repeated newClientOrderId; where it refuses one, Binance's API (which
    # MEXC's v3 follows) answers -2010 "Duplicate order sent.", and so does the emulator's reject mode.
    duplicate_order_codes=("-2010",),
    rate_limits=RateLimits(
        # 500 weight per 10 s per IP for public endpoints and per API key for private (signed) ones.
        window_s=10.0, ip_weight=500, key_weight=500, private_scopes=("key",), public_scopes=("ip",),
        # ccxt's costs equal MEXC's weights or exceed them (exchangeInfo 25 vs 10, depth 3 vs 1,
        # ticker/price 10 vs 1-2, ...), except the whole-market 24 h ticker: ccxt 25, MEXC 40.
        whole_market_weights=(("ticker/24hr", 40.0),),
    ),
)

# MEXC's own order states (GET /api/v3/order `status`), as the emulator's account record lists
# them; ccxt maps them for every other reader.
NATIVE_ORDER_STATUS: dict[str, OrderStatus] = {
    "NEW": OrderStatus.OPEN, "PARTIALLY_FILLED": OrderStatus.PARTIALLY_FILLED,
    "FILLED": OrderStatus.FILLED, "CANCELED": OrderStatus.CANCELED,
    "PARTIALLY_CANCELED": OrderStatus.CANCELED,
}
