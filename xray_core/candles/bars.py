"""OHLCV bars as columnar numpy arrays (what numba kernels and the emulator work on), conversion from
and to the polars candle schema, and aggregation to longer timeframes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl


@dataclass(frozen=True, slots=True)
class Bars:
    """Bars sorted by open time. `timestamp` is the bar's open time in ms since the epoch."""

    timestamp: np.ndarray  # int64
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def __len__(self) -> int:
        return int(self.timestamp.shape[0])

    @classmethod
    def empty(cls) -> Bars:
        nothing = np.empty(0)
        return cls(np.empty(0, dtype=np.int64), nothing, nothing, nothing, nothing, nothing)

    @classmethod
    def concat(cls, parts: list[Bars]) -> Bars:
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty()
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in _FIELDS))

    def take(self, index: np.ndarray | slice) -> Bars:
        return Bars(*(getattr(self, f)[index] for f in _FIELDS))

    @classmethod
    def from_frame(cls, frame: pl.DataFrame) -> Bars:
        """Arrays of a candle frame (schema `xray_core.candles.schema.CANDLE_SCHEMA`)."""
        return cls(
            frame["timestamp"].dt.epoch("ms").to_numpy().astype(np.int64),
            *(frame[name].to_numpy().astype(np.float64) for name in _FIELDS[1:]),
        )

    def between(self, start_ms: int, end_ms: int) -> Bars:
        """Bars whose open time lies in [start_ms, end_ms)."""
        lo = int(np.searchsorted(self.timestamp, start_ms, side="left"))
        hi = int(np.searchsorted(self.timestamp, end_ms, side="left"))
        return self.take(slice(lo, hi))


_FIELDS = ("timestamp", "open", "high", "low", "close", "volume")


def aggregate(bars: Bars, step_ms: int) -> Bars:
    """Aggregate bars into buckets of `step_ms` aligned to the epoch (open, max, min, close, sum).

    A bucket exists when at least one source bar falls into it, so gaps in the source stay gaps.
    """
    if not len(bars):
        return Bars.empty()
    bucket = bars.timestamp - bars.timestamp % step_ms
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    ends = np.r_[starts[1:], len(bars)] - 1
    return Bars(
        timestamp=bucket[starts],
        open=bars.open[starts],
        high=np.maximum.reduceat(bars.high, starts),
        low=np.minimum.reduceat(bars.low, starts),
        close=bars.close[ends],
        volume=np.add.reduceat(bars.volume, starts),
    )
