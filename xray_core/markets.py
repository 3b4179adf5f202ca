"""Choosing the tradable universe from what the exchange lists."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from xray_core.settings import IngestSettings

MARKET_COLUMNS = {
    "symbol": str,
    "base": str,
    "quote": str,
    "active": bool,
    "quote_volume_24h": float,
    "kept": bool,
    "reason": str,
}


@dataclass(frozen=True, slots=True)
class MarketChoice:
    symbol: str
    base: str
    quote: str
    active: bool
    quote_volume_24h: float
    kept: bool
    reason: str


def choose_markets(
    markets: dict[str, dict[str, Any]], tickers: dict[str, dict[str, Any]], settings: IngestSettings
) -> list[MarketChoice]:
    """Every spot market of the exchange with a kept/dropped decision and its reason.

    Kept: spot, quoted in `settings.quote`, active, at least `min_quote_volume` traded over 24h,
    in the allow-list when one is set, and among the `max_symbols` most traded."""
    choices: list[MarketChoice] = []
    for symbol, market in sorted(markets.items()):
        if not market.get("spot"):
            continue
        ticker = tickers.get(symbol) or {}
        volume = float(ticker.get("quoteVolume") or 0.0)
        active = market.get("active") is not False
        reason = _drop_reason(symbol, market, active, volume, settings)
        choices.append(
            MarketChoice(
                symbol,
                market["base"],
                market["quote"],
                active,
                volume,
                kept=reason is None,
                reason=reason or "kept",
            )
        )
    if settings.max_symbols is not None:
        ranked = sorted((c for c in choices if c.kept), key=lambda c: -c.quote_volume_24h)
        surplus = {c.symbol for c in ranked[settings.max_symbols :]}
        choices = [
            MarketChoice(
                c.symbol,
                c.base,
                c.quote,
                c.active,
                c.quote_volume_24h,
                False,
                f"not among the {settings.max_symbols} most traded",
            )
            if c.symbol in surplus
            else c
            for c in choices
        ]
    return choices


def _drop_reason(
    symbol: str, market: dict[str, Any], active: bool, volume: float, settings: IngestSettings
) -> str | None:
    if market.get("quote") != settings.quote:
        return f"quoted in {market.get('quote')}, not {settings.quote}"
    if settings.symbols and symbol not in settings.symbols:
        return "not in XRAY_INGEST_SYMBOLS"
    if not active:
        return "not active for trading on the exchange"
    if volume < settings.min_quote_volume:
        return f"24h volume {volume:,.0f} {settings.quote} below {settings.min_quote_volume:,.0f}"
    return None
