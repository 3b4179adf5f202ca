"""MEXC spot v3 JSON, field for field as the exchange writes it.

Shapes follow the recorded MEXC traffic in ccxt's static test data (response_mexc.json,
markets_mexc_raw_info.json): numbers that MEXC writes as strings are strings here, formatted with the
market's decimals and without float noise; times are strings where MEXC's are (ticker, order ack,
trades) and integers where MEXC's are (kline open/close times, serverTime).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from xray_core.candles.bars import Bars
from xray_sim.exchange.accounts import Account
from xray_sim.exchange.book import DayStats, Level, PublicTrade, Quote
from xray_sim.exchange.decimals import fmt_decimal, fmt_float, quantum
from xray_sim.exchange.order_rules import (
    MAX_QUOTE_AMOUNT,
    base_commission_decimals,
    quote_commission_decimals,
)
from xray_sim.exchange.orders import Fill, Order, OrderType, Side
from xray_sim.exchange.universe import MarketSpec

Json = dict[str, object]
ORDER_TYPES = [OrderType.LIMIT.value, OrderType.MARKET.value, OrderType.LIMIT_MAKER.value]
MEXC_INTERVALS = {"1m": "1m", "5m": "5m", "15m": "15m", "30m": "30m", "60m": "1h", "4h": "4h", "1d": "1d",
                  "1W": "1w", "1M": "1M"}  # MEXC's kline interval names -> unified timeframes


def exchange_info_symbol(spec: MarketSpec, trading: bool) -> Json:
    """One `symbols[]` entry of /api/v3/exchangeInfo. status "1" is enabled, "2" paused (halted)."""
    amount, price = str(spec.amount_decimals), str(spec.price_decimals)
    base_fee, quote_fee = str(base_commission_decimals(spec)), str(quote_commission_decimals(spec))
    max_quote = fmt_decimal(MAX_QUOTE_AMOUNT)
    return {
        "symbol": spec.market_id, "status": "1" if trading else "2",
        "baseAsset": spec.base, "baseAssetPrecision": amount,
        "quoteAsset": spec.quote, "quotePrecision": price, "quoteAssetPrecision": price,
        "baseCommissionPrecision": base_fee, "quoteCommissionPrecision": quote_fee,
        "orderTypes": ORDER_TYPES, "isSpotTradingAllowed": trading, "isMarginTradingAllowed": False,
        "quoteAmountPrecision": spec.min_quote,
        "baseSizePrecision": fmt_decimal(quantum(spec.amount_decimals)),
        "permissions": ["SPOT"], "filters": [], "maxQuoteAmount": max_quote,
        "makerCommission": spec.maker_fee, "takerCommission": spec.taker_fee,
        "quoteAmountPrecisionMarket": spec.min_quote, "maxQuoteAmountMarket": max_quote,
        "fullName": spec.full_name or spec.base, "tradeSideType": "1", "st": False,
    }


def exchange_info(symbols: list[Json], server_time_ms: int) -> Json:
    return {"timezone": "CST", "serverTime": server_time_ms, "rateLimits": [], "exchangeFilters": [],
            "symbols": symbols}


def klines(spec: MarketSpec, bars: Bars, step_ms: int) -> list[list[object]]:
    """[openTime, open, high, low, close, volume, closeTime, quoteVolume]; closeTime = open + step.
    Quote volume is the volume at the bar's average of open, high, low and close."""
    pd, ad = spec.price_decimals, spec.amount_decimals
    typical = (bars.open + bars.high + bars.low + bars.close) / 4 * bars.volume
    return [
        [t, fmt_float(o, pd), fmt_float(h, pd), fmt_float(lo, pd), fmt_float(c, pd), fmt_float(v, ad),
         t + step_ms, fmt_float(q, pd)]
        for t, o, h, lo, c, v, q in zip(bars.timestamp.tolist(), bars.open.tolist(), bars.high.tolist(),
                                        bars.low.tolist(), bars.close.tolist(), bars.volume.tolist(),
                                        typical.tolist(), strict=True)
    ]


def ticker_24hr(spec: MarketSpec, stats: DayStats, quote: Quote, bid_qty: str, ask_qty: str,
                now_ms: int) -> Json:
    pd = spec.price_decimals
    change = stats.last - stats.open
    percent = change / stats.open if stats.open else 0.0
    return {
        "symbol": spec.market_id, "priceChange": fmt_float(change, pd),
        "priceChangePercent": fmt_float(percent, 4), "prevClosePrice": fmt_float(stats.open, pd),
        "lastPrice": fmt_float(stats.last, pd), "bidPrice": fmt_decimal(quote.bid), "bidQty": bid_qty,
        "askPrice": fmt_decimal(quote.ask), "askQty": ask_qty, "openPrice": fmt_float(stats.open, pd),
        "highPrice": fmt_float(stats.high, pd), "lowPrice": fmt_float(stats.low, pd),
        "volume": fmt_float(stats.volume, spec.amount_decimals),
        "quoteVolume": fmt_float(stats.quote_volume, pd),
        "openTime": str(now_ms - 86_400_000), "closeTime": str(now_ms), "count": None,
    }


def price_ticker(spec: MarketSpec, price: float) -> Json:
    return {"symbol": spec.market_id, "price": fmt_float(price, spec.price_decimals)}


