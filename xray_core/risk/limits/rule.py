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


@dataclass(frozen=True, slots=True, eq=False)
class RiskInputs:
    """Everything a rule may read this tick. The state is already rolled to this tick (day-open and
    peak include this equity); its kill flag is from before this tick's kill rules fired."""

    now_ms: int
    equity: np.ndarray  # per user
    state: RiskState
    limits: RiskLimits


@dataclass(frozen=True, slots=True)
class Rule:
    """One limit. `check` returns a bool array over users: True where the rule blocks the user now."""

    name: str  # unique: identifies the rule in logs
    reason: str  # what a blocked user is told
    check: Callable[[RiskInputs], np.ndarray]
    effect: Effect = Effect.NO_ENTRIES
    scope: Scope = Scope.USER
