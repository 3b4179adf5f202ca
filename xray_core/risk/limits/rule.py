"""The shape of a limit: what a rule reads (`RiskInputs`), what it says (a bool mask over users) and
what that means (`Effect`, `Scope`). How to write one: the `xray_core.risk.limits` docstring."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

import numpy as np

from xray_core.risk.limits.state import RiskState


class Effect(Enum):
    NO_ENTRIES = "no_entries"  # no new entries; exits always go through
    KILL = "kill"  # positions closed, trading stopped until a person re-enables the user


class Scope(Enum):
    USER = "user"  # judged user by user
    ALL = "all"  # one switch for everyone: its mask is all true or all false


@dataclass(frozen=True, slots=True, eq=False)
class RiskLimits:
    """The thresholds rules compare against: per user (one row per user) and global."""

    max_daily_loss: np.ndarray  # per user: a fraction of the day's opening equity
    max_drawdown: np.ndarray  # per user: a fraction of the peak equity
    global_max_daily_loss: float  # all users' combined equity: a fraction of the day's opening

    def __post_init__(self) -> None:
        if len(self.max_daily_loss) != len(self.max_drawdown):
            raise ValueError(
                f"risk limits: {len(self.max_daily_loss)} daily loss limits but "
                f"{len(self.max_drawdown)} drawdown limits; give one of each per user"
            )

    @property
    def users(self) -> int:
        return len(self.max_daily_loss)


@dataclass(frozen=True, slots=True)
class Totals:
    """Combined day-open and current equity of a set of users (users whose equity or day-open is not
    measured are left out of both sums, so they move neither)."""

    day_open: float = 0.0
    equity: float = 0.0

    @classmethod
    def of(cls, day_open: np.ndarray, equity: np.ndarray) -> Totals:
        measured = np.isfinite(day_open) & np.isfinite(equity)
        return cls(float(day_open[measured].sum()), float(equity[measured].sum()))

    def __add__(self, other: Totals) -> Totals:
        return Totals(self.day_open + other.day_open, self.equity + other.equity)

    def __sub__(self, other: Totals) -> Totals:
        return Totals(self.day_open - other.day_open, self.equity - other.equity)


@dataclass(frozen=True, slots=True, eq=False)
class RiskInputs:
    """Everything a rule may read this tick. The state is already rolled to this tick (day-open and
    peak include this equity); its kill flag is from before this tick's kill rules fired. `combined`:
    every user's totals, across every runtime process (None: only the users here).

    `transfers`: each user's net deposits less withdrawals so far (quote value; None: none). The state
    keeps its baselines net of them (measured on equity less transfers), so money moved in or out is
    neither a profit nor a loss; rules read the baselines as of now, `day_open()` and `peak()`: the
    state's plus the transfers (a withdrawal of half the equity halves them)."""

    now_ms: int
    equity: np.ndarray  # per user; NaN: not measured this tick (no rule fires on it)
    state: RiskState
    limits: RiskLimits
    combined: Totals | None = None
    transfers: np.ndarray | None = None

    def day_open(self) -> np.ndarray:
        """Each user's opening equity of the day, moved by the transfers since."""
        return self.state.day_open if self.transfers is None else self.state.day_open + self.transfers

    def peak(self) -> np.ndarray:
        """Each user's peak equity, moved by the transfers since."""
        return self.state.peak if self.transfers is None else self.state.peak + self.transfers

    def totals(self) -> Totals:
        """`combined`, else the totals of the users here."""
        return self.combined if self.combined is not None else Totals.of(self.day_open(), self.equity)


@dataclass(frozen=True, slots=True)
class Rule:
    """One limit. `check` returns a bool array over users: True where the rule blocks the user now."""

    name: str  # unique: identifies the rule in logs
    reason: str  # what a blocked user is told
    check: Callable[[RiskInputs], np.ndarray]
    effect: Effect = Effect.NO_ENTRIES
    scope: Scope = Scope.USER
