"""`xray backtest-grid --candles FILE_OR_DIR --strategy NAME --grid k=start:stop:step ...`.

Every combination of the grid's values (STOP inclusive; combinations that break a rule across
parameters, such as sma_cross's fast < slow, are left out) runs on every *.parquet file of the folder
(or on the one file). sma_cross runs in the fused kernel (`xray_core.backtest.sma_cross_grid`: each
moving average once per file, all runs in parallel); any other strategy computes each combination's
positions with the strategy and runs them per file through `run_many` (parallel over combinations).

`--json` prints a list with one object per (file, combination), files in name order:
    {"symbol", "timeframe", "file", <each parameter>, "final_equity", "total_return", "cagr", "sharpe",
     "sortino", "max_drawdown", "calmar", "win_rate", "profit_factor", "exposure", "n_trades"}
with NaN/±inf metrics as null. Without it, a table of the best rows by Sharpe and a count.

A file that cannot run (unreadable, wrong schema, bad prices, too few bars for the longest window) is
reported on stderr with its reason and skipped. Exit status: 0 when every file ran, 1 when some
failed but rows were produced, 2 when nothing could run (or an option is wrong).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from xray_cli.console import print_json
from xray_cli.research import (
    METRIC_KINDS,
    about,
    backtest_config,
    candle_files,
    combinations,
    fmt,
    parse_grid,
    read_candles,
    symbol_of,
)
from xray_core.errors import ConfigError, DataError

if TYPE_CHECKING:
    import polars as pl

    from xray_core.backtest import BacktestConfig, Prices
    from xray_core.strategies import Strategy, StrategyParams

TOP_ROWS = 15
SHOWN = {
    "total_return": "return",
    "sharpe": "sharpe",
    "max_drawdown": "max dd",
    "win_rate": "win",
    "n_trades": "trades",
}  # metric -> column title of the table
POSITIONS_BYTES = 1 << 25  # int8 target matrix per run_many call (bars x combinations), 32 MiB

Failures = list[tuple[Path, DataError]]


def run_grid_command(
    *,
    candles: Path,
    strategy: str,
    grid: list[str],
    fee: str,
    slippage: str,
    cash: str,
    mode: str,
    as_json: bool,
) -> None:
    from xray_core.strategies import get_strategy

    config = backtest_config(fee, slippage, cash, mode)
    chosen = get_strategy(strategy)
    if not grid:
        raise ConfigError("no --grid given", "e.g. --grid fast=5:50:5 --grid slow=20:200:20")
    combos = combinations(chosen, parse_grid(grid))
    files = candle_files(candles)
    failures: Failures = []
    run = _sma_cross_rows if chosen.name == "sma_cross" else _strategy_rows
    rows = run(chosen, combos, files, config, failures)
    if rows is None and len(files) == 1:
        raise failures[0][1]  # one file: its reason is the error
    for path, exc in failures:
        print(
            f"xray: skipped: {exc}" if str(path) in str(exc) else f"xray: skipped {path}: {exc}",
            file=sys.stderr,
        )
    if rows is None:
        raise DataError(
            f"none of the {len(files)} candle files could be backtested", "fix or remove them (reasons above)"
        )
    if as_json:
        print_json(rows.to_dicts())
    else:
        _print_table(rows, len(files) - len(failures), len(combos))
    if failures:
        import typer

        raise typer.Exit(1)


def _load(path: Path, failures: Failures) -> tuple[pl.DataFrame, Prices] | None:
    """The file's candles and validated prices, or None after recording why not."""
    from xray_core.backtest import Prices

    try:
        frame = read_candles(path)
        return frame, Prices.from_frame(frame, str(path))
    except DataError as exc:
        failures.append((path, exc))
        return None


def _keys(files: list[Path], repeat: int) -> pl.DataFrame:
    """symbol, timeframe and file columns: each file's values `repeat` times."""
    import polars as pl

    names = [symbol_of(path) for path in files]
    return pl.DataFrame(
        {
            "symbol": [symbol for symbol, _ in names for _ in range(repeat)],
            "timeframe": pl.Series([tf for _, tf in names for _ in range(repeat)], dtype=pl.String),
            "file": [path.name for path in files for _ in range(repeat)],
        }
    )


