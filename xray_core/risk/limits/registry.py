"""The one place limits are registered: `RiskBook` evaluates exactly `RULES`.

Order is severity, least severe first: a user blocked by several rules carries the reason of the one
registered last (kill rules over entry rules). A user's block code is the rule's position here plus
one (0: not blocked). Adding a limit: the `xray_core.risk.limits` docstring.
"""

from __future__ import annotations

from xray_core.risk.limits.daily_loss import DAILY_LOSS
from xray_core.risk.limits.drawdown import DRAWDOWN_KILL
from xray_core.risk.limits.global_daily_loss import GLOBAL_DAILY_LOSS
from xray_core.risk.limits.rule import Rule

RULES: tuple[Rule, ...] = (
    DAILY_LOSS,
    GLOBAL_DAILY_LOSS,
    DRAWDOWN_KILL,
)


def code_of(rule: Rule, rules: tuple[Rule, ...] | None = None) -> int:
    """The block code users blocked by `rule` carry (default: in the registry as it is now)."""
    return (RULES if rules is None else rules).index(rule) + 1
