"""MEXC's public spot v3 market-data endpoints (and the contract endpoint ccxt's load_markets reads)."""

from __future__ import annotations

from xray_core.candles.bars import Bars
from xray_core.timeframes import TIMEFRAME_MS
from xray_sim.exchange import apierror, shapes
from xray_sim.exchange.book import Level, PublicTrade, Quote, day_stats, recent_trades
from xray_sim.exchange.decimals import fmt_decimal
from xray_sim.exchange.endpoints import Context, Endpoint
from xray_sim.exchange.protocol import MarketSource
from xray_sim.exchange.universe import MarketSpec

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
_MAX_CHUNKS = 8  # kline reads step over gaps in at most this many slices


def ping(ctx: Context) -> object:
    return {}


def server_time(ctx: Context) -> object:
    return {"serverTime": ctx.now_ms}


def exchange_info(ctx: Context) -> object:
    chosen = ctx.params.has("symbol") or ctx.params.has("symbols")
    ids = [spec.market_id for spec in ctx.specs()] if chosen else None
    return shapes.exchange_info(ctx.state.exchange_info_symbols(ctx.now_ms, ids), ctx.now_ms)


def default_symbols(ctx: Context) -> object:
    return {"code": 200, "data": [spec.market_id for spec in ctx.state.market.specs], "msg": None}


def contract_detail(ctx: Context) -> object:
    return {"success": True, "code": 0, "data": []}  # spot only: no perpetual swaps are listed


# ---- klines ------------------------------------------------------------------------------------
def klines(ctx: Context) -> object:
    """Bars with open time in [startTime, endTime), endTime exclusive. With startTime: the first
    `limit` bars from it; otherwise the latest `limit` bars before endTime (or now). The bar in
    progress is returned as it stands."""
    spec = ctx.spec()
    interval = ctx.params.required("interval")
    market = ctx.state.market
    timeframe = shapes.MEXC_INTERVALS.get(interval)
    served = market.timeframes(spec.symbol)
    if timeframe is None or timeframe not in served:
        names = [name for name, tf in shapes.MEXC_INTERVALS.items() if tf in served]
        raise apierror.invalid_param(f"interval {interval} is not available for {spec.market_id}; "
                                     f"use one of {', '.join(names)}")
    limit = ctx.params.limit(500, 1000)
    start, end = ctx.params.integer("startTime"), ctx.params.integer("endTime")
    stop = ctx.now_ms + 1 if end is None else min(end, ctx.now_ms + 1)
    if start is not None:
        bars = _first_bars(market, spec.symbol, timeframe, start, stop, limit, ctx.now_ms)
    else:
        bars = _last_bars(market, spec.symbol, timeframe, stop, limit, ctx.now_ms)
    return shapes.klines(spec, bars, TIMEFRAME_MS[timeframe])


def _first_bars(market: MarketSource, symbol: str, timeframe: str, start: int, stop: int, limit: int,
                now_ms: int) -> Bars:
    """The first `limit` bars opening in [start, stop), read in slices so that gaps are stepped over."""
    step = TIMEFRAME_MS[timeframe]
    cursor = max(start, market.listed_from_ms)
    cursor -= cursor % step
    parts: list[Bars] = []
    got = 0
    for _ in range(_MAX_CHUNKS):
        if cursor >= stop or got >= limit:
            break
        until = min(stop, cursor + max(limit - got, 60) * step)
        part = market.bars(symbol, timeframe, cursor, until, now_ms).between(start, until)
        parts.append(part)
        got += len(part)
        cursor = until
    return Bars.concat(parts).take(slice(0, limit))


def _last_bars(market: MarketSource, symbol: str, timeframe: str, stop: int, limit: int, now_ms: int) -> Bars:
    """The last `limit` bars opening before `stop`, read backwards in slices over gaps."""
    step = TIMEFRAME_MS[timeframe]
    parts: list[Bars] = []
    got = 0
    until = stop
    for _ in range(_MAX_CHUNKS):
        if got >= limit or until <= market.listed_from_ms:
            break
        since = until - max(limit - got, 60) * step
        since -= since % step
        part = market.bars(symbol, timeframe, since, until, now_ms)
        parts.insert(0, part)
        got += len(part)
        until = since
    bars = Bars.concat(parts)
    return bars.take(slice(max(0, len(bars) - limit), len(bars)))


# ---- prices and book -----------------------------------------------------------------------------
def _finest(ctx: Context, spec: MarketSpec) -> tuple[str, int]:
    timeframe = ctx.state.market.timeframes(spec.symbol)[0]
    return timeframe, TIMEFRAME_MS[timeframe]


def _price(ctx: Context, spec: MarketSpec) -> float:
    price = ctx.state.market.price_at(spec.symbol, ctx.now_ms)
    if price is None:  # before the market's first bar: nothing has traded yet
        raise apierror.symbol_halted()
    return price


