"""The objective: a parameter set's out-of-sample metrics on every fold's test window, aggregated.

How one (symbol, fold) window is measured, and why it cannot look ahead:

* Positions are computed by `strategy.positions` on the fold's history only, bars
  [train_start, test_end) — never on the whole series — so even a strategy that peeked at later bars
  could not see a bar after the window's end.
* The engine runs on bars [test_start - 1, test_end) with the matching slice of those positions. Its first
  bar is the *signal bar*: the target decided at its close (from history before the window) fills at
  the test window's first open, and the engine starts flat with its equity valued at that close, so
  every fill, return and drawdown lies inside the test window. A target decided at the window's last
  close never fills; a position still open at the end is valued at the window's last close (the engine's
  end-of-data rule), so no price after the window is used either.
* With `sl_atr`/`tp_atr` set, the ATR(`ATR_PERIOD`) is computed on the same history.

Aggregation and penalties (the two objectives, `values`):

* Every (symbol, fold) window weighs the same: the objectives are the mean total return (maximised) and
  the mean max drawdown (minimised) over all windows of all symbols; trade counts are summed.
* A parameter set the strategy rejects (e.g. fast >= slow), or whose indicators need more history than
  a fold has, is `invalid`: it is not backtested and scores (-1, 1), a total loss with a total drawdown,
  the worst values an account can reach.
* A parameter set that never trades in any window is `no_trades`: it scores (0, 1) — it earned nothing,
  and its zero drawdown is absence of evidence, not safety, so it must not sit on the Pareto front as
  the "risk-free" corner.
Both are also reported as violated constraints (`constraints`), so NSGA-II's constrained domination
ranks them below every parameter set that traded and never breeds from them while it has better ones.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
import polars as pl

from xray_core.backtest import METRIC_NAMES, BacktestConfig, Prices, run_many
from xray_core.candles.bars import Bars
from xray_core.candles.schema import conform
from xray_core.errors import ConfigError, DataError
from xray_core.indicators import atr
from xray_core.optimize.folds import Fold, FoldConfig, make_folds
from xray_core.strategies import Mode, Strategy, StrategyParams, get_strategy

ATR_PERIOD = 14
INVALID_VALUES = (-1.0, 1.0)
NO_TRADE_VALUES = (0.0, 1.0)
WINDOW_FIELDS = ("total_return", "max_drawdown", "n_trades", "sharpe", "exposure")
_COLUMN = {name: k for k, name in enumerate(METRIC_NAMES)}


class Status(StrEnum):
    OK = "ok"
    INVALID = "invalid"
    NO_TRADES = "no_trades"


@dataclass(frozen=True, slots=True)
class Window:
    """One symbol's fold, ready to backtest: its history and the engine's slice of it."""

    symbol: str
    fold: Fold
    history: Bars  # bars [train_start, test_end)
    timeframe_ms: int

    @property
    def signal_offset(self) -> int:
        """Index in `history` of the signal bar (test_start - 1)."""
        return self.fold.test_start - 1 - self.fold.train_start

    def engine_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        h, lo = self.history, self.signal_offset
        return h.open[lo:], h.high[lo:], h.low[lo:], h.close[lo:], h.timestamp[lo:]


@dataclass(frozen=True, slots=True)
class Score:
    """A parameter set's aggregate over all windows, as the study records it."""

    status: Status
    mean_return: float
    mean_drawdown: float
    n_trades: int
    reason: str = ""

    @property
    def values(self) -> tuple[float, float]:
        """The objective values (return to maximise, drawdown to minimise), penalties applied."""
        if self.status is Status.INVALID:
            return INVALID_VALUES
        if self.status is Status.NO_TRADES:
            return NO_TRADE_VALUES
        return self.mean_return, self.mean_drawdown

    @property
    def constraints(self) -> dict[str, float]:
        """NSGA-II constraints (> 0 is violated); always both keys so every trial is comparable."""
        return {"valid_params": float(self.status is Status.INVALID),
                "trades": float(self.status is Status.NO_TRADES)}


def prepare_windows(bars_by_symbol: Mapping[str, Bars | pl.DataFrame], folds: FoldConfig) -> list[Window]:
    """Every symbol's folds as windows, symbols in sorted order; bad prices or too little history give a
    DataError naming the symbol."""
    if not bars_by_symbol:
        raise ConfigError("no symbols to optimise on", "pass at least one symbol's bars")
    windows = []
    for symbol in sorted(bars_by_symbol):  # the order symbols are passed in must not change a result
        data = bars_by_symbol[symbol]
        bars = Bars.from_frame(conform(data, symbol)) if isinstance(data, pl.DataFrame) else data
        if not isinstance(bars, Bars):
            raise ConfigError(f"{symbol}: expected Bars or a candle frame, got {type(data).__name__}",
                              "pass xray_core.candles.bars.Bars or a frame from read_parquet")
        prices = Prices.from_arrays(bars.open, bars.high, bars.low, bars.close, bars.timestamp, symbol)
        timeframe_ms = int(np.median(np.diff(prices.timestamps_ms)))
        for fold in make_folds(len(bars), folds, symbol):
            windows.append(Window(symbol, fold, bars.take(fold.history), timeframe_ms))
    return windows


