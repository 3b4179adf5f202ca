"""Purged walk-forward splits over time, for rows whose labels look `horizon` bars ahead.

A row's label is computed from bars after it (open[t+1] .. open[t+1+horizon]), so a training row just
before a test block "knows" prices inside that block: a model fit on it is evaluated on data it has
partly seen. Ordinary k-fold or a plain time split leaks this way; here every split is purged.

Definition (`purged_walk_forward`). Let U be the sorted distinct timestamps of the rows (a stacked
multi-symbol frame is split by timestamp, so every symbol shares the fold boundaries) and m = |U|.

* The first `initial = floor(m * min_train_fraction)` timestamps are training-only. The remaining
  m - initial timestamps are cut into `n_folds` consecutive test blocks, as equal as possible
  (`np.array_split`: the first (m - initial) % n_folds blocks are one longer).
* Fold k tests on block k, starting at timestamp index s_k. It trains on every row at timestamp index
  i < s_k - gap with gap = horizon_bars + 1 + embargo_bars: the row's label window
  [i, i + 1 + horizon_bars] (decision bar to exit open) ends strictly before s_k, so no training label
  reads a bar of the test block. The training set is expanding (anchored at the first bar), so fold k
  trains on earlier test blocks too — they lie wholly in fold k's past.
* Embargo. In López de Prado's k-fold CV the embargo drops training rows *after* a test block, whose
  features overlap the test labels. Walk-forward never trains on rows after its test block, so there is
  nothing to embargo there; `embargo_bars` is instead an extra gap before the test block on top of the
  purge, for features with long memory (the 168-bar correlation windows make neighbouring rows near
  copies). Default 0.
* Index units are distinct timestamps, i.e. bars when the symbols share one bar grid.

Too few timestamps for the folds (a test block would be empty, or fold 0 would have no training row)
raises DataError with the numbers.
"""

from __future__ import annotations

import math
import numbers
from typing import NamedTuple

import numpy as np
import polars as pl

from xray_core.errors import ConfigError, DataError


class Fold(NamedTuple):
    """Row positions (ascending int64) of one fold: unpack as `train, test = fold`."""

    train: np.ndarray
    test: np.ndarray


def _stamps(timestamps: pl.Series | np.ndarray) -> np.ndarray:
    if isinstance(timestamps, pl.Series):
        if isinstance(timestamps.dtype, pl.Datetime):
            return timestamps.dt.epoch("ms").to_numpy().astype(np.int64)
        return timestamps.to_numpy()
    values = np.asarray(timestamps)
    if np.issubdtype(values.dtype, np.datetime64):
        return values.astype("datetime64[ms]").astype(np.int64)
    return values


def _count(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ConfigError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return int(value)


def purged_walk_forward(
    timestamps: pl.Series | np.ndarray,
    n_folds: int = 5,
    horizon_bars: int = 12,
    embargo_bars: int = 0,
    min_train_fraction: float = 0.5,
) -> list[Fold]:
    """`n_folds` expanding-window folds over `timestamps` (one per row, any order), purged of training
    rows whose label window reaches the test block; see the module docstring for the exact rules."""
    folds = _count("n_folds", n_folds, 1)
    horizon = _count("horizon_bars", horizon_bars, 0)
    embargo = _count("embargo_bars", embargo_bars, 0)
    if not (isinstance(min_train_fraction, numbers.Real) and 0.0 < float(min_train_fraction) < 1.0):
        raise ConfigError(f"min_train_fraction must be in (0, 1), got {min_train_fraction!r}")
    stamps = _stamps(timestamps)
    if stamps.ndim != 1:
        raise DataError(f"timestamps must be one-dimensional, got shape {stamps.shape}")
    unique, position = np.unique(stamps, return_inverse=True)
    m = unique.size
    initial = math.floor(m * float(min_train_fraction))
    gap = horizon + 1 + embargo
    if m - initial < folds or initial - gap < 1:
        raise DataError(
            f"{m} distinct timestamps are too few for {folds} folds: {initial} initial training "
            f"timestamps minus a gap of {gap} (horizon {horizon} + 1 + embargo {embargo}) leaves "
            f"{max(initial - gap, 0)} to train fold 0, and {m - initial} are left for the test blocks",
            "load a longer history, use fewer folds or a shorter horizon",
        )
    order = np.argsort(position, kind="stable")  # rows by time index, ties in row order
    sorted_pos = position[order]
    out = []
    for block in np.array_split(np.arange(initial, m), folds):
        start, stop = int(block[0]), int(block[-1]) + 1
        lo, hi = np.searchsorted(sorted_pos, [start, stop])
        train_end = np.searchsorted(sorted_pos, start - gap)
        out.append(Fold(np.sort(order[:train_end]).astype(np.int64), np.sort(order[lo:hi]).astype(np.int64)))
    return out


def fold_column(n_rows: int, folds: list[Fold]) -> np.ndarray:
    """Per row, the fold whose test block holds it (-1 for rows in no test block)."""
    column = np.full(n_rows, -1, dtype=np.int64)
    for k, fold in enumerate(folds):
        column[fold.test] = k
    return column
