"""The fused SMA-cross grid: every (symbol, fast, slow) backtested in one parallel pass.

Why a separate kernel when `run_many` exists: a parameter grid through the generic engine would
materialise a bars x runs matrix of targets (and vectorbt additionally a matrix of moving averages,
orders and values per run). Here each distinct period's moving average is computed once per symbol
(an O(n) rolling sum) and shared by every combination that uses it; each combination derives its
target from the two averages (long while SMA(fast) > SMA(slow) on the close, short while below in
long_short mode, flat on a tie or during the NaN warm-up) in the same `kernels.simulate` the generic
engine uses, so both give identical numbers. With at least two symbols per thread, each thread takes
whole symbols (`_grid_by_symbol`): the symbol's averages are computed and then read by all its
combinations while they are in cache, and one index buffer serves them all. With fewer symbols the
combinations themselves are shared out (`_grid_kernel`), ordered by symbol.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numba
import numpy as np
import polars as pl
from numba import njit, prange

from xray_core.backtest.config import BacktestConfig, SimParams
from xray_core.backtest.engine import MIN_BARS, Prices, checked_atr, metrics_frame
from xray_core.backtest.kernels import simulate
from xray_core.backtest.metrics import N_METRICS, Calendar
from xray_core.backtest.series import Bars, series_bars, symbol_bars
from xray_core.backtest.signals import Signal
from xray_core.backtest.trades import N_FIELDS
from xray_core.errors import ConfigError, DataError


@njit(cache=True, nogil=True)
def _running_sum(values: np.ndarray, out: np.ndarray) -> None:
    total = 0.0
    for i in range(values.shape[0]):
        total = total + values[i]
        out[i] = total


@njit(cache=True, nogil=True)
def _means_from_sums(sums: np.ndarray, window: int, out: np.ndarray) -> None:
    """SMA(window) from running sums: NaN for the first window - 1 bars, then window-sum / window.

    Operation for operation what vectorbt's `rolling_mean_1d_nb` (behind `vbt.MA`) computes, so the
    crossings match vectorbt's bit for bit; `out` may be `sums` itself (it is filled from the end)."""
    n = sums.shape[0]
    w = float(window)
    for i in range(n - 1, window - 1, -1):
        out[i] = (sums[i] - sums[i - window]) / w
    if window <= n:
        out[window - 1] = sums[window - 1] / w
    for i in range(min(window - 1, n)):
        out[i] = np.nan


@njit(cache=True, nogil=True)
def rolling_mean(values: np.ndarray, window: int, out: np.ndarray) -> None:
    """Simple moving average of `values` into `out` (see `_means_from_sums`)."""
    _running_sum(values, out)
    _means_from_sums(out, window, out)


@njit(cache=True, parallel=True)
def _moving_averages(close: np.ndarray, bounds: np.ndarray, periods: np.ndarray, out: np.ndarray) -> None:
    """SMA of every period for every symbol, from one running sum per symbol; symbol k's SMA for
    periods[p] lies in out[p * len(close) + bounds[k] : p * len(close) + bounds[k + 1]]."""
    n_total = close.shape[0]
    n_sym = bounds.shape[0] - 1
    sums = np.empty(n_total, dtype=np.float64)
    for k in prange(n_sym):
        _running_sum(close[bounds[k] : bounds[k + 1]], sums[bounds[k] : bounds[k + 1]])
    for job in prange(n_sym * periods.shape[0]):
        k = job // periods.shape[0]
        p = job % periods.shape[0]
        lo, hi = bounds[k], bounds[k + 1]
        _means_from_sums(sums[lo:hi], periods[p], out[p * n_total + lo : p * n_total + hi])


