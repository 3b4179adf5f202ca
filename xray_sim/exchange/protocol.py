"""What the exchange needs from a price source: the interface SyntheticMarket and ReplayMarket share."""

from __future__ import annotations

from typing import Protocol

from xray_core.candles.bars import Bars
from xray_sim.exchange.universe import MarketSpec


class MarketSource(Protocol):
    """Listed markets, their bars and their traded price at any market time."""

    @property
    def specs(self) -> tuple[MarketSpec, ...]: ...

    @property
    def listed_from_ms(self) -> int:
        """Earliest bar time the source can serve."""
        ...

    @property
    def halted_from_ms(self) -> int | None:
        """When halted listings stop trading (None: no listing ever halts)."""
        ...

    def spec(self, symbol_or_id: str) -> MarketSpec | None: ...

    def timeframes(self, symbol: str) -> tuple[str, ...]:
        """Timeframes served for `symbol`, shortest first (the first one drives order matching)."""
        ...

    def is_trading(self, symbol: str, now_ms: int) -> bool: ...

    def price_at(self, symbol: str, t_ms: int) -> float | None: ...

    def bars(self, symbol: str, timeframe: str, start_ms: int, end_ms: int, now_ms: int) -> Bars: ...
