"""The one strategy interface used unchanged by backtests, optimisation and live trading.

A strategy turns closed candles into a *target position* per bar: +1 long, 0 flat, -1 short, decided
on bar t's close using bars <= t only. The backtest engine fills the change at bar t+1's open; the
live runtime computes the same array and acts on its last element. Parameters are frozen pydantic
models whose Field bounds are both validation and the optimiser's search space.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, SupportsFloat

import numpy as np
from annotated_types import Ge, Gt, Le, Lt
from pydantic import BaseModel, ConfigDict, ValidationError

from xray_core.candles.bars import Bars
from xray_core.errors import ConfigError


class Mode(StrEnum):
    LONG_ONLY = "long_only"
    LONG_SHORT = "long_short"


class StrategyParams(BaseModel):
    """Base of every strategy's parameters: frozen, no unknown names."""

    model_config = ConfigDict(frozen=True, extra="forbid")


@dataclass(frozen=True, slots=True)
class ParamRange:
    """One parameter's search range, read from its Field bounds."""

    name: str
    low: float
    high: float
    is_int: bool


class Strategy(ABC):
    name: ClassVar[str]
    description: ClassVar[str]
    Params: ClassVar[type[StrategyParams]]

    @abstractmethod
    def warmup(self, params: Any) -> int:
        """Bars before the first bar whose position can be non-flat."""

    @abstractmethod
    def positions(self, bars: Bars, params: Any, mode: Mode = Mode.LONG_ONLY) -> np.ndarray:
        """Target position (int8: -1, 0, +1) after each bar's close, from bars <= t only."""

    def decide(self, bars: Bars, params: Any, mode: Mode = Mode.LONG_ONLY) -> int:
        """The live decision: the target position after the newest closed bar."""
        return int(self.positions(bars, params, mode)[-1])

    def params(self, values: dict[str, Any] | None = None) -> Any:
        """Validated parameters; unknown names and out-of-range values raise a clear ConfigError."""
        try:
            return self.Params.model_validate(values or {})
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(part) for part in first["loc"]) or "parameters"
            known = ", ".join(self.Params.model_fields)
            if first["type"] == "extra_forbidden":
                raise ConfigError(
                    f"{self.name}: unknown parameter {field!r}", f"its parameters are: {known}"
                ) from None
            message = str(first["msg"]).removeprefix("Value error, ")
            if not first["loc"]:  # a rule across parameters, e.g. fast < slow
                raise ConfigError(f"{self.name}: {message}", f"parameters: {known}") from None
            raise ConfigError(
                f"{self.name}: {field}={first['input']!r}: {message}", f"parameters: {known}"
            ) from None

    def search_space(self) -> list[ParamRange]:
        """Each numeric parameter's [low, high] from its Field bounds, for the optimiser."""
        ranges = []
        for name, field in self.Params.model_fields.items():
            low = high = None
            for bound in field.metadata:
                if isinstance(bound, Ge | Gt):
                    low = _number(bound.ge if isinstance(bound, Ge) else bound.gt)
                elif isinstance(bound, Le | Lt):
                    high = _number(bound.le if isinstance(bound, Le) else bound.lt)
            if low is None or high is None:
                raise TypeError(f"{self.name}.{name} needs both bounds to be searchable")
            ranges.append(ParamRange(name, low, high, field.annotation is int))
        return ranges


def _number(bound: object) -> float:
    """A Field bound as a float (annotated_types types it as merely comparable)."""
    if not isinstance(bound, SupportsFloat):
        raise TypeError(f"bound {bound!r} is not a number")
    return float(bound)


def flat_before(positions: np.ndarray, warmup: int) -> np.ndarray:
    positions[: min(warmup, len(positions))] = 0
    return positions
