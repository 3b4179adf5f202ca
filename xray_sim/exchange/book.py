"""The synthetic order book and public trade tape around the market's traded price.

One rule ties everything together: the best bid and ask are the traded price (`price_at`) minus and
plus the market's half spread, rounded outwards to the tick, so bid < price < ask. Market orders fill
at exactly these prices, the depth and bookTicker endpoints show them, and the 24h ticker quotes them.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

import numpy as np

from xray_core.candles.bars import Bars
from xray_sim.exchange.decimals import quantum
from xray_sim.exchange.protocol import MarketSource
from xray_sim.exchange.universe import MarketSpec


@dataclass(frozen=True, slots=True)
class Quote:
    bid: Decimal
    ask: Decimal


def top_of_book(spec: MarketSpec, price: float) -> Quote:
    """Best bid and ask around the traded `price`: bid < price < ask by the half spread."""
    tick = quantum(spec.price_decimals)
    mid = Decimal(repr(float(price))).quantize(tick)  # repr: the shortest exact text of the float
    half = mid * Decimal(repr(spec.half_spread_bps)) / 10_000
    bid = (mid - half).quantize(tick, rounding=ROUND_FLOOR)
    ask = (mid + half).quantize(tick, rounding=ROUND_CEILING)
    # A spread narrower than a tick still leaves one tick on each side.
    bid = min(bid, mid - tick)
    ask = max(ask, mid + tick)
    return Quote(max(bid, tick), ask)


@dataclass(frozen=True, slots=True)
class Level:
    price: Decimal
    qty: Decimal


MAX_LEVELS = 5000  # MEXC's largest depth limit
_HOUR_MS = 3_600_000


class BookModel:
    """The synthetic order book of every market: levels step away from the top of book, with sizes
    that scale with the last hour's traded volume per minute and grow with distance from the top.

    Sizes are drawn once per market and minute (seeded by seed, symbol and minute), so every view of
    the book within a minute (depth, bookTicker, 24hr ticker) shows the same sizes."""

    def __init__(self, market: MarketSource, seed: int) -> None:
        self.market = market
        self.seed = seed
        self._sizes: dict[str, tuple[int, np.ndarray]] = {}  # market id -> (minute, sizes[side, level])

    def levels(self, spec: MarketSpec, price: float, now_ms: int,
               count: int) -> tuple[Quote, list[Level], list[Level]]:
        """The top of book around `price` and `count` levels a side (fewer bids if prices reach 0)."""
        quote = top_of_book(spec, price)
        sizes = self._sizes_for(spec, now_ms // 60_000)
        tick = quantum(spec.price_decimals)
        # Levels are a tick apart, or half a basis point apart where a tick is finer than that.
        step = max(tick, (quote.ask * Decimal("0.00005")).quantize(tick, rounding=ROUND_CEILING))
        lot = quantum(spec.amount_decimals)
        count = min(count, MAX_LEVELS)
        bids = [Level(quote.bid - step * i, _lots(sizes[0, i], lot)) for i in range(count)
                if quote.bid - step * i > 0]
        asks = [Level(quote.ask + step * i, _lots(sizes[1, i], lot)) for i in range(count)]
        return quote, bids, asks

    def _sizes_for(self, spec: MarketSpec, minute: int) -> np.ndarray:
        cached = self._sizes.get(spec.market_id)
        if cached is not None and cached[0] == minute:
            return cached[1]
        start = minute * 60_000
        timeframe = self.market.timeframes(spec.symbol)[0]
        last_hour = self.market.bars(spec.symbol, timeframe, start - _HOUR_MS, start, start)
        per_minute = float(last_hour.volume.sum()) / 60 if len(last_hour) else \
            spec.quote_volume_per_minute / spec.price
        rng = np.random.default_rng([self.seed, zlib.crc32(spec.market_id.encode()), minute])
        noise = np.exp(0.5 * rng.standard_normal((2, MAX_LEVELS)))
        sizes = per_minute * 0.08 * (1 + 0.15 * np.arange(MAX_LEVELS)) * noise
        self._sizes[spec.market_id] = (minute, sizes)
        return sizes


def _lots(size: float, lot: Decimal) -> Decimal:
    """A size as a whole number of lots, at least one."""
    return max(lot, Decimal(repr(float(size))).quantize(lot, rounding=ROUND_FLOOR))


@dataclass(frozen=True, slots=True)
class PublicTrade:
    time_ms: int
    price: float
    qty: float
    buyer_is_maker: bool


def recent_trades(spec: MarketSpec, bars: Bars, step_ms: int, now_ms: int, seed: int) -> list[PublicTrade]:
    """A plausible tape for `bars` (oldest first): a few trades per bar along the bar's open-to-close
    path, sharing out the bar's volume; only trades at or before `now_ms`. Seeded per bar, so the
    same bar always shows the same trades."""
    symbol_seed = zlib.crc32(spec.market_id.encode())
    trades: list[PublicTrade] = []
    for i in range(len(bars)):
        opened = int(bars.timestamp[i])
        rng = np.random.default_rng([seed, symbol_seed, opened // step_ms])
        n = int(rng.integers(3, 9))
        offsets = np.sort(rng.integers(0, step_ms, n))
        shares = rng.dirichlet(np.ones(n))
        makers = rng.random(n) < 0.5
        o, c, v = float(bars.open[i]), float(bars.close[i]), float(bars.volume[i])
        elapsed = min(1.0, (now_ms - opened) / step_ms)  # the last bar may still be forming
        for offset, share, maker in zip(offsets, shares, makers, strict=True):
            if opened + int(offset) > now_ms:
                continue
            frac = offset / step_ms / elapsed if elapsed > 0 else 0.0
            price = round(o + (c - o) * min(1.0, frac), spec.price_decimals)
            qty = round(max(v * share, spec.lot), spec.amount_decimals)
            trades.append(PublicTrade(opened + int(offset), price, qty, bool(maker)))
    return trades


@dataclass(frozen=True, slots=True)
class DayStats:
    """The rolling 24 hours up to now, as the 24hr ticker reports them."""

    open: float
    high: float
    low: float
    last: float
    volume: float
    quote_volume: float


def day_stats(bars: Bars, last: float) -> DayStats:
    """Stats of the bars of the last 24 hours (finest timeframe) ending at the traded price `last`.
    Quote volume is each bar's volume at its close, as bars carry no traded value."""
    if not len(bars):
        return DayStats(last, last, last, last, 0.0, 0.0)
    return DayStats(
        open=float(bars.open[0]),
        high=max(float(bars.high.max()), last),
        low=min(float(bars.low.min()), last),
        last=last,
        volume=float(bars.volume.sum()),
        quote_volume=float((bars.volume * bars.close).sum()),
    )
