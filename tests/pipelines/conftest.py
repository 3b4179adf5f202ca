import os
import shutil
import uuid
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from xray_pipelines.resources import ExchangeResource, LakeResource, MarketDataResource, MarketScope

SYMBOLS = ["BTC/USDT", "ETH/USDT", "TGT/USDT", "SRM/USDT"]
ROOT = Path(__file__).resolve().parents[2]
ADMIN_URL = os.environ.get("XRAY_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


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


@pytest.fixture
def postgres_dagster_home(tmp_path, monkeypatch):
    """A DAGSTER_HOME using dagster.postgres.yaml, on a database created for this test only."""
    name = f"xray_dagster_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.postgres.yaml", home / "dagster.yaml")
    server = ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg2://")
    monkeypatch.setenv("XRAY_DAGSTER_PG_URL", f"{server}/{name}")
    yield home, name
    with psycopg.connect(ADMIN_URL, autocommit=True) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
