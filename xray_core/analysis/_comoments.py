"""Pairwise-complete co-moment sums: the numerical core shared by correlations, betas and lead-lag.

Every statistic in `correlation` is a function of five sums over the rows where *both* series of a
pair have a value (n, Σx, Σy, Σx², Σy², Σxy). Computing them with masks keeps the pairwise policy
in one place, and the sums are taken on series centred on their own mean first, which changes no
correlation or beta but keeps Σx² - (Σx)²/n from cancelling catastrophically when a mean is large
next to the spread. Windowed sums come from cumulative sums (O(T) per pair whatever the window);
their rounding error grows with T/window, so a variance below `FLAT` times the series' overall
variance counts as zero (a flat stretch), giving NaN rather than a correlation of rounding noise.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from xray_core.errors import ConfigError, DataError

CHUNK = 1 << 22  # values per T×K working array of windowed sums (32 MiB of float64)
FLAT = 1e-10  # a variance this small relative to the series' own is a flat stretch, not a signal


class CoMoments(NamedTuple):
    """Sums over pair-complete rows: count, co-deviation and each side's squared deviation."""

    n: np.ndarray
    cov: np.ndarray  # Σ(x - x̄)(y - ȳ), not divided by n
    var_x: np.ndarray  # Σ(x - x̄)²
    var_y: np.ndarray  # Σ(y - ȳ)²


def centred(values: np.ndarray) -> np.ndarray:
    """Each column minus its mean over its finite entries (NaN stays NaN; an empty column stays NaN)."""
    finite = np.isfinite(values)
    count = finite.sum(axis=0)
    mean = np.where(finite, values, 0.0).sum(axis=0) / np.maximum(count, 1)
    return values - mean


def flat_floor(centred_values: np.ndarray) -> np.ndarray:
    """Per column: the per-observation variance under which a window counts as flat."""
    finite = np.isfinite(centred_values)
    squares = np.where(finite, centred_values, 0.0) ** 2
    return FLAT * squares.sum(axis=0) / np.maximum(finite.sum(axis=0), 1)


def comoments(
    x: np.ndarray, y: np.ndarray, window: int | None = None, ends: np.ndarray | None = None
) -> CoMoments:
    """Co-moments of `x` (T×1 or T×K) against each column of `y` (T×K), both centred.

    Without `window`: sums over all rows, shape (K,). With `window` and `ends`: sums over the
    `window` rows ending at (and including) each index in `ends`, shape (len(ends), K); the cumulative
    sums are T×K, so wide inputs go through in column blocks of about CHUNK values."""
    columns = max(1, CHUNK // max(y.shape[0], 1))
    if window is not None and y.shape[1] > columns:
        blocks = [
            comoments(x if x.shape[1] == 1 else x[:, c : c + columns], y[:, c : c + columns], window, ends)
            for c in range(0, y.shape[1], columns)
        ]
        return CoMoments(*(np.concatenate(parts, axis=1) for parts in zip(*blocks, strict=True)))
    both = np.isfinite(x) & np.isfinite(y)
    xb = np.where(both, x, 0.0)
    yb = np.where(both, y, 0.0)

    def total(a: np.ndarray) -> np.ndarray:
        if window is None or ends is None:
            return a.sum(axis=0)
        running = np.cumsum(a, axis=0)
        before = ends - window
        lower = np.where((before >= 0)[:, None], running[np.maximum(before, 0)], 0.0)
        return running[ends] - lower

    n = total(both.astype(np.float64))
    sx, sy = total(xb), total(yb)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_x, mean_y = sx / n, sy / n
        return CoMoments(
            n=n,
            cov=total(xb * yb) - sx * mean_y,
            var_x=total(xb * xb) - sx * mean_x,
            var_y=total(yb * yb) - sy * mean_y,
        )


def pearson(
    m: CoMoments, min_periods: int, floor_x: np.ndarray | float, floor_y: np.ndarray | float
) -> np.ndarray:
    """Correlation from co-moments; NaN where fewer than `min_periods` shared rows or a side is flat."""
    ok = (m.n >= min_periods) & (m.var_x > floor_x * m.n) & (m.var_y > floor_y * m.n)
    corr = np.full(m.n.shape, np.nan)
    corr[ok] = m.cov[ok] / np.sqrt(m.var_x[ok] * m.var_y[ok])
    return np.clip(corr, -1.0, 1.0)


def correlation_and_counts(values: np.ndarray, min_periods: int) -> tuple[np.ndarray, np.ndarray]:
    """Full pairwise-complete Pearson matrix and shared-row counts of a T×N matrix.

    Four matrix products instead of N passes over the data: with M the 0/1 presence mask and X the
    centred values zero-filled, MᵀM counts shared rows, XᵀM[i, j] sums x_i over the rows shared with
    j, (X²)ᵀM likewise for squares, and XᵀX sums the cross products."""
    v = centred(values)
    present = np.isfinite(v)
    mask = present.astype(np.float64)
    x = np.where(present, v, 0.0)
    n = mask.T @ mask
    sx = x.T @ mask
    with np.errstate(invalid="ignore", divide="ignore"):
        var = (x * x).T @ mask - sx**2 / n
        m = CoMoments(n=n, cov=x.T @ x - sx * sx.T / n, var_x=var, var_y=var.T)
    floor = flat_floor(v)
    corr = pearson(m, min_periods, floor[:, None], floor[None, :])
    corr = (corr + corr.T) / 2  # exact symmetry despite rounding in the products
    diagonal = np.isfinite(np.diag(corr))
    corr[np.diag_indices_from(corr)] = np.where(diagonal, 1.0, np.nan)
    return corr, n.astype(np.int64)


def check_window(window: int, rows: int) -> None:
    """A window of at least two returns that fits in the data."""
    check_count("window", window, 2)
    if window > rows:
        raise DataError(f"window {window} is longer than the {rows} returns", "use a shorter window")


def check_count(name: str, value: int, least: int) -> None:
    """An integer parameter of at least `least`; anything else is a caller's mistake (ConfigError)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least:
        raise ConfigError(f"{name} must be an integer >= {least}, got {value!r}")
