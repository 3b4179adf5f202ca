"""Timeframes as the exchange names them ('1m', '1h', ...) and their length in milliseconds."""

from __future__ import annotations

from xray_core.errors import UnknownTimeframeError

MINUTE_MS = 60_000

TIMEFRAME_MS: dict[str, int] = {
    "1m": MINUTE_MS,
    "5m": 5 * MINUTE_MS,
    "15m": 15 * MINUTE_MS,
    "30m": 30 * MINUTE_MS,
    "1h": 60 * MINUTE_MS,
    "4h": 240 * MINUTE_MS,
    "1d": 1440 * MINUTE_MS,
}


def timeframe_ms(timeframe: str) -> int:
    """Length of one bar of `timeframe` in milliseconds; raises a clear error for unknown ones."""
    try:
        return TIMEFRAME_MS[timeframe]
    except KeyError:
        known = ", ".join(TIMEFRAME_MS)
        raise UnknownTimeframeError(f"unknown timeframe {timeframe!r}", f"use one of: {known}") from None


def floor_to_bar(timestamp_ms: int, timeframe: str) -> int:
    """Open time of the bar that contains `timestamp_ms` (bars are aligned to the Unix epoch)."""
    step = timeframe_ms(timeframe)
    return timestamp_ms - timestamp_ms % step
