"""Default backtests of every symbol and strategy, cached by data version and code version.

The roadmap cached results in backtest_results.json and re-used them even after the data or the code
changed. Here each result carries a cache key — the symbol's candle fingerprint, the strategy, its
parameters, the backtest config and the code version — and is recomputed only when the key changes.
A symbol whose data cannot be backtested gets a row with its error; it never stops the others.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass

import polars as pl

from xray_core.backtest import METRIC_NAMES, BacktestConfig, run_backtest
from xray_core.candles.bars import Bars
from xray_core.errors import XrayError
from xray_core.research.versions import backtest_code_version
from xray_core.strategies import Mode, Strategy

RESULT_COLUMNS = ["symbol", "strategy", "params", "cache_key", *METRIC_NAMES, "error", "computed_at_ms"]


@dataclass(frozen=True, slots=True)
class BacktestRun:
    """What one cached backtest needs: the symbol's bars and their data version."""

    symbol: str
    bars: Bars
    data_version: str


@dataclass(frozen=True, slots=True)
class BacktestSummary:
    results: pl.DataFrame
    reused: int
    computed: int


def cache_key(data_version: str, strategy: str, params: str, config: BacktestConfig) -> str:
    text = json.dumps(
        [data_version, strategy, params, asdict(config), backtest_code_version()], sort_keys=True, default=str
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def backtest_all(
    runs: Iterable[BacktestRun],
    strategies: Iterable[Strategy],
    config: BacktestConfig,
    cached: pl.DataFrame | None = None,
) -> BacktestSummary:
    """One row per (symbol, strategy with default parameters): reused from `cached` when its key
    matches, else computed."""
    previous = (
        {}
        if cached is None or cached.is_empty()
        else {row["cache_key"]: row for row in cached.iter_rows(named=True)}
    )
    rows, reused = [], 0
    strategies = list(strategies)
    for run in runs:
        for strategy in strategies:
            params = strategy.params()
            params_json = params.model_dump_json()
            key = cache_key(run.data_version, strategy.name, params_json, config)
            if key in previous:
                rows.append(previous[key])
                reused += 1
                continue
            rows.append(_run_one(run, strategy, params, params_json, key, config))
    frame = pl.DataFrame(rows, schema=_schema(), orient="row") if rows else pl.DataFrame(schema=_schema())
    return BacktestSummary(frame, reused, len(rows) - reused)


def equity_curve(bars: Bars, strategy: Strategy, params_json: str, config: BacktestConfig) -> pl.DataFrame:
    """timestamp, equity of one backtest (for plots)."""
    params = strategy.params(json.loads(params_json))
    positions = strategy.positions(bars, params, Mode(config.mode))
    result = run_backtest(bars.open, bars.high, bars.low, bars.close, bars.timestamp, positions, config)
    stamps = pl.Series("timestamp", bars.timestamp).cast(pl.Datetime("ms")).dt.replace_time_zone("UTC")
    return pl.DataFrame({"timestamp": stamps, "equity": result.equity})


def _run_one(
    run: BacktestRun, strategy: Strategy, params: object, params_json: str, key: str, config: BacktestConfig
) -> dict[str, object]:
    row: dict[str, object] = {
        "symbol": run.symbol,
        "strategy": strategy.name,
        "params": params_json,
        "cache_key": key,
        "error": None,
        "computed_at_ms": int(time.time() * 1000),
    }
    try:
        positions = strategy.positions(run.bars, params, Mode(config.mode))
        bars = run.bars
        result = run_backtest(bars.open, bars.high, bars.low, bars.close, bars.timestamp, positions, config)
        metrics = asdict(result.metrics)
        row |= {name: _defined(metrics[name]) for name in METRIC_NAMES}
    except XrayError as exc:  # too few bars, a bad price: this symbol only
        row |= dict.fromkeys(METRIC_NAMES)
        row["error"] = str(exc)
    return row


def _defined(value: float | int) -> float | int | None:
    """NaN (an undefined ratio, e.g. the Sharpe of a run without trades) is stored as null."""
    return None if isinstance(value, float) and math.isnan(value) else value


def _schema() -> dict[str, pl.DataType]:
    schema: dict[str, pl.DataType] = {
        "symbol": pl.String(),
        "strategy": pl.String(),
        "params": pl.String(),
        "cache_key": pl.String(),
    }
    schema |= {name: pl.Int64() if name == "n_trades" else pl.Float64() for name in METRIC_NAMES}
    return schema | {"error": pl.String(), "computed_at_ms": pl.Int64()}


def best_per_symbol(results: pl.DataFrame, metric: str = "sharpe") -> Mapping[str, dict[str, object]]:
    """The row with the highest `metric` for each symbol (rows with errors or no value ignored)."""
    ok = results.filter(pl.col("error").is_null() & pl.col(metric).is_not_null())
    best = ok.sort(metric, descending=True).unique("symbol", keep="first")
    return {row["symbol"]: row for row in best.iter_rows(named=True)}
