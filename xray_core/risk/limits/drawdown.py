"""Max drawdown kill switch: once a user's equity falls `max_drawdown` below its peak, the user's
positions are closed and the user stops trading until a person re-enables them (the book latches the
kill flag; re-enabling measures the drawdown from the equity then)."""

from __future__ import annotations

import numpy as np

from xray_core.risk.limits.rule import Effect, RiskInputs, Rule


def over_drawdown(inputs: RiskInputs) -> np.ndarray:
    peak = inputs.peak()
    with np.errstate(divide="ignore", invalid="ignore"):
        drawdown = np.where(peak > 0, 1.0 - inputs.equity / peak, 0.0)
    return drawdown >= inputs.limits.max_drawdown


DRAWDOWN_KILL = Rule(
    name="drawdown_kill",
    reason="drawdown kill switch: positions closed, trading stopped until re-enabled",
    check=over_drawdown,
    effect=Effect.KILL,
)
