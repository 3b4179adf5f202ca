from pathlib import Path

import pytest

from xray_core.candles.schema import read_parquet

CANDLES = Path(__file__).resolve().parents[1] / "data" / "candles"


@pytest.fixture(scope="session")
def candles_dir() -> Path:
    return CANDLES


@pytest.fixture
def btc_5m():
    """11k real BTC/USDT 5m bars without gaps."""
    return read_parquet(CANDLES / "BTC_USDT-5m.parquet")
