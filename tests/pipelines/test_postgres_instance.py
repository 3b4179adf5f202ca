"""The production Dagster instance: dagster.postgres.yaml on the real local PostgreSQL server."""

import os
import shutil
import uuid
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from xray_pipelines.defs.market_data.quality import candle_quality
from xray_pipelines.resources import ExchangeResource, LakeResource, MarketDataResource, MarketScope

ROOT = Path(__file__).resolve().parents[2]
ADMIN_URL = os.environ.get("XRAY_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")

pytestmark = pytest.mark.postgres


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


def test_an_asset_materializes_on_postgres(postgres_dagster_home, tmp_path):
    home, database = postgres_dagster_home
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        result = dg.materialize(
            [candle_quality],
            instance=instance,
            resources={
                "market": MarketScope(
                    exchange=ExchangeResource(),
                    market_data=MarketDataResource(),
                    lake=LakeResource(duckdb_path=str(tmp_path / "x.duckdb")),
                )
            },
        )
        assert result.success
        event = instance.get_latest_materialization_event(dg.AssetKey("candle_quality"))
        assert event is not None and event.run_id == result.run_id

    with psycopg.connect(ADMIN_URL.rsplit("/", 1)[0] + f"/{database}") as con:
        rows = con.execute(
            "SELECT count(*) FROM event_logs WHERE asset_key LIKE '%candle_quality%' "
            "AND dagster_event_type = 'ASSET_MATERIALIZATION'"
        ).fetchone()
    assert rows is not None and rows[0] == 1
