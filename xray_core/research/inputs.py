"""What research reads: the candles of the symbols the quality gate calls good, with data versions."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from xray_core.candles.store import CandleStore, SeriesKey

DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class Series:
    symbol: str
    candles: pl.DataFrame  # the candle schema, sorted
    data_version: str  # content hash of exactly these bars


def good_series(store: CandleStore, exchange: str, timeframe: str, history_days: int) -> list[Series]:
    """The last `history_days` of every good symbol's candles (bad ones are the gate's business)."""
    out = []
    for symbol in store.good_symbols(exchange, timeframe):
        key = SeriesKey(exchange, symbol, timeframe)
        last = store.last_timestamp_ms(key)
        if last is None:
            continue
        start = last - history_days * DAY_MS
        out.append(Series(symbol, store.read(key, start_ms=start), store.fingerprint(key, start)))
    return out