@njit(cache=True)
def _metrics_only() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The empty targets, equity and trade buffers of a grid run (its targets come from the averages,
    and it keeps only metrics). Allocated once per kernel call, not per run: that costs measurably."""
    return (
        np.empty(0, dtype=np.int8),
        np.empty(0, dtype=np.float64),
        np.empty((0, N_FIELDS), dtype=np.float64),
    )


class Layout(NamedTuple):
    """How the grid's runs are laid out: symbol k's bars at bounds[k]:bounds[k + 1] with its calendar
    (bars_per_year[k], years[k]); combination c pairs periods[fast_idx[c]] with periods[slow_idx[c]]."""

    bounds: np.ndarray
    periods: np.ndarray
    fast_idx: np.ndarray
    slow_idx: np.ndarray
    bars_per_year: np.ndarray
    years: np.ndarray


@njit(cache=True, parallel=True)
def _grid_kernel(bars: Bars, layout: Layout, sma: np.ndarray, params: SimParams, out: np.ndarray) -> None:
    """Metrics of combination c on symbol k into out[k * n_combos + c], from the averages in `sma`
    (see `_moving_averages`).

    Jobs are numbered symbol-major, so each thread's contiguous share of them walks few symbols and
    their prices and averages stay in cache across that symbol's combinations."""
    bounds, fast_idx, slow_idx = layout.bounds, layout.fast_idx, layout.slow_idx
    n_total = bars.close.shape[0]
    n_combos = fast_idx.shape[0]
    no_targets, no_equity, no_trades = _metrics_only()
    for job in prange((bounds.shape[0] - 1) * n_combos):
        k = job // n_combos
        c = job % n_combos
        lo, hi = bounds[k], bounds[k + 1]
        f0 = fast_idx[c] * n_total
        s0 = slow_idx[c] * n_total
        changes = np.empty(hi - lo + 1, dtype=np.int64)
        signal = Signal(no_targets, sma[f0 + lo : f0 + hi], sma[s0 + lo : s0 + hi], True)
        series = symbol_bars(bars, bounds, k)
        calendar = layout.bars_per_year[k], layout.years[k]
        simulate(series, signal, params, *calendar, changes, out[job], no_equity, no_trades)


@njit(cache=True, parallel=True)
def _grid_by_symbol(bars: Bars, layout: Layout, params: SimParams, out: np.ndarray) -> None:
    """Symbol by symbol, in parallel: a symbol's averages (one running sum, then each period's mean, in a
    block that stays in cache) and then every combination on them; the same `simulate` as `_grid_kernel`,
    so both give identical numbers."""
    periods, fast_idx, slow_idx = layout.periods, layout.fast_idx, layout.slow_idx
    n_combos = fast_idx.shape[0]
    no_targets, no_equity, no_trades = _metrics_only()
    for k in prange(layout.bounds.shape[0] - 1):
        series = symbol_bars(bars, layout.bounds, k)
        n = series.close.shape[0]
        sums = np.empty(n, dtype=np.float64)
        _running_sum(series.close, sums)
        sma = np.empty((periods.shape[0], n), dtype=np.float64)
        for p in range(periods.shape[0]):
            _means_from_sums(sums, periods[p], sma[p])
        changes = np.empty(n + 1, dtype=np.int64)  # reused by the symbol's combinations
        calendar = layout.bars_per_year[k], layout.years[k]
        for c in range(n_combos):
            signal = Signal(no_targets, sma[fast_idx[c]], sma[slow_idx[c]], True)
            row = out[k * n_combos + c]
            simulate(series, signal, params, *calendar, changes, row, no_equity, no_trades)


