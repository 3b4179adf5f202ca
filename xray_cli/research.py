"""What the research commands share: candle files, option parsing, and JSON on stdout.

Used by `xray indicators` (`indicators_cmd`), `xray backtest` (`backtest_cmd`) and `xray backtest-grid`
(`grid_cmd`). Every problem a user can fix is raised as an `XrayError` (one line, exit 2), checked in
this order: options (numbers, mode, strategy, parameters, grid) before any file is read, then each file.

JSON: written with orjson, so NaN and ±inf — the metrics' undefined or unbounded ratios, e.g. the
Sharpe ratio of a run without trades or the profit factor of one without a loss — are written as
`null`; times are ISO-8601 UTC strings ("2024-01-01T00:00:00Z").
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import product
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xray_core.errors import ConfigError, DataError

if TYPE_CHECKING:
    import polars as pl

    from xray_core.backtest.config import BacktestConfig
    from xray_core.strategies.base import Strategy, StrategyParams

MAX_GRID_VALUES = 10_000  # values of one --grid parameter
MAX_COMBINATIONS = 100_000  # parameter combinations of a grid (each one run on every file)

_FILE_NAME = re.compile(r"^(?P<pair>[A-Za-z0-9]+(?:_[A-Za-z0-9]+){1,2})-(?P<tf>\d+[smhdwMy])(?:-.*)?$")
_INT = re.compile(r"^[+-]?\d+$")


# ---- candle files -------------------------------------------------------------------------------
def symbol_of(path: Path) -> tuple[str, str | None]:
    """(symbol, timeframe) from a file named BASE_QUOTE-TF.parquet (BASE_QUOTE_SETTLE for futures:
    BASE/QUOTE:SETTLE); any other name gives (its stem, None)."""
    match = _FILE_NAME.match(path.stem)
    if match is None:
        return path.stem, None
    parts = match["pair"].split("_")
    symbol = f"{parts[0]}/{parts[1]}" + (f":{parts[2]}" if len(parts) == 3 else "")
    return symbol, match["tf"]


def candle_files(path: Path) -> list[Path]:
    """`path` itself, or every *.parquet file of the directory `path` (sorted by name)."""
    if path.is_dir():
        files = sorted(p for p in path.glob("*.parquet") if p.is_file())
        if not files:
            raise DataError(f"{path} has no *.parquet candle files", "pass a candle file or a folder of them")
        return files
    if not path.exists():
        raise DataError(f"candle file {path} does not exist", "check the path")
    return [path]


def read_candles(path: Path) -> pl.DataFrame:
    """The candle frame of `path` (xray_core.candles.schema), with a clear error for a bad file."""
    from xray_core.candles.schema import read_parquet

    return read_parquet(path)


@contextmanager
def about(path: Path) -> Iterator[None]:
    """Name `path` in any DataError raised inside that does not name it already."""
    try:
        yield
    except DataError as exc:
        if str(path) in exc.problem:
            raise
        raise type(exc)(f"{path}: {exc.problem}", exc.hint) from None


# ---- options ------------------------------------------------------------------------------------
def number(option: str, text: str) -> float:
    """A command-line number (kept as text by typer so that a typo is one clear line, not a usage box)."""
    try:
        return float(text.strip())
    except ValueError:
        raise ConfigError(f"{option} {text!r} is not a number", f"e.g. {option} 0.001") from None


def backtest_config(fee: str, slippage: str, cash: str, mode: str) -> BacktestConfig:
    """The validated BacktestConfig of the --fee/--slippage/--cash/--mode options."""
    from xray_core.backtest.config import BacktestConfig

    return BacktestConfig(
        fee=number("--fee", fee),
        slippage=number("--slippage", slippage),
        cash=number("--cash", cash),
        mode=mode,  # type: ignore[arg-type]  # any str: BacktestConfig refuses an unknown mode clearly
    )


def _scalar(text: str) -> int | float | str:
    """An int or float when the text is one, else the text (the parameter model judges it)."""
    text = text.strip()
    if _INT.match(text):
        return int(text)
    try:
        return float(text)
    except ValueError:
        return text


def _split(option: str, item: str, example: str) -> tuple[str, str]:
    name, sep, value = item.partition("=")
    name, value = name.strip(), value.strip()
    if not sep or not name or not value:
        raise ConfigError(
            f"{option} {item!r} is malformed", f"use {option} NAME=VALUE, e.g. {option} {example}"
        )
    return name, value


def parse_params(items: list[str]) -> dict[str, Any]:
    """--param NAME=VALUE options as a dict (each name once)."""
    params: dict[str, Any] = {}
    for item in items:
        name, value = _split("--param", item, "fast=10")
        if name in params:
            raise ConfigError(f"--param {name} is given twice", "give each parameter once")
        params[name] = _scalar(value)
    return params


def parse_grid(items: list[str]) -> dict[str, list[int | float]]:
    """--grid NAME=START:STOP:STEP options (STOP inclusive; or NAME=VALUE) as each name's values."""
    grid: dict[str, list[int | float]] = {}
    for item in items:
        name, spec = _split("--grid", item, "fast=5:50:5")
        if name in grid:
            raise ConfigError(f"--grid {name} is given twice", "give each parameter one range")
        grid[name] = _grid_values(item, spec)
    return grid