def _recent_bars(ctx: Context, spec: MarketSpec, span_ms: int) -> Bars:
    timeframe, _ = _finest(ctx, spec)
    return ctx.state.market.bars(spec.symbol, timeframe, ctx.now_ms - span_ms, ctx.now_ms + 1, ctx.now_ms)


def _book(ctx: Context, spec: MarketSpec, levels: int) -> tuple[Quote, list[Level], list[Level]]:
    return ctx.state.book.levels(spec, _price(ctx, spec), ctx.now_ms, levels)


def order_book(ctx: Context) -> object:
    spec = ctx.spec()
    _, bids, asks = _book(ctx, spec, ctx.params.limit(100, 5000))
    return shapes.depth(bids, asks, ctx.now_ms, ctx.now_ms)


def _top(ctx: Context, spec: MarketSpec) -> tuple[Quote, str, str]:
    quote, bids, asks = _book(ctx, spec, 1)
    return quote, fmt_decimal(bids[0].qty) if bids else "0", fmt_decimal(asks[0].qty)


def ticker_24hr(ctx: Context) -> object:
    tickers = []
    for spec in ctx.specs():
        bars = _recent_bars(ctx, spec, DAY_MS)
        quote, bid_qty, ask_qty = _top(ctx, spec)
        stats = day_stats(bars, _price(ctx, spec))
        tickers.append(shapes.ticker_24hr(spec, stats, quote, bid_qty, ask_qty, ctx.now_ms))
    return tickers[0] if ctx.params.has("symbol") else tickers


def ticker_price(ctx: Context) -> object:
    tickers = [shapes.price_ticker(spec, _price(ctx, spec)) for spec in ctx.specs()]
    return tickers[0] if ctx.params.has("symbol") else tickers


def book_ticker(ctx: Context) -> object:
    tickers = [shapes.book_ticker(spec, *_top(ctx, spec)) for spec in ctx.specs()]
    return tickers[0] if ctx.params.has("symbol") else tickers


def avg_price(ctx: Context) -> object:
    spec = ctx.spec()
    bars = _recent_bars(ctx, spec, 5 * 60_000)
    price = float(bars.close.mean()) if len(bars) else _price(ctx, spec)
    return {"mins": 5, "price": shapes.fmt_float(price, spec.price_decimals)}


# ---- public trades -------------------------------------------------------------------------------
def _tape(ctx: Context, spec: MarketSpec, start_ms: int, end_ms: int, limit: int) -> list[PublicTrade]:
    timeframe, step = _finest(ctx, spec)
    bars = ctx.state.market.bars(spec.symbol, timeframe, start_ms, end_ms, ctx.now_ms)
    trades = [t for t in recent_trades(spec, bars, step, ctx.now_ms, ctx.state.config.seed)
              if start_ms <= t.time_ms < end_ms]
    return trades[-limit:]


def trades(ctx: Context) -> object:
    spec = ctx.spec()
    limit = ctx.params.limit(500, 1000)
    _, step = _finest(ctx, spec)
    span = (limit // 3 + 2) * step  # every bar prints at least three trades
    return [shapes.public_trade(spec, t) for t in _tape(ctx, spec, ctx.now_ms - span, ctx.now_ms + 1, limit)]


def agg_trades(ctx: Context) -> object:
    """Recent trades, or those in [startTime, endTime] (a window of at most an hour, as on MEXC)."""
    spec = ctx.spec()
    limit = ctx.params.limit(500, 1000)
    start, end = ctx.params.integer("startTime"), ctx.params.integer("endTime")
    if start is not None:
        end = min(start + HOUR_MS, ctx.now_ms if end is None else end)
    elif end is not None:
        start = end - HOUR_MS
    else:
        _, step = _finest(ctx, spec)
        start, end = ctx.now_ms - (limit // 3 + 2) * step, ctx.now_ms
    end = min(end, start + HOUR_MS, ctx.now_ms)
    return [shapes.agg_trade(spec, t) for t in _tape(ctx, spec, start, end + 1, limit)]


PUBLIC_ENDPOINTS = (
    Endpoint("GET", "/api/v3/ping", ping),
    Endpoint("GET", "/api/v3/time", server_time),
    Endpoint("GET", "/api/v3/exchangeInfo", exchange_info),
    Endpoint("GET", "/api/v3/defaultSymbols", default_symbols),
    Endpoint("GET", "/api/v3/klines", klines),
    Endpoint("GET", "/api/v3/depth", order_book),
    Endpoint("GET", "/api/v3/trades", trades),
    Endpoint("GET", "/api/v3/historicalTrades", trades),
    Endpoint("GET", "/api/v3/aggTrades", agg_trades),
    Endpoint("GET", "/api/v3/avgPrice", avg_price),
    Endpoint("GET", "/api/v3/ticker/24hr", ticker_24hr),
    Endpoint("GET", "/api/v3/ticker/price", ticker_price),
    Endpoint("GET", "/api/v3/ticker/bookTicker", book_ticker),
    Endpoint("GET", "/api/v1/contract/detail", contract_detail),
)
