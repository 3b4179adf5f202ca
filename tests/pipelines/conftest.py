import dagster as dg
import pytest

from xray_pipelines.resources import ExchangeResource, LakeResource, MarketDataResource, MarketScope

SYMBOLS = ["BTC/USDT", "ETH/USDT", "TGT/USDT", "SRM/USDT"]


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


@pytest.fixture
def resources(emulator, tmp_path):
    """The real resources: the emulator over HTTP through stock ccxt, and a DuckDB file."""
    market = MarketScope(
        exchange=ExchangeResource(exchange_id="mexc", url=emulator.base_url),
        lake=LakeResource(duckdb_path=str(tmp_path / "xray.duckdb")),
        market_data=MarketDataResource(timeframe="1h", history_days=20, symbols=SYMBOLS),
    )
    return {"market": market}
