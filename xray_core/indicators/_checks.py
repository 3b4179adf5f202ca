"""Input and parameter checks shared by every indicator.

Policy (the same for every public indicator function):

* Inputs are converted to contiguous float64 arrays; they must be one-dimensional and, where several
  series are given (high, low, close, ...), of equal length.
* A NaN or ±inf anywhere in an input raises `DataError` naming the indicator, the input and the first
  bad index. Candles reach the indicators after the quality checks, so a gap is a bug upstream; a
  recursive indicator (EMA, Wilder smoothing, OBV) would otherwise carry the NaN into every later bar
  without notice.
* Fewer bars than an indicator's first value needs (its lookback + 1) raises `DataError` naming the
  indicator, its window and the bar count.
* Periods are integers with a documented minimum; anything else raises `ConfigError`.
"""

from __future__ import annotations

import numbers

import numpy as np
from numpy.typing import ArrayLike, NDArray

from xray_core.errors import ConfigError, DataError

FloatArray = NDArray[np.float64]

_REPAIR_HINT = "indicators need quality-checked candles: repair or drop the bar before computing indicators"


def series(values: ArrayLike, indicator: str, name: str) -> FloatArray:
    """`values` as a contiguous one-dimensional float64 array with only finite numbers."""
    try:
        array = np.ascontiguousarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{indicator}: {name} is not numeric ({exc})", _REPAIR_HINT) from None
    if array.ndim != 1:
        raise DataError(f"{indicator}: {name} must be one-dimensional, got shape {array.shape}",
                        "pass one column of values")
    finite = np.isfinite(array)
    if not finite.all():
        index = int(np.argmin(finite))
        raise DataError(f"{indicator}: {name} has a non-finite value ({array[index]}) at index {index}",
                        _REPAIR_HINT)
    return array


def same_length(indicator: str, **arrays: FloatArray) -> int:
    """The common length of `arrays`; DataError naming each length when they differ."""
    lengths = {name: array.size for name, array in arrays.items()}
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{name}={size}" for name, size in lengths.items())
        raise DataError(f"{indicator}: inputs have different lengths ({listed})", "pass aligned columns")
    return next(iter(lengths.values()))


def period(indicator: str, name: str, value: object, minimum: int) -> int:
    """`value` as an int >= `minimum`; ConfigError otherwise (bools are not periods)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigError(f"{indicator}: {name} must be an integer, got {value!r}",
                          f"use a whole number of bars >= {minimum}")
    if value < minimum:
        raise ConfigError(f"{indicator}: {name} must be >= {minimum}, got {value}",
                          f"use a whole number of bars >= {minimum}")
    return int(value)


def positive_number(indicator: str, name: str, value: object, *, allow_zero: bool = False) -> float:
    """`value` as a finite float > 0 (or >= 0 with `allow_zero`); ConfigError otherwise."""
    bound = ">= 0" if allow_zero else "> 0"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(f"{indicator}: {name} must be a number, got {value!r}",
                          f"use a finite number {bound}")
    number = float(value)
    if not np.isfinite(number) or number < 0 or (number == 0 and not allow_zero):
        raise ConfigError(f"{indicator}: {name} must be finite and {bound}, got {value!r}",
                          f"use a finite number {bound}")
    return number


def enough_bars(indicator: str, bars: int, lookback: int, window: str) -> None:
    """DataError unless `bars` covers the warm-up: the first value sits at index `lookback`."""
    if bars <= lookback:
        raise DataError(
            f"{indicator}: {bars} bar(s) is too few for {window}; the first value needs {lookback + 1} bars",
            "load a longer history or use a shorter window",
        )
