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

from xray_core.emulator.bars import Bars
from xray_core.emulator.decimals import quantum
from xray_core.emulator.universe import MarketSpec


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


def depth(spec: MarketSpec, quote: Quote, minute_volume: float, levels: int, seed: int,
          minute: int) -> tuple[list[Level], list[Level]]:
    """`levels` bids and asks stepping away from the top of book.

    Level sizes scale with the recent traded volume per minute and grow with distance from the top;
    the noise is seeded by (seed, symbol, minute), so the book is stable within a minute."""
    rng = np.random.default_rng([seed, zlib.crc32(spec.market_id.encode()), minute])
    tick = quantum(spec.price_decimals)
    # Levels are a tick apart, or half a basis point apart where a tick is finer than that.
    step = max(tick, (quote.ask * Decimal("0.00005")).quantize(tick, rounding=ROUND_CEILING))
    lot = quantum(spec.amount_decimals)
    base = max(minute_volume, 0.0) * 0.08
    sizes = base * (1 + 0.15 * np.arange(levels)) * np.exp(0.5 * rng.standard_normal((2, levels)))
    bids, asks = [], []
    for i in range(levels):
        bid_price = quote.bid - step * i
        if bid_price > 0:
            bids.append(Level(bid_price, _lots(sizes[0, i], lot)))
        asks.append(Level(quote.ask + step * i, _lots(sizes[1, i], lot)))
    return bids, asks


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
