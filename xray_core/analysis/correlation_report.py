"""One call from aligned closes to everything the correlation analysis says, as an immutable report.

`correlation_report` computes the full-sample matrix and clusters (the part that must succeed), then
the optional parts: the latest-window matrix and betas, betas and lead-lag to the benchmark. An
optional part that cannot be computed (benchmark missing or excluded, window longer than the data,
max_lag too long) is skipped with its reason in `report.skipped` instead of failing the report: a
Dagster asset should still publish the matrix when BTC/USDT is missing. `to_tables()` returns the
report as flat polars frames with fixed schemas (empty frames for skipped parts), ready for storage.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import TypeVar

import numpy as np
import polars as pl

from xray_core.analysis._comoments import check_window, correlation_and_counts
from xray_core.analysis.correlation import (
    DEFAULT_MIN_PERIODS,
    UTC_MS,
    hierarchical_clusters,
    log_returns_matrix,
)
from xray_core.analysis.correlation_benchmark import DEFAULT_BENCHMARK, beta_to, lead_lag
from xray_core.errors import DataError

T = TypeVar("T")

BETA_SCHEMA = pl.Schema(
    {"sample": pl.String, "symbol": pl.String, "beta": pl.Float64, "corr": pl.Float64, "r2": pl.Float64,
     "n_obs": pl.Int64}
)
LEAD_LAG_SCHEMA = pl.Schema(
    {"symbol": pl.String, "best_lag": pl.Int64, "corr_at_best_lag": pl.Float64, "corr_at_zero": pl.Float64,
     "n_obs": pl.Int64, "leads": pl.String}
)
SUMMARY_TYPES = {"start": UTC_MS, "end": UTC_MS, "window": pl.Int64()}
CLUSTER_SCHEMA = pl.Schema({"symbol": pl.String, "cluster": pl.Int64, "position": pl.Int64})
PAIR_SCHEMA = pl.Schema(
    {"sample": pl.String, "symbol_a": pl.String, "symbol_b": pl.String, "corr": pl.Float64, "n_obs": pl.Int64}
)


@dataclass(frozen=True)
class CorrelationReport:
    """The correlation structure of a set of symbols over one period.

    Matrices are wide frames: a `symbol` column, then one column per symbol, rows and columns in
    `symbols` order (the input's). "recent" parts cover the last `window` returns and are None without
    a window. `betas`/`lead_lag` are None when skipped; `skipped` says why, `excluded` says which
    symbols were left out and why."""

    symbols: tuple[str, ...]
    start: datetime  # bar time of the first return (the bar of its later close)
    end: datetime
    n_returns: int
    min_periods: int
    correlation: pl.DataFrame
    observations: pl.DataFrame  # shared returns per pair: what each correlation rests on
    clusters: Mapping[str, int]  # symbol -> cluster id, 1..k left to right along `order`
    order: tuple[str, ...]  # dendrogram leaf order, for the heatmap
    benchmark: str
    betas: pl.DataFrame | None  # symbol, beta, corr, r2, n_obs
    lead_lag: pl.DataFrame | None  # symbol, best_lag, corr_at_best_lag, corr_at_zero, n_obs, leads
    max_lag: int
    window: int | None
    recent_correlation: pl.DataFrame | None
    recent_observations: pl.DataFrame | None
    recent_betas: pl.DataFrame | None
    excluded: Mapping[str, str]  # symbol -> reason
    skipped: Mapping[str, str]  # part ("recent", "betas", "recent_betas", "lead_lag") -> reason

    def matrix(self, recent: bool = False) -> np.ndarray:
        """The correlation matrix as an N×N array in `symbols` order."""
        frame = self.recent_correlation if recent else self.correlation
        if frame is None:
            raise DataError("the report has no recent matrix", self.skipped.get("recent", "pass a window"))
        return frame.select(self.symbols).to_numpy()

    def to_tables(self) -> dict[str, pl.DataFrame]:
        """Flat frames for storage, same schemas whatever was skipped: summary (one row), correlation
        (long: sample "full"/"recent", symbol_a, symbol_b, corr, n_obs for every ordered pair),
        clusters, betas (with sample), lead_lag, excluded, skipped."""
        pairs = [_long("full", self.correlation, self.observations)]
        if self.recent_correlation is not None and self.recent_observations is not None:
            pairs.append(_long("recent", self.recent_correlation, self.recent_observations))
        samples = (("full", self.betas), ("recent", self.recent_betas))
        betas = [f.select(pl.lit(sample).alias("sample"), pl.all()) for sample, f in samples if f is not None]
        summary = {
            "start": [self.start], "end": [self.end], "n_returns": [self.n_returns],
            "n_symbols": [len(self.symbols)], "n_clusters": [len(set(self.clusters.values()))],
            "benchmark": [self.benchmark], "window": [self.window], "max_lag": [self.max_lag],
            "min_periods": [self.min_periods],
        }
        clusters = {"symbol": list(self.order), "cluster": [self.clusters[s] for s in self.order],
                    "position": list(range(len(self.order)))}
        return {
            "summary": pl.DataFrame(summary, schema_overrides=SUMMARY_TYPES),
            "correlation": _stack(PAIR_SCHEMA, pairs),
            "clusters": pl.DataFrame(clusters, schema=CLUSTER_SCHEMA),
            "betas": _stack(BETA_SCHEMA, betas),
            "lead_lag": _stack(LEAD_LAG_SCHEMA, [] if self.lead_lag is None else [self.lead_lag]),
            "excluded": _reasons("symbol", self.excluded),
            "skipped": _reasons("part", self.skipped),
        }


def correlation_report(
    closes: pl.DataFrame,
    *,
    benchmark: str = DEFAULT_BENCHMARK,
    window: int | None = None,
    max_lag: int = 12,
    min_periods: int = DEFAULT_MIN_PERIODS,
    max_clusters: int | None = None,
    distance_threshold: float | None = None,
) -> CorrelationReport:
    """Analyse aligned closes (see `correlation` for the input and missing-data policy).

    Raises DataError when the data are malformed or fewer than two symbols are usable; everything
    optional degrades to a reason in `skipped`. `window` (returns) adds the latest-window matrix and
    betas — e.g. 288 for the last day of 5m bars."""
    returns = log_returns_matrix(closes, min_periods=min_periods)
    if len(returns.symbols) < 2:
        reasons = "; ".join(f"{s}: {r}" for s, r in returns.excluded.items())
        raise DataError(f"need two usable symbols, have {list(returns.symbols)} ({reasons})",
                        "add symbols or load more history")
    corr, counts = correlation_and_counts(returns.values, min_periods)
    clusters = hierarchical_clusters(corr, returns.symbols, max_clusters=max_clusters,
                                     distance_threshold=distance_threshold)
    skipped: dict[str, str] = {}
    recent = None if window is None else _attempt(
        "recent", skipped, lambda: _recent_matrix(returns.values, window, min_periods))
    betas = _attempt("betas", skipped, lambda: beta_to(returns, benchmark, min_periods=min_periods))
    recent_betas = None if window is None or recent is None else _attempt(
        "recent_betas", skipped, lambda: beta_to(returns, benchmark, window=window, min_periods=min_periods))
    leads = _attempt("lead_lag", skipped,
                     lambda: lead_lag(returns, benchmark, max_lag, min_periods=min_periods))
    return CorrelationReport(
        symbols=returns.symbols,
        start=returns.timestamps[0],
        end=returns.timestamps[-1],
        n_returns=returns.values.shape[0],
        min_periods=min_periods,
        correlation=_wide(corr, returns.symbols),
        observations=_wide(counts, returns.symbols),
        clusters=clusters.labels,
        order=clusters.order,
        benchmark=benchmark,
        betas=betas,
        lead_lag=leads,
        max_lag=max_lag,
        window=window,
        recent_correlation=None if recent is None else _wide(recent[0], returns.symbols),
        recent_observations=None if recent is None else _wide(recent[1], returns.symbols),
        recent_betas=recent_betas,
        excluded=returns.excluded,
        skipped=MappingProxyType(skipped),
    )


def _attempt(part: str, skipped: dict[str, str], compute: Callable[[], T]) -> T | None:
    """An optional part of the report: its value, or None with the DataError's message in `skipped`."""
    try:
        return compute()
    except DataError as exc:
        skipped[part] = str(exc)
        return None


def _recent_matrix(values: np.ndarray, window: int, min_periods: int) -> tuple[np.ndarray, np.ndarray]:
    check_window(window, values.shape[0])
    return correlation_and_counts(values[-window:], min(min_periods, window))


def _wide(matrix: np.ndarray, symbols: tuple[str, ...]) -> pl.DataFrame:
    return pl.DataFrame({"symbol": list(symbols), **{s: matrix[:, j] for j, s in enumerate(symbols)}})


def _long(sample: str, corr: pl.DataFrame, counts: pl.DataFrame) -> pl.DataFrame:
    def melt(frame: pl.DataFrame, value: str) -> pl.DataFrame:
        # columns outermost, so with a symmetric matrix symbol_a varies slowest
        return frame.unpivot(index="symbol", variable_name="symbol_a", value_name=value).rename(
            {"symbol": "symbol_b"})

    return melt(corr, "corr").join(melt(counts, "n_obs"), on=["symbol_a", "symbol_b"]).select(
        pl.lit(sample).alias("sample"), "symbol_a", "symbol_b", "corr", "n_obs")


def _stack(schema: pl.Schema, frames: list[pl.DataFrame]) -> pl.DataFrame:
    """The frames in one table of exactly `schema`, empty but typed when there are none."""
    return pl.concat([pl.DataFrame(schema=schema), *(f.select(schema.names()).cast(schema) for f in frames)])


def _reasons(key: str, reasons: Mapping[str, str]) -> pl.DataFrame:
    return pl.DataFrame({key: list(reasons), "reason": list(reasons.values())},
                        schema={key: pl.String, "reason": pl.String})
