"""The generic engine: any target-position series (or a matrix of them) over one price series.

This layer checks inputs and shapes outputs; the trading itself is `kernels.simulate`. Inputs are
validated once per call, with errors that name the offending array, so that a kernel never sees a
NaN price or a mismatched length it would silently turn into a wrong number.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from xray_core.backtest.config import BacktestConfig
from xray_core.backtest.kernels import run_many_kernel
from xray_core.backtest.metrics import METRIC_NAMES, N_METRICS, N_TRADES, Calendar, Metrics
from xray_core.backtest.series import series_bars
from xray_core.backtest.trades import N_FIELDS, trades_frame
from xray_core.errors import ConfigError, DataError

MIN_BARS = 2  # one bar to signal on, one to fill at


@dataclass(frozen=True, slots=True)
class Prices:
    """One symbol's bars as validated float64 arrays (timestamps: bar open times, ms since the epoch)."""

    timestamps_ms: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray

    def __len__(self) -> int:
        return int(self.close.shape[0])

    @classmethod
    def from_arrays(
        cls,
        open_: np.ndarray,
        high: np.ndarray,
        low: np.ndarray,
        close: np.ndarray,
        timestamps_ms: np.ndarray,
        source: str = "prices",
    ) -> Prices:
        arrays = {
            name: _float_array(value, name, source)
            for name, value in (("open", open_), ("high", high), ("low", low), ("close", close))
        }
        n = arrays["close"].shape[0]
        for name, arr in arrays.items():
            if arr.shape[0] != n:
                raise DataError(
                    f"{source}: {name} has {arr.shape[0]} bars but close has {n}",
                    "pass arrays of the same bars",
                )
            bad = ~(np.isfinite(arr) & (arr > 0))
            if bad.any():
                i = int(np.argmax(bad))
                raise DataError(
                    f"{source}: {name}[{i}] = {float(arr[i])!r} is not a positive finite price",
                    "drop or repair bad bars first (xray_core.candles.quality)",
                )
        if n < MIN_BARS:
            raise DataError(
                f"{source}: {n} bar(s) is too few for a backtest",
                f"it needs at least {MIN_BARS}: a bar to signal on and one to fill at",
            )
        stamps = np.asarray(timestamps_ms)
        if stamps.ndim != 1 or stamps.shape[0] != n or not np.issubdtype(stamps.dtype, np.integer):
            raise DataError(
                f"{source}: timestamps_ms must be {n} integer milliseconds, got "
                f"{stamps.dtype} of shape {stamps.shape}",
                "pass the bars' open times in ms",
            )
        stamps = stamps.astype(np.int64)
        if not (np.diff(stamps) > 0).all():
            raise DataError(
                f"{source}: timestamps are not strictly increasing", "sort the bars and drop duplicates first"
            )
        return cls(stamps, arrays["open"], arrays["high"], arrays["low"], arrays["close"])

    @classmethod
    def from_frame(cls, frame: pl.DataFrame, source: str = "candles") -> Prices:
        """From a candle frame (xray_core.candles.schema)."""
        stamps = frame["timestamp"].cast(pl.Datetime("ms", "UTC")).dt.epoch("ms").to_numpy()
        return cls.from_arrays(
            frame["open"].to_numpy(),
            frame["high"].to_numpy(),
            frame["low"].to_numpy(),
            frame["close"].to_numpy(),
            stamps,
            source,
        )


@dataclass(frozen=True, slots=True)
class BacktestResult:
    """One run: its metrics, the equity at every bar's close, and the trades when asked for."""

    metrics: Metrics
    equity: np.ndarray
    trades: pl.DataFrame | None


@dataclass(frozen=True, slots=True)
class RunsResult:
    """Many runs: one metrics row per run (column `run`), and their trades when asked for."""

    metrics: pl.DataFrame
    trades: pl.DataFrame | None


def run_backtest(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    timestamps_ms: np.ndarray,
    positions: np.ndarray,
    config: BacktestConfig,
    atr: np.ndarray | None = None,
    with_trades: bool = False,
) -> BacktestResult:
    """Backtest one series of target positions (+1/0/-1 per bar, decided at that bar's close)."""
    prices = Prices.from_arrays(open_, high, low, close, timestamps_ms)
    targets = _targets(positions, len(prices), ndim=1)
    table, equity, records = _run(prices, targets[None, :], config, atr, with_trades, keep_equity=True)
    trades = trades_frame(records, prices.timestamps_ms) if with_trades else None
    return BacktestResult(Metrics.from_row(table[0]), equity[0], trades)


