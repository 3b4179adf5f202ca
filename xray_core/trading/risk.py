"""Per-user and global risk limits as pure arithmetic over arrays of users.

The runtime keeps every user's equity in numpy arrays (one row per user), so the checks run for
10,000 users in microseconds. Limits:

* max position: no order takes a user's position in a symbol above `max_position_usd` (sizing caps it);
* max daily loss: once equity falls `max_daily_loss` below the day's opening equity, no new entries
  until the next UTC day (exits still go through: reducing risk is always allowed);
* max drawdown kill switch: once equity falls `max_drawdown` below its peak, the user's positions are
  closed and the user stops trading until a person re-enables them;
* global kill switch: when all users' combined equity falls `global_max_daily_loss` below the day's
  opening, nobody enters anything new.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

DAY_MS = 86_400_000


class Block(IntEnum):
    """Why a user may not enter new positions (0: not blocked). Ordered by severity."""

    NONE = 0
    DAILY_LOSS = 1
    GLOBAL = 2
    KILLED = 3


BLOCK_REASONS = {
    Block.DAILY_LOSS: "daily loss limit reached: no new entries until 00:00 UTC",
    Block.GLOBAL: "global kill switch: all users' combined daily loss passed its limit",
    Block.KILLED: "drawdown kill switch: positions closed, trading stopped until re-enabled",
}


@dataclass
class RiskBook:
    """Day-open and peak equity per user; `update` returns each user's block after this tick."""

    max_daily_loss: np.ndarray  # per user, fraction
    max_drawdown: np.ndarray  # per user, fraction
    global_max_daily_loss: float
    day_open: np.ndarray | None = None
    peak: np.ndarray | None = None
    killed: np.ndarray | None = None
    day: int | None = None

    def update(self, equity: np.ndarray, now_ms: int) -> tuple[np.ndarray, np.ndarray, bool]:
        """(block per user, users newly killed this tick, global switch on)."""
        day = now_ms // DAY_MS
        if self.day_open is None or self.day != day:
            self.day_open = equity.copy()
            self.day = day
        if self.peak is None:
            self.peak = equity.copy()
            self.killed = np.zeros(len(equity), dtype=bool)
        assert self.killed is not None
        self.day_open = np.where(np.isnan(self.day_open), equity, self.day_open)  # users new since
        self.peak = np.maximum(np.where(np.isnan(self.peak), equity, self.peak), equity)
        with np.errstate(divide="ignore", invalid="ignore"):
            daily_loss = np.where(self.day_open > 0, 1.0 - equity / self.day_open, 0.0)
            drawdown = np.where(self.peak > 0, 1.0 - equity / self.peak, 0.0)
        newly_killed = (drawdown >= self.max_drawdown) & ~self.killed
        self.killed |= newly_killed
        total_open = float(self.day_open.sum())
        global_on = total_open > 0 and 1.0 - float(equity.sum()) / total_open >= self.global_max_daily_loss
        block = np.where(daily_loss >= self.max_daily_loss, Block.DAILY_LOSS, Block.NONE)
        if global_on:
            block = np.maximum(block, Block.GLOBAL)
        block = np.where(self.killed, Block.KILLED, block).astype(np.int8)
        return block, newly_killed, global_on

    def reindex(self, old: np.ndarray, max_daily_loss: np.ndarray, max_drawdown: np.ndarray) -> None:
        """Users changed: row i is now the old row `old[i]` (-1: a new user, measured from the next
        update). Limits are replaced by the new rows' limits."""
        self.max_daily_loss, self.max_drawdown = max_daily_loss, max_drawdown
        if self.day_open is None or self.peak is None or self.killed is None:
            return
        known = old >= 0
        source = np.where(known, old, 0)

        def carry(values: np.ndarray, fill: float) -> np.ndarray:
            return np.where(known, values[source], fill) if len(values) else np.full(len(old), fill)

        self.day_open = carry(self.day_open, np.nan)
        self.peak = carry(self.peak, np.nan)
        self.killed = carry(self.killed, False).astype(bool)

    def revive(self, index: int, equity: float) -> None:
        """A person re-enabled the user: the drawdown is measured from here."""
        if self.killed is not None and self.peak is not None:
            self.killed[index] = False
            self.peak[index] = equity


def entry_notional(
    equity: np.ndarray,
    free_quote: np.ndarray,
    trade_percentage: np.ndarray,
    leverage: np.ndarray,
    margin_multiplier: np.ndarray,
    max_position_usd: np.ndarray,
    spot: bool = True,
) -> np.ndarray:
    """Quote amount each user commits on an entry: equity x trade_percentage x leverage / margin
    multiplier (margin kept back as a buffer), capped by the user's max position and, on spot where
    leverage cannot be borrowed, by the free quote balance."""
    notional = equity * trade_percentage * leverage / margin_multiplier
    notional = np.minimum(notional, max_position_usd)
    if spot:
        notional = np.minimum(notional, free_quote * 0.995)  # leave room for the taker fee
    return np.maximum(notional, 0.0)
