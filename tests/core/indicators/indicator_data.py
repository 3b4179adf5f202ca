"""The real candle files as polars frames or numpy bars, loaded once per test session."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import polars as pl

from xray_core.candles.schema import read_parquet

CANDLES = Path(__file__).resolve().parents[2] / "data" / "candles"
CANDLE_FILES = sorted(path.name for path in CANDLES.glob("*.parquet"))


@dataclass(frozen=True)
class Bars:
    """One candle file's columns as float64 arrays."""

    name: str
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray


@cache
def load_frame(name: str) -> pl.DataFrame:
    return read_parquet(CANDLES / name)


@cache
def load_bars(name: str) -> Bars:
    frame = load_frame(name)
    columns = {column: frame[column].to_numpy() for column in ("open", "high", "low", "close", "volume")}
    return Bars(name=name, **columns)
