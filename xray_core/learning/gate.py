"""The promotion gate: a challenger model replaces the champion only when it earns it out of sample.

Pure decision logic on the metrics each model's walk-forward evaluation logged (`oos_*`, `bh_*`):
the challenger must have traded, must beat buy-and-hold over the same out-of-sample windows by
`margin`, and must beat the current champion's out-of-sample score by `margin`. A missing or failed
measurement never promotes; the decision always carries its reason.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from xray_core.errors import ConfigError


@dataclass(frozen=True, slots=True)
class GateConfig:
    metric: str = "oos_sharpe"  # what "better" means
    benchmark: str = "bh_sharpe"  # buy-and-hold's value of the same metric on the same windows
    margin: float = 0.1  # how much better, in the metric's units
    min_trades: int = 5  # a model that (almost) never trades proves nothing

    def __post_init__(self) -> None:
        if not math.isfinite(self.margin) or self.margin < 0:
            raise ConfigError(f"promotion margin must be a number >= 0, got {self.margin!r}",
                              "set XRAY_MODELS_PROMOTION_MARGIN, e.g. 0.1")


@dataclass(frozen=True, slots=True)
class GateDecision:
    promote: bool
    reason: str


def decide(challenger: Mapping[str, float], champion: Mapping[str, float] | None,
           config: GateConfig = GateConfig()) -> GateDecision:
    """Whether `challenger` (its logged metrics) should replace `champion` (None: there is none)."""
    score = _value(challenger, config.metric)
    if score is None:
        return GateDecision(False, f"the challenger has no {config.metric} (a failed run is never promoted)")
    trades = _value(challenger, "oos_trades")
    if trades is None or trades < config.min_trades:
        return GateDecision(False, f"the challenger made {trades or 0:.0f} out-of-sample trades, "
                                   f"fewer than {config.min_trades}")
    benchmark = _value(challenger, config.benchmark)
    if benchmark is None:
        return GateDecision(False, f"the challenger has no {config.benchmark} to compare with")
    if score <= benchmark + config.margin:
        return GateDecision(False, f"{config.metric} {score:.3f} does not beat buy-and-hold "
                                   f"{benchmark:.3f} by {config.margin:g}")
    if champion is None:
        return GateDecision(True, f"first champion: {config.metric} {score:.3f} beats buy-and-hold "
                                  f"{benchmark:.3f} by more than {config.margin:g}")
    incumbent = _value(champion, config.metric)
    if incumbent is not None and score <= incumbent + config.margin:
        return GateDecision(False, f"{config.metric} {score:.3f} does not beat the champion's "
                                   f"{incumbent:.3f} by {config.margin:g}")
    was = f"{incumbent:.3f}" if incumbent is not None else "unmeasured"
    return GateDecision(True, f"{config.metric} {score:.3f} beats the champion's {was} and buy-and-hold "
                              f"{benchmark:.3f} by more than {config.margin:g}")


def _value(metrics: Mapping[str, float], name: str) -> float | None:
    value = metrics.get(name)
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None