def _grid_values(item: str, spec: str) -> list[int | float]:
    hint = "use NAME=START:STOP:STEP with STOP inclusive, e.g. --grid fast=5:50:5"
    parts = [_scalar(p) for p in spec.split(":")]
    if len(parts) not in (1, 3):
        raise ConfigError(f"--grid {item!r} is malformed", hint)
    numbers: list[int | float] = []
    for part in parts:
        if isinstance(part, str) or not math.isfinite(part):
            raise ConfigError(f"--grid {item!r}: {part!r} is not a finite number", hint)
        numbers.append(part)
    if len(numbers) == 1:
        return numbers
    start, stop, step = numbers
    if step <= 0:
        raise ConfigError(f"--grid {item!r}: the step must be positive, got {step}", hint)
    if start > stop:
        raise ConfigError(f"--grid {item!r}: start {start} is above stop {stop}", hint)
    count = math.floor((stop - start) / step + 1e-9) + 1
    if count > MAX_GRID_VALUES:
        raise ConfigError(f"--grid {item!r} has {count:,} values", f"use at most {MAX_GRID_VALUES:,}")
    if all(isinstance(p, int) for p in numbers):
        return list(range(int(start), int(stop) + 1, int(step)))
    return [round(start + i * step, 12) for i in range(count)]


def combinations(strategy: Strategy, grid: dict[str, list[int | float]]) -> list[StrategyParams]:
    """Every combination of the grid's values as validated parameters, in the grid's order.

    A value out of its parameter's range, or an unknown name, is a ConfigError; a combination that
    breaks a rule across parameters (e.g. sma_cross's fast < slow) is left out, not an error."""
    from pydantic import ValidationError

    count = math.prod(len(values) for values in grid.values())
    if count > MAX_COMBINATIONS:
        raise ConfigError(f"the grid has {count:,} combinations", f"use at most {MAX_COMBINATIONS:,}")
    names = list(grid)
    valid = []
    for values in product(*grid.values()):
        raw = dict(zip(names, values, strict=True))
        try:
            valid.append(strategy.Params.model_validate(raw))
        except ValidationError as exc:
            if any(error["loc"] for error in exc.errors()):
                strategy.params(raw)  # raises the strategy's clear ConfigError for this value
                raise  # pragma: no cover - params() has raised
    if not valid:
        rule = ""
        try:
            strategy.params(dict(zip(names, next(product(*grid.values())), strict=True)))
        except ConfigError as exc:
            rule = f" ({exc.problem})"
        raise ConfigError(
            f"no combination of the grid is valid for {strategy.name}{rule}",
            "widen the ranges, e.g. --grid fast=5:50:5 --grid slow=20:200:20",
        )
    return valid


# ---- output -------------------------------------------------------------------------------------
def iso(ms: int) -> str:
    """Milliseconds since the epoch as ISO-8601 UTC, e.g. 2024-01-01T00:00:00Z."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")



def fmt(value: float | int | None, kind: str = "num") -> str:
    """A metric for a table: pct (fraction as %), money, int or num; '-' for NaN/None."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if kind == "pct":
        return f"{value * 100:,.2f}%"
    if kind == "money":
        return f"{value:,.2f}"
    if kind == "int":
        return f"{int(value):,}"
    return f"{value:,.3f}"


METRIC_KINDS = {
    "final_equity": "money",
    "total_return": "pct",
    "cagr": "pct",
    "sharpe": "num",
    "sortino": "num",
    "max_drawdown": "pct",
    "calmar": "num",
    "win_rate": "pct",
    "profit_factor": "num",
    "exposure": "pct",
    "n_trades": "int",
}
