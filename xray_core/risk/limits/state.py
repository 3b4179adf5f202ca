"""What the limits remember per user from tick to tick: the day's opening equity, the peak equity and
the kill flag. Values, never mutated in place: the book swaps in the next state each tick, so the
whole state can be stored and loaded as it is (`SavedRisk` is one user's row of it).

Equity a tick could not measure (NaN: a price never known, balances not read yet) changes nothing: the
user's day-open, peak and kill flag stay as they were, rather than being taken from a made-up number.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class SavedRisk:
    """One user's risk state as kept between processes (a restart, a shard hand-over)."""

    day: int | None  # UTC day `day_open` was taken on (None: never measured)
    day_open: float  # nan: not measured
    peak: float  # nan: not measured
    killed: bool

    def same(self, other: SavedRisk | None) -> bool:
        """Equal, NaN equal to NaN (what a store compares to skip unchanged rows)."""
        if other is None:
            return False
        return (self.day == other.day and self.killed == other.killed
                and _same(self.day_open, other.day_open) and _same(self.peak, other.peak))


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


@dataclass(frozen=True, slots=True, eq=False)
class RiskState:
    day: int | None  # UTC day (ms // DAY_MS) of the last tick; None before the first tick
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
        from it, and the peak rises with it. A NaN equity leaves the user's values as they were (on a new
        day: not measured yet)."""
        day = now_ms // DAY_MS
        known = np.isfinite(equity)
        if day != self.day:
            day_open = np.where(known, equity, np.nan)
        else:
            day_open = np.where(np.isnan(self.day_open) & known, equity, self.day_open)
        peak = np.where(known, np.fmax(self.peak, equity), self.peak)  # fmax: a NaN peak takes equity
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

    def restore(self, saved: Mapping[int, SavedRisk]) -> RiskState:
        """Rows `saved` (row -> what a store kept for the user) put back into a state already rolled to
        this tick: the day-open when it was taken today (else this tick's, as `roll` set it), the peak
        never below the saved one, the kill flag as saved."""
        if not saved:
            return self
        day_open, peak, killed = self.day_open.copy(), self.peak.copy(), self.killed.copy()
        for i, row in saved.items():
            if row.day is not None and row.day == self.day and not math.isnan(row.day_open):
                day_open[i] = row.day_open
            if not math.isnan(row.peak):  # after `roll`, peak[i] is this tick's equity (or NaN)
                peak[i] = row.peak if math.isnan(peak[i]) else max(row.peak, peak[i])
            killed[i] = killed[i] or row.killed
        return RiskState(self.day, day_open, peak, killed)

    def saved(self, index: int) -> SavedRisk:
        """Row `index` as a store keeps it."""
        return SavedRisk(self.day, float(self.day_open[index]), float(self.peak[index]),
                         bool(self.killed[index]))
