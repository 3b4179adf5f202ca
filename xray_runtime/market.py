"""Closed bars per symbol, fetched once per symbol per bar for every user.

Time is the exchange's (`fetch_time`), not this machine's: a bar is closed when its open time plus the
timeframe has passed on the exchange's clock, which also keeps the runtime right against the
emulator's accelerated clock. The stale-data guard refuses a symbol whose newest closed bar is older
than `stale_after_bars` bars (a halted or delisted listing, a feed that stopped): no decision is taken
on it, and the reason is kept for /health and the logs.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import ccxt
import numpy as np

from xray_core.candles.bars import Bars
from xray_core.timeframes import timeframe_ms

log = logging.getLogger(__name__)
UNAVAILABLE = "candles unavailable"  # a symbol skipped for a failed fetch (not stale data)
STALE = "stale data"  # how the reason of a symbol skipped for old bars begins (metrics count them)


@dataclass(frozen=True)
class SymbolBars:
    """A symbol's closed bars now, or why there are none to trade on."""

    symbol: str
    bars: Bars
    fresh: bool
    reason: str = ""

    @property
    def last_bar_ms(self) -> int | None:
        return int(self.bars.timestamp[-1]) if len(self.bars) else None


class CandleWindows:
    """A rolling window of closed bars per symbol, topped up incrementally from the exchange."""

    def __init__(self, exchange: Any, timeframe: str, window: int = 400, stale_after_bars: float = 2.0,
                 concurrency: int = 8) -> None:
        self.exchange = exchange
        self.timeframe = timeframe
        self.step = timeframe_ms(timeframe)
        self.window = window
        self.stale_after_bars = stale_after_bars
        self._bars: dict[str, Bars] = {}
        self._gate = asyncio.Semaphore(concurrency)

    async def now_ms(self) -> int:
        return int(await self.exchange.fetch_time())

    async def refresh(self, symbols: list[str], now_ms: int) -> dict[str, SymbolBars]:
        """Every symbol's closed bars as of `now_ms`; one symbol's failure is that symbol's reason."""
        results = await asyncio.gather(*(self._refresh_one(s, now_ms) for s in symbols))
        return {r.symbol: r for r in results}

    async def _refresh_one(self, symbol: str, now_ms: int) -> SymbolBars:
        known = self._bars.get(symbol, Bars.empty())
        since = int(known.timestamp[-1]) + self.step if len(known) else now_ms - self.window * self.step
        try:
            async with self._gate:
                rows = await self._fetch(symbol, since, now_ms)
        except ccxt.BadSymbol:
            return SymbolBars(symbol, known, False, "the exchange no longer lists it (delisted?)")
        except ccxt.BaseError as exc:
            return SymbolBars(symbol, known, False, f"{UNAVAILABLE}: {type(exc).__name__}")
        merged = _merge(known, rows, now_ms, self.step)
        merged = merged.take(slice(max(0, len(merged) - self.window), None))
        self._bars[symbol] = merged
        if not len(merged):
            return SymbolBars(symbol, merged, False,
                              f"{STALE}: no bars in the last {self.window} (trading halted or delisted?)")
        age_bars = (now_ms - (int(merged.timestamp[-1]) + self.step)) / self.step
        if age_bars > self.stale_after_bars:
            reason = f"{STALE}: newest closed bar is {age_bars:.1f} bars old"
            return SymbolBars(symbol, merged, False, reason)
        return SymbolBars(symbol, merged, True)

    async def _fetch(self, symbol: str, since: int, now_ms: int) -> list[list[float]]:
        rows: list[list[float]] = []
        while since < now_ms:
            # An explicit end: ccxt would cap it at this machine's clock, and the exchange's clock is
            # the one that counts (the emulator's may run ahead of ours).
            until = min(since + 1000 * self.step, now_ms + self.step)
            page = await self.exchange.fetch_ohlcv(symbol, self.timeframe, since=since, limit=1000,
                                                   params={"until": until})
            if not page:
                break
            rows.extend(page)
            nxt = int(page[-1][0]) + self.step
            if nxt <= since or len(page) < 1000:
                break
            since = nxt
        return rows


def _merge(known: Bars, rows: list[list[float]], now_ms: int, step: int) -> Bars:
    """Known bars plus new closed rows, de-duplicated by open time (a refetched bar replaces the old)."""
    closed = [r for r in rows if int(r[0]) + step <= now_ms]
    if not closed:
        return known
    new = np.asarray(closed, dtype=np.float64)
    fresh = Bars(new[:, 0].astype(np.int64), new[:, 1], new[:, 2], new[:, 3], new[:, 4], new[:, 5])
    if len(known):
        keep = known.timestamp < fresh.timestamp[0]
        fresh = Bars.concat([known.take(keep), fresh])
    _, first = np.unique(fresh.timestamp[::-1], return_index=True)  # last occurrence wins
    index = np.sort(len(fresh) - 1 - first)
    return fresh.take(index)
