"""Shared input for the backtest tests: the real candle files as `Prices`."""

from pathlib import Path

import pytest

from xray_core.backtest import Prices
from xray_core.candles.schema import read_parquet

CANDLES = Path(__file__).resolve().parents[2] / "data" / "candles"


@pytest.fixture(scope="session")
def real_prices() -> dict[str, Prices]:
    """Every real candle file, by file stem (e.g. BTC_USDT-5m)."""
    return {path.stem: Prices.from_frame(read_parquet(path), path.name)
            for path in sorted(CANDLES.glob("*.parquet"))}

