"""What the limits remember per user from tick to tick: the day's opening equity, the peak equity and
the kill flag. Values, never mutated in place: the book swaps in the next state each tick, so the
whole state can be stored and loaded as it is."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True, eq=False)
class RiskState:
    day: int | None  # UTC day (ms // DAY_MS) `day_open` was taken on; None before the first tick
    day_open: np.ndarray  # per user: equity at the day's first tick (nan: new, measured next tick)
    peak: np.ndarray  # per user: highest equity since joining or being re-enabled (nan: new)
    killed: np.ndarray  # per user, bool: a kill rule fired; holds until a person re-enables the user

    @classmethod
    def fresh(cls, users: int) -> RiskState:
        """Nothing measured yet: every user starts from their equity at the next tick."""
        return cls(None, np.full(users, np.nan), np.full(users, np.nan), np.zeros(users, dtype=bool))

    @property
    def users(self) -> int:
        return len(self.killed)

    def roll(self, equity: np.ndarray, now_ms: int) -> RiskState:
        """Brought to this tick: a new UTC day opens at this equity, users new since the last tick start
        from it, and the peak rises with it."""
        day = now_ms // DAY_MS
        if day != self.day:
            day_open = equity.copy()
        else:
            day_open = np.where(np.isnan(self.day_open), equity, self.day_open)
        peak = np.maximum(np.where(np.isnan(self.peak), equity, self.peak), equity)
        return RiskState(day, day_open, peak, self.killed)

    def kill(self, fired: np.ndarray) -> RiskState:
        return RiskState(self.day, self.day_open, self.peak, self.killed | fired)

    def reindex(self, old: np.ndarray) -> RiskState:
        """Users changed: row i is now the old row `old[i]` (-1: a new user, measured from the next
        tick)."""
        known = old >= 0
        source = np.where(known, old, 0)

        def carry(values: np.ndarray, fill: float) -> np.ndarray:
            return np.where(known, values[source], fill) if len(values) else np.full(len(old), fill)

        killed = carry(self.killed, False).astype(bool)
        return RiskState(self.day, carry(self.day_open, np.nan), carry(self.peak, np.nan), killed)

    def revive(self, index: int, equity: float) -> RiskState:
        """A person re-enabled the user: not killed, and the drawdown is measured from here."""
        killed, peak = self.killed.copy(), self.peak.copy()
        killed[index], peak[index] = False, equity
        return RiskState(self.day, self.day_open, peak, killed)
