"""Global kill switch: when all users' combined equity falls `global_max_daily_loss` below their
combined equity at the day's open, nobody enters anything new (exits still go through) — a loss that
broad points at the market or at X-Ray itself, not at one user."""

from __future__ import annotations

import numpy as np

from xray_core.risk.limits.rule import RiskInputs, Rule, Scope


def over_global_daily_loss(inputs: RiskInputs) -> np.ndarray:
    total_open = float(inputs.state.day_open.sum())
    loss = 1.0 - float(inputs.equity.sum()) / total_open if total_open > 0 else 0.0
    on = total_open > 0 and loss >= inputs.limits.global_max_daily_loss
    return np.full(len(inputs.equity), on)


GLOBAL_DAILY_LOSS = Rule(
    name="global_daily_loss",
    reason="global kill switch: all users' combined daily loss passed its limit",
    check=over_global_daily_loss,
    scope=Scope.ALL,
)