def _sma_cross_rows(
    strategy: Strategy,
    combos: list[StrategyParams],
    files: list[Path],
    config: BacktestConfig,
    failures: Failures,
) -> pl.DataFrame | None:
    """The fused kernel over every file that loads and is long enough for the slowest average."""
    import polars as pl

    from xray_core.backtest import MIN_BARS, sma_cross_grid

    fast = sorted({int(p.fast) for p in combos})  # type: ignore[attr-defined]
    slow = sorted({int(p.slow) for p in combos})  # type: ignore[attr-defined]
    longest = max(slow)
    prices: dict[str, Prices] = {}
    used: list[Path] = []
    for path in files:
        loaded = _load(path, failures)
        if loaded is None:
            continue
        bars = len(loaded[1])
        if bars < max(MIN_BARS, longest + 1):
            failures.append(
                (
                    path,
                    DataError(
                        f"{path}: {bars} bars are too few for SMA({longest})",
                        f"give at least {longest + 1} bars or shorter periods",
                    ),
                )
            )
            continue
        prices[str(path)] = loaded[1]
        used.append(path)
    if not prices:
        return None
    table = sma_cross_grid(prices, fast, slow, config)
    return pl.concat([_keys(used, len(combos)), table.drop("symbol")], how="horizontal")


def _strategy_rows(
    strategy: Strategy,
    combos: list[StrategyParams],
    files: list[Path],
    config: BacktestConfig,
    failures: Failures,
) -> pl.DataFrame | None:
    """Each combination's positions from the strategy, run per file with `run_many`."""
    import numpy as np
    import polars as pl

    from xray_core.backtest import run_many
    from xray_core.candles.bars import Bars
    from xray_core.strategies import Mode

    mode = Mode(config.mode)
    params = pl.DataFrame([p.model_dump() for p in combos])
    parts: list[pl.DataFrame] = []
    used: list[Path] = []
    for path in files:
        loaded = _load(path, failures)
        if loaded is None:
            continue
        frame, prices = loaded
        bars = Bars.from_frame(frame)
        chunk = max(1, POSITIONS_BYTES // len(prices))
        tables = []
        try:
            with about(path):
                for lo in range(0, len(combos), chunk):
                    batch = combos[lo : lo + chunk]
                    targets = np.empty((len(prices), len(batch)), dtype=np.int8)
                    for column, combo in enumerate(batch):
                        targets[:, column] = strategy.positions(bars, combo, mode)
                    result = run_many(prices, targets, config)
                    tables.append(result.metrics.drop("run"))
        except DataError as exc:
            failures.append((path, exc))
            continue
        parts.append(pl.concat([params, pl.concat(tables)], how="horizontal"))
        used.append(path)
    if not parts:
        return None
    return pl.concat([_keys(used, len(combos)), pl.concat(parts)], how="horizontal")


def _print_table(rows: pl.DataFrame, n_files: int, n_combos: int) -> None:
    import polars as pl
    from rich import box
    from rich.table import Table

    from xray_cli.console import out

    params = [c for c in rows.columns if c not in ("symbol", "timeframe", "file", *METRIC_KINDS)]
    best = (
        rows.with_columns(pl.col("sharpe").fill_nan(None).alias("_rank"))
        .sort("_rank", descending=True, nulls_last=True)
        .head(TOP_ROWS)
    )
    table = Table(
        title=f"best {best.height} of {rows.height:,} runs by Sharpe", box=box.SIMPLE, pad_edge=False
    )
    for name in ("symbol", "tf", *params, *SHOWN.values()):
        table.add_column(name, justify="left" if name in ("symbol", "tf") else "right", no_wrap=True)
    for row in best.iter_rows(named=True):
        table.add_row(
            row["symbol"],
            row["timeframe"] or "-",
            *(f"{row[p]:g}" for p in params),
            *(fmt(row[m], METRIC_KINDS[m]) for m in SHOWN),
        )
    out.print(table)
    out.print(f"{rows.height:,} runs: {n_files} file(s) x {n_combos:,} combination(s) (--json: all)")
