"""The production Dagster instance: dagster.postgres.yaml on the real local PostgreSQL server."""

import os

import dagster as dg
import psycopg
import pytest

from xray_pipelines.definitions import defs
from xray_pipelines.defs.market_data.quality import candle_quality
from xray_pipelines.resources import ExchangeResource, LakeResource, MarketDataResource, MarketScope

ADMIN_URL = os.environ.get("XRAY_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")

pytestmark = pytest.mark.postgres


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


def test_runs_queue_with_concurrency_limits(postgres_dagster_home):
    """Runs wait in the queue; the daemon starts at most 8 at once, one research and one training run,
    and re-executes a failed run from its failure twice at most."""
    home, _database = postgres_dagster_home
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        queue = instance.get_concurrency_config().run_queue_config
        assert queue is not None and queue.max_concurrent_runs == 8
        limits = {(each["key"], each.get("value")): each["limit"] for each in queue.tag_concurrency_limits}
        assert limits[("xray/workload", "research")] == 1
        assert limits[("xray/workload", "training")] == 1
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 2
        # the jobs carry the tag the limits read
        for job, workload in (("research_job", "research"), ("training_job", "training")):
            assert defs.resolve_job_def(job).run_tags["xray/workload"] == workload