def run_many(
    prices: Prices, positions: np.ndarray, config: BacktestConfig, atr: np.ndarray | None = None,
    with_trades: bool = False,
) -> RunsResult:
    """Backtest every column of `positions` (bars x runs) over the same prices (`Prices.from_arrays`,
    validated once for all the runs), in parallel."""
    targets = np.ascontiguousarray(_targets(positions, len(prices), ndim=2).T)
    table, _, records = _run(prices, targets, config, atr, with_trades, keep_equity=False)
    frame = metrics_frame(table).with_row_index("run").with_columns(pl.col("run").cast(pl.Int64))
    trades = None
    if with_trades:
        run = np.repeat(np.arange(table.shape[0]), table[:, N_TRADES].astype(np.int64))
        trades = trades_frame(records, prices.timestamps_ms, run)
    return RunsResult(frame, trades)


def metrics_frame(table: np.ndarray) -> pl.DataFrame:
    """A (runs x N_METRICS) table as a frame with one column per metric."""
    columns = {name: table[:, k] for k, name in enumerate(METRIC_NAMES)}
    frame = pl.DataFrame(columns)
    return frame.with_columns(pl.col("n_trades").cast(pl.Int64))


def checked_atr(atr: np.ndarray | None, config: BacktestConfig, n: int, source: str = "atr") -> np.ndarray:
    """The ATR array the kernels need: empty without stops, else n finite-or-NaN non-negative values."""
    if not config.uses_stops:
        return np.empty(0, dtype=np.float64)
    if atr is None:
        raise ConfigError(
            "sl_atr/tp_atr are set but no ATR was passed",
            "pass atr= (the ATR at each bar, NaN during warm-up) or unset the stops",
        )
    values = _float_array(atr, "atr", source)
    if values.shape[0] != n:
        raise DataError(
            f"{source}: atr has {values.shape[0]} bars but the prices have {n}",
            "compute the ATR over the same bars",
        )
    if (values < 0).any() or np.isinf(values).any():
        raise DataError(f"{source}: atr has negative or infinite values", "an ATR is >= 0 or NaN")
    return values


def _run(
    prices: Prices,
    targets: np.ndarray,
    config: BacktestConfig,
    atr: np.ndarray | None,
    with_trades: bool,
    keep_equity: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run the kernel over `targets` (runs x bars); with trades, a first pass counts them so that the
    second writes them into an exactly sized buffer (no per-run lists, no guessing)."""
    n_runs, n = targets.shape
    atr_values = checked_atr(atr, config, n)
    calendar = Calendar.from_timestamps(prices.timestamps_ms)
    table = np.empty((n_runs, N_METRICS), dtype=np.float64)
    equity = np.empty((n_runs, n if keep_equity else 0), dtype=np.float64)
    records = np.empty((0, N_FIELDS), dtype=np.float64)
    offsets = np.zeros(n_runs + 1, dtype=np.int64)
    bars = series_bars(
        prices.open, prices.high, prices.low, prices.close, atr_values, np.array([0, n], dtype=np.int64)
    )
    args = (bars, targets, config.sim_params(), calendar.bars_per_year, calendar.years, table, equity)
    run_many_kernel(*args, records, offsets)
    if with_trades:
        offsets[1:] = np.cumsum(table[:, N_TRADES].astype(np.int64))
        records = np.empty((int(offsets[-1]), N_FIELDS), dtype=np.float64)
        run_many_kernel(*args, records, offsets)
    return table, equity, records


def _targets(positions: np.ndarray, n: int, ndim: int) -> np.ndarray:
    values = np.asarray(positions)
    if values.ndim != ndim:
        shape = "one series (1-D)" if ndim == 1 else "a (bars x runs) matrix (2-D)"
        raise DataError(
            f"positions must be {shape}, got shape {values.shape}",
            "use run_backtest for one series and run_many for several",
        )
    if values.shape[0] != n:
        raise DataError(
            f"positions have {values.shape[0]} bars but the prices have {n}",
            "give one target position per bar",
        )
    if values.dtype == np.bool_:
        return values.astype(np.int8)
    if not np.issubdtype(values.dtype, np.number):
        raise DataError(
            f"positions must be numbers in {{-1, 0, 1}}, got dtype {values.dtype}",
            "use int8: +1 long, 0 flat, -1 short",
        )
    if np.issubdtype(values.dtype, np.integer):
        bad = (values < -1) | (values > 1)  # much cheaper than np.isin on a grid-sized matrix
    else:
        bad = ~((values == -1) | (values == 0) | (values == 1))
    if bad.any():
        raise DataError(
            f"positions must be -1, 0 or 1, found {values[bad].flat[0].item()!r}",
            "use int8: +1 long, 0 flat, -1 short",
        )
    return values.astype(np.int8)


def _float_array(value: np.ndarray, name: str, source: str) -> np.ndarray:
    arr = np.asarray(value)
    if arr.ndim != 1:
        raise DataError(f"{source}: {name} must be 1-D, got shape {arr.shape}", "pass one value per bar")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise DataError(f"{source}: {name} must be numeric, got dtype {arr.dtype}", "pass float prices")
    return np.ascontiguousarray(arr, dtype=np.float64)
