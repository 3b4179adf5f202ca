"""Max daily loss: once a user's equity falls `max_daily_loss` below the day's opening equity, no new
entries until the next UTC day opens (at the equity then). Exits still go through."""

from __future__ import annotations

import numpy as np

from xray_core.risk.limits.rule import RiskInputs, Rule


def over_daily_loss(inputs: RiskInputs) -> np.ndarray:
    day_open = inputs.day_open()
    # A user with nothing at the day's open has no daily loss to measure (and no division by zero).
    with np.errstate(divide="ignore", invalid="ignore"):
        loss = np.where(day_open > 0, 1.0 - inputs.equity / day_open, 0.0)
    return loss >= inputs.limits.max_daily_loss


DAILY_LOSS = Rule(
    name="daily_loss",
    reason="daily loss limit reached: no new entries until 00:00 UTC",
    check=over_daily_loss,
)