def book_ticker(spec: MarketSpec, quote: Quote, bid_qty: str, ask_qty: str) -> Json:
    return {"symbol": spec.market_id, "bidPrice": fmt_decimal(quote.bid), "bidQty": bid_qty,
            "askPrice": fmt_decimal(quote.ask), "askQty": ask_qty}


def depth(bids: Sequence[Level], asks: Sequence[Level], update_id: int, now_ms: int) -> Json:
    return {
        "lastUpdateId": str(update_id),
        "bids": [[fmt_decimal(level.price), fmt_decimal(level.qty)] for level in bids],
        "asks": [[fmt_decimal(level.price), fmt_decimal(level.qty)] for level in asks],
        "timestamp": str(now_ms),
    }


def agg_trade(spec: MarketSpec, trade: PublicTrade) -> Json:
    return {"a": None, "f": None, "l": None, "p": fmt_float(trade.price, spec.price_decimals),
            "q": fmt_float(trade.qty, spec.amount_decimals), "T": str(trade.time_ms),
            "m": trade.buyer_is_maker, "M": True}


def public_trade(spec: MarketSpec, trade: PublicTrade) -> Json:
    pd = spec.price_decimals
    return {"id": None, "price": fmt_float(trade.price, pd),
            "qty": fmt_float(trade.qty, spec.amount_decimals),
            "quoteQty": fmt_float(trade.price * trade.qty, pd), "time": trade.time_ms,
            "isBuyerMaker": trade.buyer_is_maker, "isBestMatch": True,
            "tradeType": "ASK" if trade.buyer_is_maker else "BID"}


def _order_price(order: Order) -> str:
    """Limit price; market orders echo the traded price when they arrived, as MEXC does."""
    return fmt_decimal(order.price if order.price is not None else order.reference_price)


def order_ack(order: Order) -> Json:
    """The answer to POST /api/v3/order."""
    return {"symbol": order.market_id, "orderId": order.order_id, "orderListId": "-1",
            "price": _order_price(order), "origQty": fmt_decimal(order.orig_qty), "type": order.type.value,
            "side": order.side.value, "transactTime": str(order.time_ms)}


def order(order: Order) -> Json:
    """An order as GET /api/v3/order, /openOrders and /allOrders list it."""
    return {
        "symbol": order.market_id, "orderId": order.order_id, "orderListId": "-1",
        "clientOrderId": order.client_order_id, "price": _order_price(order),
        "origQty": fmt_decimal(order.orig_qty), "executedQty": fmt_decimal(order.executed_qty),
        "cummulativeQuoteQty": fmt_decimal(order.cumulative_quote_qty), "status": order.status.value,
        "timeInForce": None, "type": order.type.value, "side": order.side.value, "stopPrice": None,
        "icebergQty": None, "time": str(order.time_ms), "updateTime": str(order.update_time_ms),
        "isWorking": True, "origQuoteOrderQty": fmt_decimal(order.orig_quote_qty or Decimal(0)),
    }


def cancelled_order(order: Order) -> Json:
    """An order as DELETE /api/v3/order and /openOrders answer."""
    return {
        "symbol": order.market_id, "origClientOrderId": order.client_order_id, "orderId": order.order_id,
        "clientOrderId": order.client_order_id, "price": _order_price(order),
        "origQty": fmt_decimal(order.orig_qty), "executedQty": fmt_decimal(order.executed_qty),
        "cummulativeQuoteQty": fmt_decimal(order.cumulative_quote_qty), "status": order.status.value,
        "timeInForce": None, "type": order.type.value, "side": order.side.value,
    }


def my_trade(fill: Fill) -> Json:
    return {
        "symbol": fill.market_id, "id": fill.trade_id, "orderId": fill.order_id, "orderListId": "-1",
        "price": fmt_decimal(fill.price), "qty": fmt_decimal(fill.qty),
        "quoteQty": fmt_decimal(fill.quote_qty),
        "commission": fmt_decimal(fill.commission), "commissionAsset": fill.commission_asset,
        "time": str(fill.time_ms), "isBuyer": fill.side is Side.BUY, "isMaker": fill.is_maker,
        "isBestMatch": True, "isSelfTrade": False, "clientOrderId": fill.client_order_id,
    }


def account(account: Account) -> Json:
    return {
        "makerCommission": None, "takerCommission": None, "buyerCommission": None, "sellerCommission": None,
        "canTrade": True, "canWithdraw": True, "canDeposit": True, "updateTime": None, "accountType": "SPOT",
        "balances": [{"asset": asset, "free": fmt_decimal(held.free), "locked": fmt_decimal(held.locked)}
                     for asset, held in account.nonzero_balances()],
        "permissions": ["SPOT"],
    }


def coin(code: str, name: str) -> Json:
    """One /api/v3/capital/config/getall entry: the coin and its (single, emulated) network."""
    network = {
        "coin": code, "depositDesc": None, "depositEnable": True, "minConfirm": 12, "name": name,
        "network": f"{name}({code})", "withdrawEnable": True, "withdrawFee": "0",
        "withdrawIntegerMultiple": None,
        "withdrawMax": "10000000", "withdrawMin": "0", "sameAddress": False, "contract": "",
        "withdrawTips": None, "depositTips": None, "netWork": code,
    }
    return {"coin": code, "name": name, "networkList": [network]}
