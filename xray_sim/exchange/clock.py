"""The emulated exchange's clock: real time, or accelerated by a speed factor."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class MarketClock:
    """Market time advances `speed` times faster than the wall clock, starting at `start_ms`.

    Authentication (timestamp and recvWindow) is always checked against the wall clock, because a
    stock ccxt client signs with its own wall clock; the market clock drives prices and bars.
    """

    speed: float = 1.0
    start_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    _wall_start: float = field(default_factory=time.monotonic, repr=False)
    _offset_ms: int = 0

    def now_ms(self) -> int:
        elapsed = time.monotonic() - self._wall_start
        return self.start_ms + self._offset_ms + int(elapsed * 1000 * self.speed)

    @property
    def advanced_ms(self) -> int:
        """How far `advance` has moved the clock in total."""
        return self._offset_ms

    def advance(self, ms: int) -> None:
        """Jump the market clock forward (tests and the load test use this to step bars)."""
        if ms < 0:
            raise ValueError("the market clock never goes backwards")
        self._offset_ms += ms

    @staticmethod
    def wall_ms() -> int:
        return int(time.time() * 1000)