def sma_cross_grid(
    prices: Mapping[str, Prices | pl.DataFrame],
    fast_periods: Sequence[int],
    slow_periods: Sequence[int],
    config: BacktestConfig,
    atr: Mapping[str, np.ndarray] | None = None,
) -> pl.DataFrame:
    """Backtest SMA(fast)/SMA(slow) crossings for every symbol and every fast < slow pair.

    `prices` maps each symbol to its `Prices` or candle frame (xray_core.candles.schema). Returns one row
    per (symbol, fast, slow) with the metrics of `metrics.METRIC_NAMES`, in the order symbols, then
    fast, then slow. `atr` (per symbol) is needed only when the config sets stops."""
    fast = _periods(fast_periods, "fast_periods")
    slow = _periods(slow_periods, "slow_periods")
    pairs = [(f, s) for f in fast for s in slow if f < s]
    if not pairs:
        raise ConfigError("no fast < slow pair in the grid", "give fast periods shorter than slow ones")
    if not prices:
        raise DataError("no symbols to backtest", "pass at least one symbol's prices")
    by_symbol = {
        symbol: p if isinstance(p, Prices) else Prices.from_frame(p, symbol) for symbol, p in prices.items()
    }
    symbols = list(by_symbol)
    longest = max(s for _, s in pairs)
    for symbol in symbols:
        if len(by_symbol[symbol]) < max(MIN_BARS, longest + 1):
            raise DataError(
                f"{symbol}: {len(by_symbol[symbol])} bars are too few for SMA({longest})",
                f"give at least {longest + 1} bars or shorter periods",
            )
    periods = np.array(sorted({p for pair in pairs for p in pair}), dtype=np.int64)
    where = {int(p): i for i, p in enumerate(periods)}
    fast_idx = np.array([where[f] for f, _ in pairs], dtype=np.int64)
    slow_idx = np.array([where[s] for _, s in pairs], dtype=np.int64)

    series = [by_symbol[s] for s in symbols]
    bounds = np.zeros(len(series) + 1, dtype=np.int64)
    bounds[1:] = np.cumsum([len(p) for p in series])
    fields = ("open", "high", "low", "close") if config.needs_high_low else ("open", "close")
    flat = {f: np.concatenate([getattr(p, f) for p in series]) for f in fields}
    nothing = np.empty(0, dtype=np.float64)  # high/low are read only when a level can trigger
    if config.uses_stops:
        if atr is None:
            raise ConfigError("sl_atr/tp_atr are set but no ATR was passed", "pass atr={symbol: array}")
        atr_flat = np.concatenate(
            [checked_atr(atr.get(s), config, len(by_symbol[s]), f"{s} atr") for s in symbols]
        )
    else:
        atr_flat = np.empty(0, dtype=np.float64)
    calendars = [Calendar.from_timestamps(p.timestamps_ms) for p in series]
    bars_per_year = np.array([c.bars_per_year for c in calendars])
    years = np.array([c.years for c in calendars])
    layout = Layout(bounds, periods, fast_idx, slow_idx, bars_per_year, years)

    table = np.empty((len(symbols) * len(pairs), N_METRICS), dtype=np.float64)
    high, low = (flat.get(f, nothing) for f in ("high", "low"))
    bars = series_bars(flat["open"], high, low, flat["close"], atr_flat, bounds)
    params = config.sim_params()
    if len(symbols) >= 2 * numba.get_num_threads():
        # Enough symbols to share out: each thread computes one symbol's averages and runs all its
        # combinations while they are in cache (~20% faster than sharing combinations out).
        _grid_by_symbol(bars, layout, params, table)
    else:
        sma = np.empty(len(periods) * bars.close.shape[0], dtype=np.float64)
        _moving_averages(bars.close, bounds, periods, sma)
        _grid_kernel(bars, layout, sma, params, table)
    symbol_of_row = np.repeat(np.arange(len(symbols)), len(pairs))
    keys = pl.DataFrame(
        {
            "symbol": pl.Series(symbols, dtype=pl.String).gather(symbol_of_row),
            "fast": np.tile(np.array([f for f, _ in pairs], dtype=np.int64), len(symbols)),
            "slow": np.tile(np.array([s for _, s in pairs], dtype=np.int64), len(symbols)),
        }
    )
    return pl.concat([keys, metrics_frame(table)], how="horizontal")


def sma_cross_positions(close: np.ndarray, fast: int, slow: int, long_short: bool = False) -> np.ndarray:
    """The grid's targets for one pair as an int8 series (+1 while SMA(fast) > SMA(slow), -1 while
    below when `long_short`, else 0), computed with the grid's own moving average: feed it to
    `run_backtest` to reproduce a grid row exactly."""
    values = np.ascontiguousarray(close, dtype=np.float64)
    sma_fast = np.empty_like(values)
    sma_slow = np.empty_like(values)
    rolling_mean(values, int(fast), sma_fast)
    rolling_mean(values, int(slow), sma_slow)
    targets = np.zeros(values.shape[0], dtype=np.int8)
    targets[sma_fast > sma_slow] = 1
    if long_short:
        targets[sma_fast < sma_slow] = -1
    return targets


def _periods(values: Sequence[int], name: str) -> list[int]:
    periods = sorted({int(v) for v in values})
    if not periods or periods[0] < 1 or any(int(v) != v for v in values):
        raise ConfigError(
            f"{name} must be positive whole numbers of bars, got {list(values)!r}",
            "e.g. fast 5..50, slow 20..200",
        )
    return periods
