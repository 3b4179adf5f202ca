"""The backtest's settings: one frozen, validated value shared by every run of a grid.

A dataclass rather than a pydantic model because the kernels need plain floats and the errors must be
`XrayError`s a person can act on (pydantic would raise its own `ValidationError`). Every bound is checked
once, here, so the numba kernels never see a value they would have to guard against.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, NamedTuple

from xray_core.errors import ConfigError

Mode = Literal["long_only", "long_short"]
MODES: tuple[Mode, ...] = ("long_only", "long_short")

MAX_FEE = 0.1  # 10% per fill: anything above is a typo (0.1 meant as 0.1%?)
MAX_SLIPPAGE = 0.1
MAX_LEVERAGE = 125.0  # the highest leverage crypto venues offer
MAX_MAINTENANCE_MARGIN = 0.5


class SimParams(NamedTuple):
    """The config as the numba kernels read it: plain floats and flags, passed as one tuple so that no
    kernel spells the list out (numba types a NamedTuple by its fields, so each is a register there)."""

    fee: float
    slippage: float
    cash: float
    size_fraction: float
    leverage: float
    maintenance_margin: float
    sl_atr: float  # NaN: no stop-loss
    tp_atr: float  # NaN: no take-profit
    long_short: bool
    check_hl: bool  # whether any intrabar level can trigger: see `BacktestConfig.needs_high_low`


@dataclass(frozen=True, slots=True)
class BacktestConfig:
    """How orders fill and how much is put at risk.

    fee, slippage: fractions per fill (0.001 = 0.1%); slippage worsens every fill price.
    cash: starting equity in quote currency.
    mode: "long_only" (a -1 target means flat) or "long_short".
    size_fraction: share of equity committed as margin on each entry (1 = all-in).
    leverage: position notional = leverage x margin (isolated margin, >= 1).
    maintenance_margin: liquidation when the position's equity falls to this fraction of its notional.
    sl_atr, tp_atr: stop-loss / take-profit distance in ATRs from the entry open; None disables.
    """

    fee: float = 0.001
    slippage: float = 0.0
    cash: float = 10_000.0
    mode: Mode = "long_only"
    size_fraction: float = 1.0
    leverage: float = 1.0
    maintenance_margin: float = 0.005
    sl_atr: float | None = None
    tp_atr: float | None = None

    def __post_init__(self) -> None:
        _in_range("fee", self.fee, 0.0, MAX_FEE, "a fraction per fill, e.g. 0.001 for 0.1%")
        _in_range("slippage", self.slippage, 0.0, MAX_SLIPPAGE, "a fraction of the price, e.g. 0.0005")
        if not _is_real(self.cash) or not math.isfinite(self.cash) or self.cash <= 0:
            raise ConfigError(
                f"cash must be a positive finite amount, got {self.cash!r}",
                "give the starting equity in quote currency, e.g. 10000",
            )
        if self.mode not in MODES:
            raise ConfigError(
                f"mode must be one of {', '.join(MODES)}, got {self.mode!r}",
                "use long_only to ignore short targets",
            )
        if not _is_real(self.size_fraction) or not 0.0 < self.size_fraction <= 1.0:
            raise ConfigError(
                f"size_fraction must be in (0, 1], got {self.size_fraction!r}",
                "1 commits all equity on each entry, 0.5 half of it",
            )
        _in_range("leverage", self.leverage, 1.0, MAX_LEVERAGE, "1 means no leverage")
        _in_range(
            "maintenance_margin",
            self.maintenance_margin,
            0.0,
            MAX_MAINTENANCE_MARGIN,
            "a fraction of the notional, e.g. 0.005 for 0.5%",
        )
        if self.maintenance_margin * self.leverage >= 1.0:
            raise ConfigError(
                f"maintenance_margin x leverage must be below 1, got {self.maintenance_margin} x "
                f"{self.leverage}",
                "such a position would be liquidated as soon as it opens; lower one of them",
            )
        for name in ("sl_atr", "tp_atr"):
            value = getattr(self, name)
            if value is not None and (not _is_real(value) or not math.isfinite(value) or value <= 0):
                raise ConfigError(
                    f"{name} must be a positive number of ATRs or None, got {value!r}",
                    "e.g. 2.0 places the level two ATRs from the entry price",
                )

    def sim_params(self) -> SimParams:
        """The kernels' parameters (built here only, so a new setting has one place to go)."""
        return SimParams(
            fee=float(self.fee),
            slippage=float(self.slippage),
            cash=float(self.cash),
            size_fraction=float(self.size_fraction),
            leverage=float(self.leverage),
            maintenance_margin=float(self.maintenance_margin),
            sl_atr=math.nan if self.sl_atr is None else float(self.sl_atr),
            tp_atr=math.nan if self.tp_atr is None else float(self.tp_atr),
            long_short=self.mode == "long_short",
            check_hl=self.needs_high_low,
        )

    @property
    def uses_stops(self) -> bool:
        return self.sl_atr is not None or self.tp_atr is not None

    @property
    def needs_high_low(self) -> bool:
        """Whether any intrabar level (stop, take-profit, liquidation) can trigger.

        An unlevered long can never be liquidated (its price cannot fall below zero), so the kernels can
        skip reading high/low in the common long-only case."""
        return self.uses_stops or self.leverage > 1.0 or self.mode == "long_short"


def _is_real(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _in_range(name: str, value: float, low: float, high: float, hint: str) -> None:
    if not _is_real(value) or not math.isfinite(value) or not low <= value <= high:
        raise ConfigError(f"{name} must be in [{low:g}, {high:g}], got {value!r}", hint)
