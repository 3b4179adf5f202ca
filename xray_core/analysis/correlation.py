"""How crypto symbols move together: aligned log returns, correlation matrices and clusters.

Input is a frame of aligned closes (`timestamp` Datetime + one Float64 column per symbol, null where a
symbol has no bar; `aligned_closes` builds one from candle frames). Everything works on log returns.
Betas and lead-lag to a benchmark are in `correlation_benchmark`, the bundled `CorrelationReport` in
`correlation_report`, the heatmap in `correlation_plot`.

Missing-data policy
    * r_t = ln(c_t / c_{t-1}) on the aligned timestamp grid, stamped with bar t. A missing close makes
      the returns on both sides of it missing: returns are never bridged across a gap, because a
      two-bar return among one-bar returns inflates variance and pairs a move with the wrong bar.
    * Correlations, betas and cross-correlations use pairwise-complete observations: a pair uses every
      row where both returns exist, so one symbol's outage costs the others nothing. A pair with fewer
      than `min_periods` shared returns (capped at the window for windowed statistics) is NaN. (So a
      matrix with gaps need not be positive semi-definite: fine for clustering, not for portfolio
      optimisation.)
    * A symbol with no prices, fewer than `min_periods` returns or a constant price is excluded with a
      reason (`LogReturns.excluded`): one bad symbol never fails the whole analysis.
    * Malformed data raises `DataError` (no/odd timestamp column, duplicate timestamps, non-numeric
      columns, non-positive or infinite closes, too few rows, no usable symbol); bad parameters raise
      `ConfigError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import NamedTuple

import numpy as np
import polars as pl
from scipy.cluster import hierarchy
from scipy.spatial.distance import squareform

from xray_core.analysis._comoments import (
    centred,
    check_count,
    check_window,
    comoments,
    correlation_and_counts,
    flat_floor,
    pearson,
)
from xray_core.errors import ConfigError, DataError

DEFAULT_MIN_PERIODS = 30
DEFAULT_DISTANCE = 1.0  # Mantegna distance 1 = correlation 0.5: a cluster averages ρ above about 0.5
UTC_MS = pl.Datetime("ms", "UTC")


class LogReturns(NamedTuple):
    """Aligned log returns: row t is the return into bar `timestamps[t]`, NaN where it is missing."""

    timestamps: pl.Series  # Datetime[ms, UTC]
    symbols: tuple[str, ...]
    values: np.ndarray  # T×N float64
    excluded: Mapping[str, str]  # symbol -> why it is not in `symbols`


def _utc_ms(column: str, dtype: pl.DataType) -> pl.Expr:
    zone = dtype.time_zone if isinstance(dtype, pl.Datetime) else None
    expr = pl.col(column).cast(pl.Datetime("ms", zone))
    return expr.dt.replace_time_zone("UTC") if zone is None else expr.dt.convert_time_zone("UTC")


def aligned_closes(candles: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    """Closes of several candle frames on one grid (the union of their bar times), null where a symbol
    has no bar. An outer join, not an inner one, so one symbol's outage deletes no one else's bars."""
    if not candles:
        raise DataError("no candle frames given", "pass one candle frame per symbol")
    grid: pl.DataFrame | None = None
    for symbol, frame in candles.items():
        if symbol == "timestamp" or not {"timestamp", "close"} <= set(frame.columns):
            raise DataError(f"candles for {symbol!r} lack timestamp/close", "pass candle frames by symbol")
        if not isinstance(frame.schema["timestamp"], pl.Datetime):
            raise DataError(f"candles for {symbol}: timestamp is {frame.schema['timestamp']}", "use Datetime")
        part = frame.select(_utc_ms("timestamp", frame.schema["timestamp"]), pl.col("close").alias(symbol))
        if part["timestamp"].is_duplicated().any():
            raise DataError(f"candles for {symbol} repeat timestamps", "de-duplicate bars first")
        grid = part if grid is None else grid.join(part, on="timestamp", how="full", coalesce=True)
    assert grid is not None
    return grid.sort("timestamp")


def log_returns_matrix(closes: pl.DataFrame, *, min_periods: int = DEFAULT_MIN_PERIODS) -> LogReturns:
    """Log returns of every symbol column on the frame's timestamp grid (see the module's policy)."""
    check_count("min_periods", min_periods, 2)
    if "timestamp" not in closes.columns or not isinstance(closes.schema["timestamp"], pl.Datetime):
        raise DataError("closes need a Datetime 'timestamp' column", "build them with aligned_closes(...)")
    names = [c for c in closes.columns if c != "timestamp"]
    if not names:
        raise DataError("closes have no symbol columns", "add one close column per symbol")
    if bad := [c for c in names if not closes.schema[c].is_numeric()]:
        raise DataError(f"close column(s) {', '.join(bad)} are not numeric", "closes must be numbers")
    if closes["timestamp"].null_count():
        raise DataError("closes have null timestamps", "every row needs its bar time")
    frame = closes.sort("timestamp")
    if (duplicates := frame["timestamp"].is_duplicated().sum()) > 0:
        raise DataError(f"closes repeat {duplicates} timestamp rows", "keep one row per bar time")
    if frame.height < min_periods + 1:
        raise DataError(
            f"only {frame.height} rows of closes; {min_periods} returns need {min_periods + 1}",
            "load a longer history or lower min_periods",
        )
    prices = frame.select(pl.col(names).cast(pl.Float64).fill_nan(None)).to_numpy().astype(np.float64)
    for j, name in enumerate(names):
        bad_rows = np.flatnonzero(np.isinf(prices[:, j]) | (prices[:, j] <= 0))
        if bad_rows.size:
            raise DataError(
                f"{name}: {bad_rows.size} close(s) not positive and finite, first at "
                f"{frame['timestamp'][int(bad_rows[0])]} ({prices[bad_rows[0], j]})",
                "closes must be positive prices",
            )
    values = np.diff(np.log(prices), axis=0)
    excluded: dict[str, str] = {}
    keep: list[int] = []
    for j, name in enumerate(names):
        count = int(np.isfinite(values[:, j]).sum())
        if np.isnan(prices[:, j]).all():
            excluded[name] = "no prices"
        elif count < min_periods:
            excluded[name] = f"only {count} returns (consecutive closes); min_periods is {min_periods}"
        elif np.nanmax(values[:, j]) == np.nanmin(values[:, j]):
            excluded[name] = "constant price: its correlations are undefined"
        else:
            keep.append(j)
    if not keep:
        reasons = "; ".join(f"{s}: {r}" for s, r in excluded.items())
        raise DataError(f"no symbol has usable returns ({reasons})", "load more history or lower min_periods")
    timestamps = frame.select(_utc_ms("timestamp", frame.schema["timestamp"]))["timestamp"][1:]
    return LogReturns(timestamps, tuple(names[j] for j in keep), values[:, keep], MappingProxyType(excluded))


def correlation_matrix(
    returns: LogReturns | np.ndarray, window: int | None = None, *, min_periods: int = DEFAULT_MIN_PERIODS
) -> np.ndarray:
    """N×N pairwise-complete Pearson matrix of the returns: over the full sample, or with `window` over
    the last `window` rows only (the latest matrix of `rolling_correlation`). Symmetric, unit diagonal,
    NaN for pairs sharing fewer than `min_periods` returns."""
    values = _values(returns)
    if window is not None:
        check_window(window, values.shape[0])
        values, min_periods = values[-window:], min(min_periods, window)
    return correlation_and_counts(values, min_periods)[0]


def rolling_correlation(
    returns: LogReturns, window: int, *, step: int = 1, min_periods: int = DEFAULT_MIN_PERIODS
) -> pl.DataFrame:
    """Correlation of every pair over trailing windows of `window` returns, in long format: columns
    timestamp (window end), symbol_a, symbol_b (a before b in symbol order), corr, n_obs.

    Long format of the upper triangle, every `step`-th window counted back from the last one (so the
    latest is always there), because the full stack of matrices is T·N² floats: a year of 5m bars for
    25 symbols is 66M. The work is O(T·N²) whatever the step (cumulative sums per pair); the output is
    what `step` shrinks. `correlation_matrix(returns, window)` gives the latest matrix directly."""
    check_count("step", step, 1)
    values = centred(returns.values)
    check_window(window, values.shape[0])
    ends = np.arange(values.shape[0] - 1, window - 2, -step)[::-1]
    floor, n_sym = flat_floor(values), len(returns.symbols)
    pairs = [(i, j) for i in range(n_sym) for j in range(i + 1, n_sym)]
    corr = np.empty((ends.size, len(pairs)))
    count = np.empty((ends.size, len(pairs)), dtype=np.int64)
    col = 0
    for i in range(n_sym - 1):
        m = comoments(values[:, [i]], values[:, i + 1 :], window, ends)
        corr[:, col : col + n_sym - 1 - i] = pearson(m, min(min_periods, window), floor[i], floor[i + 1 :])
        count[:, col : col + n_sym - 1 - i] = m.n
        col += n_sym - 1 - i
    names = np.array(returns.symbols)
    a, b = (names[[p[k] for p in pairs]] for k in (0, 1))
    return pl.DataFrame(
        {
            "timestamp": returns.timestamps.gather(np.repeat(ends, len(pairs))),
            "symbol_a": np.tile(a, ends.size),
            "symbol_b": np.tile(b, ends.size),
            "corr": corr.ravel(),
            "n_obs": count.ravel(),
        }
    )


@dataclass(frozen=True)
class Clusters:
    """Cluster ids (1..k, numbered left to right along `order`) and the dendrogram leaf order."""

    labels: Mapping[str, int]
    order: tuple[str, ...]
    linkage: np.ndarray  # scipy linkage matrix, (N-1)×4


def hierarchical_clusters(
    corr: np.ndarray,
    symbols: Sequence[str],
    *,
    max_clusters: int | None = None,
    distance_threshold: float | None = None,
) -> Clusters:
    """Average-linkage clusters on the Mantegna distance d = √(2(1-ρ)), a metric (0 for ρ=1, √2 for
    uncorrelated, 2 for ρ=-1). Cut at `max_clusters` or at `distance_threshold` (default 1.0, ρ≈0.5);
    give at most one. A NaN correlation (too little overlap) counts as 0: the uninformative distance √2.
    Clusters are subtrees, hence contiguous in `order`, which is what the heatmap draws as blocks."""
    if max_clusters is not None and distance_threshold is not None:
        raise ConfigError("give max_clusters or distance_threshold, not both")
    corr = np.asarray(corr, dtype=np.float64)
    if corr.shape != (len(symbols), len(symbols)):
        raise DataError(f"correlation matrix is {corr.shape} for {len(symbols)} symbols", "match the shapes")
    if len(symbols) < 2:
        return Clusters(MappingProxyType(dict.fromkeys(symbols, 1)), tuple(symbols), np.empty((0, 4)))
    rho = np.nan_to_num((corr + corr.T) / 2, nan=0.0)
    distance = np.sqrt(np.clip(2.0 * (1.0 - rho), 0.0, 4.0))
    np.fill_diagonal(distance, 0.0)
    tree = hierarchy.linkage(squareform(distance, checks=False), method="average", optimal_ordering=True)
    if max_clusters is not None:
        check_count("max_clusters", max_clusters, 1)
        raw = hierarchy.fcluster(tree, t=max_clusters, criterion="maxclust")
    else:
        threshold = DEFAULT_DISTANCE if distance_threshold is None else distance_threshold
        raw = hierarchy.fcluster(tree, t=threshold, criterion="distance")
    leaves = hierarchy.leaves_list(tree)
    renumber: dict[int, int] = {}
    for leaf in leaves:
        renumber.setdefault(int(raw[leaf]), len(renumber) + 1)
    labels = {symbols[i]: renumber[int(raw[i])] for i in range(len(symbols))}
    return Clusters(MappingProxyType(labels), tuple(symbols[i] for i in leaves), tree)


def _values(returns: LogReturns | np.ndarray) -> np.ndarray:
    values = returns.values if isinstance(returns, LogReturns) else np.asarray(returns, dtype=np.float64)
    if values.ndim != 2:
        raise DataError(f"returns must be a T×N matrix, got shape {values.shape}", "one column per symbol")
    return values