def resolve_strategy(strategy: str | Strategy) -> Strategy:
    return get_strategy(strategy) if isinstance(strategy, str) else strategy


def run_windows(strategy: Strategy, params_list: Sequence[StrategyParams], windows: Sequence[Window],
                backtest: BacktestConfig) -> tuple[np.ndarray, list[str | None]]:
    """Backtest every parameter set on every window: one `run_many` per window over all sets at once.

    Returns metrics of shape (sets, windows, METRIC_NAMES) — NaN for a set that could not run — and, per
    set, the reason it could not (None when it ran). A `DataError` from the strategy (its indicators
    need more history than a fold has) disqualifies that set only; anything else — a ConfigError such as
    a model strategy without a model, or a bug — propagates."""
    mode = Mode(backtest.mode)
    table = np.full((len(params_list), len(windows), len(METRIC_NAMES)), np.nan)
    errors: list[str | None] = [None] * len(params_list)
    for w, window in enumerate(windows):
        columns, runnable = [], []
        for j, params in enumerate(params_list):
            if errors[j] is not None:
                continue
            try:
                positions = strategy.positions(window.history, params, mode)
            except DataError as exc:
                errors[j] = f"{window.symbol} fold {window.fold.index}: {exc}"
                continue
            if len(positions) != len(window.history):
                raise ValueError(f"{strategy.name}.positions returned {len(positions)} targets for "
                                 f"{len(window.history)} bars")
            columns.append(positions[window.signal_offset:])
            runnable.append(j)
        if not runnable:
            continue
        arrays = window.engine_arrays()
        atr_values = None
        if backtest.uses_stops:
            h = window.history
            atr_values = atr(h.high, h.low, h.close, ATR_PERIOD)[window.signal_offset:]
        runs = run_many(Prices.from_arrays(*arrays), np.column_stack(columns), backtest, atr=atr_values)
        table[runnable, w, :] = runs.metrics.select(METRIC_NAMES).to_numpy()
    table[[j for j, error in enumerate(errors) if error is not None]] = np.nan
    return table, errors


def score(metrics: np.ndarray, error: str | None) -> Score:
    """Aggregate one set's (windows x METRIC_NAMES) metrics into its `Score`."""
    if error is not None:
        return Score(Status.INVALID, math.nan, math.nan, 0, error)
    n_trades = int(metrics[:, _COLUMN["n_trades"]].sum())
    mean_return = float(metrics[:, _COLUMN["total_return"]].mean())
    mean_drawdown = float(metrics[:, _COLUMN["max_drawdown"]].mean())
    if n_trades == 0:
        return Score(Status.NO_TRADES, mean_return, mean_drawdown, 0, "no trade in any test window")
    return Score(Status.OK, mean_return, mean_drawdown, n_trades)


def window_records(windows: Sequence[Window], metrics: np.ndarray) -> list[dict[str, Any]]:
    """Per-window metrics as JSON-safe dicts (NaN -> None), for a trial's user attributes."""
    records = []
    for window, row in zip(windows, metrics, strict=True):
        record: dict[str, Any] = {"symbol": window.symbol, "fold": window.fold.index}
        for name in WINDOW_FIELDS:
            value = float(row[_COLUMN[name]])
            record[name] = None if not math.isfinite(value) else int(value) if name == "n_trades" else value
        records.append(record)
    return records


def evaluate(strategy: str | Strategy, params: StrategyParams | Mapping[str, Any] | None,
             windows: Sequence[Window], backtest: BacktestConfig) -> pl.DataFrame:
    """One parameter set's out-of-sample metrics, one row per (symbol, fold) test window.

    Raises the strategy's ConfigError for invalid parameters, and its error when it cannot run."""
    strategy = resolve_strategy(strategy)
    chosen = params if isinstance(params, StrategyParams) else strategy.params(dict(params or {}))
    table, errors = run_windows(strategy, [chosen], windows, backtest)
    if errors[0] is not None:
        raise DataError(f"{strategy.name}: {errors[0]}", "give the folds more history (min_train_bars)")
    frame = pl.DataFrame({
        "symbol": [w.symbol for w in windows],
        "fold": [w.fold.index for w in windows],
        "test_start": [w.fold.test_start for w in windows],
        "test_end": [w.fold.test_end for w in windows],
        "start": [int(w.history.timestamp[w.signal_offset + 1]) for w in windows],
        "end": [int(w.history.timestamp[-1]) + w.timeframe_ms for w in windows],
        **{name: table[0, :, k] for k, name in enumerate(METRIC_NAMES)},
    })
    return frame.with_columns(
        pl.col("start", "end").cast(pl.Datetime("ms")).dt.replace_time_zone("UTC"),
        pl.col("n_trades").cast(pl.Int64),
    )
