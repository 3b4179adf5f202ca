"""Fixtures over the real candle files (see indicator_data)."""

from __future__ import annotations

import polars as pl
import pytest
from indicator_data import CANDLE_FILES, Bars, load_bars, load_frame


@pytest.fixture(scope="session", params=CANDLE_FILES)
def bars(request: pytest.FixtureRequest) -> Bars:
    """Each real candle file in turn (8 files, 1 920 to 13 681 bars)."""
    return load_bars(request.param)


@pytest.fixture(scope="session")
def btc_bars() -> Bars:
    """11k real BTC/USDT 5m bars."""
    return load_bars("BTC_USDT-5m.parquet")


@pytest.fixture(scope="session")
def btc_frame() -> pl.DataFrame:
    return load_frame("BTC_USDT-5m.parquet")
