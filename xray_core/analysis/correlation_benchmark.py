"""How each symbol relates to one benchmark (BTC/USDT by default): beta, and who moves first.

Same inputs and missing-data policy as `correlation` (pairwise-complete log returns, NaN below
`min_periods` shared returns). The benchmark itself gets no row.

Lag sign convention
    xcorr(k) = corr(r_benchmark[t - k], r_symbol[t]), over the t where both returns exist.
    k > 0: the benchmark's return k bars ago goes with the symbol's return now, so the benchmark leads
    by k bars (e.g. symbol = benchmark delayed by 2 bars peaks at k = +2); k < 0: the symbol leads by
    |k| bars; k = 0: they move in the same bar.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import polars as pl

from xray_core.analysis._comoments import (
    CoMoments,
    centred,
    check_count,
    check_window,
    comoments,
    flat_floor,
    pearson,
)
from xray_core.analysis.correlation import DEFAULT_MIN_PERIODS, LogReturns
from xray_core.errors import DataError

DEFAULT_BENCHMARK = "BTC/USDT"
LEAD_Z = 3.0  # a lead must beat 3 standard errors of a zero correlation (1/√n), else it is noise


def beta_to(
    returns: LogReturns,
    benchmark: str = DEFAULT_BENCHMARK,
    *,
    window: int | None = None,
    min_periods: int = DEFAULT_MIN_PERIODS,
) -> pl.DataFrame:
    """OLS r_symbol = α + β·r_benchmark + ε for every other symbol, over the full sample or the last
    `window` returns: columns symbol, beta, corr, r2 (= corr², the share of variance the benchmark
    explains), n_obs. Beta sizes a hedge; corr and r2 say how much risk that hedge removes."""
    b, others = benchmark_index(returns, benchmark)
    values = returns.values
    if window is not None:
        check_window(window, values.shape[0])
        values, min_periods = values[-window:], min(min_periods, window)
    values = centred(values)
    m = comoments(values[:, [b]], values[:, others])
    keys = {"symbol": [returns.symbols[j] for j in others]}
    return _beta_frame(keys, m, flat_floor(values), b, np.array(others), min_periods)


def rolling_beta(
    returns: LogReturns,
    window: int,
    benchmark: str = DEFAULT_BENCHMARK,
    *,
    step: int = 1,
    min_periods: int = DEFAULT_MIN_PERIODS,
) -> pl.DataFrame:
    """`beta_to` over trailing windows of `window` returns, every `step`-th counted back from the last
    (so the latest is always there), long format: timestamp (window end), symbol, beta, corr, r2, n_obs.
    Long rather than a T×N matrix per statistic so it stores as one table and filters by symbol."""
    check_count("step", step, 1)
    b, others = benchmark_index(returns, benchmark)
    values = centred(returns.values)
    check_window(window, values.shape[0])
    ends = np.arange(values.shape[0] - 1, window - 2, -step)[::-1]
    m = CoMoments(*(a.ravel() for a in comoments(values[:, [b]], values[:, others], window, ends)))
    keys = {
        "timestamp": returns.timestamps.gather(np.repeat(ends, len(others))),
        "symbol": np.tile(np.array(returns.symbols)[others], ends.size),
    }
    return _beta_frame(keys, m, flat_floor(values), b, np.tile(others, ends.size), min(min_periods, window))


def cross_correlation(
    returns: LogReturns,
    benchmark: str = DEFAULT_BENCHMARK,
    max_lag: int = 12,
    *,
    min_periods: int = DEFAULT_MIN_PERIODS,
) -> pl.DataFrame:
    """xcorr(k) for k in -max_lag..max_lag (see the module's sign convention), pairwise-complete:
    columns symbol, lag, corr, n_obs, sorted by symbol and lag — the whole profile, for plots."""
    check_count("max_lag", max_lag, 0)
    b, others = benchmark_index(returns, benchmark)
    values = centred(returns.values)
    rows = values.shape[0]
    if rows - max_lag < min_periods:
        raise DataError(f"max_lag {max_lag} leaves under {min_periods} of {rows} returns", "lower max_lag")
    floor = flat_floor(values)
    parts = []
    for lag in range(-max_lag, max_lag + 1):
        # pair benchmark row t - lag with symbol row t
        past, now = (values[: rows - lag], values[lag:]) if lag >= 0 else (values[-lag:], values[:lag])
        m = comoments(past[:, [b]], now[:, others])
        parts.append(pl.DataFrame({
            "symbol": [returns.symbols[j] for j in others],
            "lag": np.full(len(others), lag, dtype=np.int64),
            "corr": pearson(m, min_periods, floor[b], floor[others]),
            "n_obs": m.n.astype(np.int64),
        }))
    return pl.concat(parts).sort("symbol", "lag")


def lead_lag(
    returns: LogReturns,
    benchmark: str = DEFAULT_BENCHMARK,
    max_lag: int = 12,
    *,
    min_periods: int = DEFAULT_MIN_PERIODS,
) -> pl.DataFrame:
    """Per symbol, the lag of highest |xcorr| (ties go to the smaller |lag|): columns symbol, best_lag,
    corr_at_best_lag, corr_at_zero, n_obs, leads. `leads` is "benchmark" for a positive best lag,
    "symbol" for a negative one, and "none" when the best lag is 0, the correlation is NaN or
    |corr| < LEAD_Z/√n_obs — among 2·max_lag+1 lags of pure noise one always looks best."""
    xcorr = cross_correlation(returns, benchmark, max_lag, min_periods=min_periods)
    best = (
        xcorr.with_columns(strength=pl.col("corr").abs().fill_nan(None), distance=pl.col("lag").abs())
        .sort(["strength", "distance", "lag"], descending=[True, False, False], nulls_last=True)
        .group_by("symbol")
        .first()
    )
    zero = xcorr.filter(pl.col("lag") == 0).select("symbol", corr_at_zero=pl.col("corr"))
    z_score = pl.col("corr").abs() * pl.col("n_obs").cast(pl.Float64).sqrt()
    noise = pl.col("corr").is_nan() | (z_score < LEAD_Z)
    leads = (
        pl.when(noise | (pl.col("lag") == 0))
        .then(pl.lit("none"))
        .when(pl.col("lag") > 0)
        .then(pl.lit("benchmark"))
        .otherwise(pl.lit("symbol"))
    )
    summary = best.join(zero, on="symbol").select(
        "symbol",
        best_lag=pl.col("lag"),
        corr_at_best_lag=pl.col("corr"),
        corr_at_zero=pl.col("corr_at_zero"),
        n_obs=pl.col("n_obs"),
        leads=leads,
    )
    order = pl.DataFrame({"symbol": [returns.symbols[j] for j in benchmark_index(returns, benchmark)[1]]})
    return order.join(summary, on="symbol", how="left", maintain_order="left")


def benchmark_index(returns: LogReturns, benchmark: str) -> tuple[int, list[int]]:
    """Column of the benchmark and of every other symbol; DataError saying why it is unusable."""
    if benchmark not in returns.symbols:
        why = returns.excluded.get(benchmark, "not a column of the closes")
        raise DataError(f"benchmark {benchmark} has no usable returns ({why})", "pick another benchmark")
    b = returns.symbols.index(benchmark)
    return b, [j for j in range(len(returns.symbols)) if j != b]


def _beta_frame(
    keys: Mapping[str, object], m: CoMoments, floor: np.ndarray, b: int, others: np.ndarray, min_periods: int
) -> pl.DataFrame:
    """beta = Σ(x-x̄)(y-ȳ) / Σ(x-x̄)² with x the benchmark; NaN wherever the correlation is."""
    corr = pearson(m, min_periods, floor[b], floor[others])
    with np.errstate(invalid="ignore", divide="ignore"):
        beta = np.where(np.isfinite(corr), m.cov / m.var_x, np.nan)
    return pl.DataFrame({**keys, "beta": beta, "corr": corr, "r2": corr**2, "n_obs": m.n.astype(np.int64)})
