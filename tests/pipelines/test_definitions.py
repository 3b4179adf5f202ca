"""The code location loads, validates, and its automation targets what it should."""

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from xray_pipelines.definitions import defs
from xray_pipelines.defs.market_data.automation import hourly_candles, new_symbols
from xray_pipelines.partitions import SYMBOLS

ROOT = Path(__file__).resolve().parents[2]
SCHEDULED = datetime(2026, 11, 25, 10, 5, tzinfo=UTC)


def test_the_code_location_serialises_as_a_code_server_sends_it():
    """The webserver and the daemon get the definitions as a serialised snapshot from a code server;
    a value Dagster cannot serialise there (an Enum as a group name, say) breaks the UI and every
    schedule and sensor while in-process loading still works."""
    from dagster._core.remote_representation.external_data import RepositorySnap
    from dagster._serdes import deserialize_value, serialize_value

    snapshot = deserialize_value(serialize_value(RepositorySnap.from_def(defs.get_repository_def())))
    assert {node.group_name for node in snapshot.asset_nodes} >= {"candles", "research", "learning"}


def test_definitions_load_with_every_asset_check_and_automation():
    repo = defs.get_repository_def()
    assert {key.to_user_string() for key in repo.asset_graph.get_all_asset_keys()} == {
        "markets",
        "candles",
        "candle_quality",
        "features",
        "backtests",
        "filtered_symbols",
        "market_correlation",
        "news_sentiment",
        "strategy_params",
        "training_data",
        "live_fills",
        "shadow_records",
        "model_gbm",
        "model_lstm",
        "model_rl",
        "model_promotion",
        "risk_profiles",
        "promoted_bundle",
    }
    check_names = {key.name for key in repo.asset_graph.asset_check_keys}
    assert check_names == {
        "unique_increasing_timestamps",
        "gaps_within_tolerance",
        "ohlc_consistent",
        "positive_prices",
        "non_negative_volume",
        "enough_bars",
        "fresh",
    }
    assert {s.name for s in repo.schedule_defs} == {"hourly_candles", "daily_markets", "weekly_retraining"}
    assert {s.name for s in repo.sensor_defs} >= {
        "new_symbols", "retrain_on_new_data", "retrain_on_drift", "retrain_on_decay"}
    jobs = {"markets_job", "candles_job", "quality_job", "features_job", "research_job", "training_job"}
    assert jobs <= {
        j.name for j in repo.get_all_jobs()
    }


def test_dagster_definitions_validate_passes(tmp_path):
    env = os.environ | {"DAGSTER_HOME": str(tmp_path)}
    dagster = Path(sys.executable).with_name("dagster")
    result = subprocess.run(
        [str(dagster), "definitions", "validate", "-m", "xray_pipelines.definitions"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Validation successful" in result.stderr + result.stdout


def test_hourly_schedule_requests_one_run_per_symbol(instance):
    instance.add_dynamic_partitions(SYMBOLS, ["BTC/USDT", "ETH/USDT"])
    context = dg.build_schedule_context(instance=instance, scheduled_execution_time=SCHEDULED)
    requests = hourly_candles(context)
    assert sorted(r.partition_key for r in requests) == ["BTC/USDT", "ETH/USDT"]
    assert len({r.run_key for r in requests}) == 2


def test_hourly_schedule_skips_without_partitions(instance):
    result = hourly_candles(dg.build_schedule_context(instance=instance, scheduled_execution_time=SCHEDULED))
    assert isinstance(result, dg.SkipReason)


def test_new_symbols_sensor_backfills_only_symbols_without_candles(instance, resources):
    from xray_pipelines.defs.market_data.candles import candles
    from xray_pipelines.defs.market_data.markets import markets

    assert dg.materialize([markets], instance=instance, resources=resources).success
    assert dg.materialize([candles], instance=instance, resources=resources, partition_key="BTC/USDT").success
    requests = list(new_symbols(dg.build_sensor_context(instance=instance)))
    assert sorted(r.partition_key for r in requests) == ["ETH/USDT", "TGT/USDT"]
