"""Risk profiles: how much leverage, what share of equity per trade, and how much margin to keep,
adapted per symbol from its realised volatility, its drawdown and recent performance — always within
the bounds the user set for the profile.

* Leverage by volatility targeting: target annual volatility / the symbol's realised volatility, so a
  calm market is traded bigger and a wild one smaller; clipped to the profile's leverage bounds.
* Trade percentage by a capped fractional Kelly: f* = p - (1 - p) / b from the recent win rate p and
  payoff ratio b (average win / average loss), times the profile's Kelly fraction, clipped to its
  bounds; no edge (f* <= 0) means the profile's minimum.
* Drawdown brake: past `drawdown_brake` the leverage and trade percentage shrink linearly, to the
  minimum at twice the brake.
* Margin multiplier: margin kept above the exchange's requirement, growing with volatility relative to
  the target (more buffer when moves are large), within bounds.

Pure arithmetic on inputs the pipeline measured; each output row says which rule bound it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import polars as pl

from xray_core.errors import ConfigError


@dataclass(frozen=True, slots=True)
class RiskProfile:
    name: str
    target_vol: float  # annualised volatility the position should carry
    kelly_fraction: float  # share of full Kelly
    leverage: tuple[float, float]
    trade_percentage: tuple[float, float]  # share of equity committed per trade
    margin_multiplier: tuple[float, float]
    drawdown_brake: float  # drawdown at which sizing starts to shrink

    def __post_init__(self) -> None:
        for label, (low, high) in (
            ("leverage", self.leverage),
            ("trade_percentage", self.trade_percentage),
            ("margin_multiplier", self.margin_multiplier),
        ):
            if not (math.isfinite(low) and math.isfinite(high) and 0 < low <= high):
                raise ConfigError(
                    f"profile {self.name}: {label} bounds {low}..{high} are not 0 < low <= high",
                    "give a lower bound above zero and not above the upper one",
                )
        if self.trade_percentage[1] > 1:
            raise ConfigError(
                f"profile {self.name}: trade_percentage above 1 ({self.trade_percentage[1]})",
                "it is a share of equity: at most 1",
            )
        if not (0 < self.kelly_fraction <= 1 and self.target_vol > 0 and 0 < self.drawdown_brake < 1):
            raise ConfigError(
                f"profile {self.name}: kelly_fraction in (0, 1], target_vol > 0 and "
                "drawdown_brake in (0, 1) are required",
                "fix the profile's settings",
            )


DEFAULT_PROFILES: tuple[RiskProfile, ...] = (
    RiskProfile("conservative", 0.20, 0.25, (1.0, 2.0), (0.02, 0.10), (1.5, 3.0), 0.10),
    RiskProfile("balanced", 0.40, 0.50, (1.0, 3.0), (0.05, 0.25), (1.25, 2.5), 0.15),
    RiskProfile("aggressive", 0.80, 0.75, (1.0, 5.0), (0.10, 0.50), (1.1, 2.0), 0.25),
)


@dataclass(frozen=True, slots=True)
class MarketState:
    """What the sizing adapts to, measured by the pipeline for one symbol."""

    symbol: str
    realized_vol: float  # annualised
    drawdown: float  # current drawdown of the symbol's strategy equity, a positive fraction
    win_rate: float  # recent share of winning trades
    payoff: float  # recent average win / average loss


def size(profile: RiskProfile, state: MarketState) -> dict[str, object]:
    """The profile's leverage, trade percentage and margin multiplier for one symbol, with the rules
    that bound them."""
    notes = []
    if not (state.realized_vol > 0 and math.isfinite(state.realized_vol)):
        leverage, notes = profile.leverage[0], ["no usable volatility: minimum leverage"]
    else:
        leverage = _clip(profile.target_vol / state.realized_vol, profile.leverage, "leverage", notes)
    kelly = state.win_rate - (1 - state.win_rate) / state.payoff if state.payoff > 0 else -1.0
    if kelly <= 0 or not math.isfinite(kelly):
        trade_pct = profile.trade_percentage[0]
        notes.append("no edge in recent trades: minimum trade percentage")
    else:
        trade_pct = _clip(profile.kelly_fraction * kelly, profile.trade_percentage, "trade_percentage", notes)
    brake = _brake(state.drawdown, profile.drawdown_brake)
    if brake < 1:
        leverage = profile.leverage[0] + (leverage - profile.leverage[0]) * brake
        trade_pct = profile.trade_percentage[0] + (trade_pct - profile.trade_percentage[0]) * brake
        notes.append(f"drawdown {state.drawdown:.1%} past the {profile.drawdown_brake:.0%} brake")
    ratio = state.realized_vol / profile.target_vol if state.realized_vol > 0 else 1.0
    margin = _clip(1.0 + ratio, profile.margin_multiplier, "margin_multiplier", notes)
    return {
        "profile": profile.name,
        "symbol": state.symbol,
        "leverage": round(leverage, 4),
        "trade_percentage": round(trade_pct, 4),
        "margin_multiplier": round(margin, 4),
        "realized_vol": state.realized_vol,
        "drawdown": state.drawdown,
        "win_rate": state.win_rate,
        "payoff": state.payoff,
        "kelly": kelly,
        "notes": "; ".join(notes) or "within bounds",
    }


def size_all(profiles: tuple[RiskProfile, ...], states: list[MarketState]) -> pl.DataFrame:
    rows = [size(profile, state) for profile in profiles for state in states]
    return pl.DataFrame(rows, schema=RISK_SCHEMA, orient="row") if rows else pl.DataFrame(schema=RISK_SCHEMA)


RISK_SCHEMA = {
    "profile": pl.String,
    "symbol": pl.String,
    "leverage": pl.Float64,
    "trade_percentage": pl.Float64,
    "margin_multiplier": pl.Float64,
    "realized_vol": pl.Float64,
    "drawdown": pl.Float64,
    "win_rate": pl.Float64,
    "payoff": pl.Float64,
    "kelly": pl.Float64,
    "notes": pl.String,
}


def _clip(value: float, bounds: tuple[float, float], label: str, notes: list[str]) -> float:
    low, high = bounds
    if value < low:
        notes.append(f"{label} raised to its minimum {low:g}")
        return low
    if value > high:
        notes.append(f"{label} capped at {high:g}")
        return high
    return value


def _brake(drawdown: float, start: float) -> float:
    """1 below the brake, falling linearly to 0 at twice the brake."""
    if not math.isfinite(drawdown) or drawdown <= start:
        return 1.0
    return max(0.0, 1.0 - (drawdown - start) / start)
