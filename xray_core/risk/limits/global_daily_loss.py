"""Global kill switch: when all users' combined equity falls `global_max_daily_loss` below their
combined equity at the day's open, nobody enters anything new (exits still go through) — a loss that
broad points at the market or at X-Ray itself, not at one user. "All users" are every runtime
process's users when the runtime passes their combined totals (`RiskInputs.combined`)."""

from __future__ import annotations

import numpy as np

from xray_core.risk.limits.rule import RiskInputs, Rule, Scope


def over_global_daily_loss(inputs: RiskInputs) -> np.ndarray:
    totals = inputs.totals()
    total_open = totals.day_open
    loss = 1.0 - totals.equity / total_open if total_open > 0 else 0.0
    on = total_open > 0 and loss >= inputs.limits.global_max_daily_loss
    return np.full(len(inputs.equity), on)


GLOBAL_DAILY_LOSS = Rule(
    name="global_daily_loss",
    reason="global kill switch: all users' combined daily loss passed its limit",
    check=over_global_daily_loss,
    scope=Scope.ALL,
)
