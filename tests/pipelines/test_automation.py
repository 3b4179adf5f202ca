"""The pipeline keeps itself fresh without a person: every schedule and sensor is RUNNING on a new
instance, the automation conditions turn new candles into new research and a new bundle, and the
daemon launches the retraining job when a sensor fires."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from xray_core.bundle import CURRENT, read
from xray_core.candles.store import CandleStore, SeriesKey
from xray_core.settings import load_settings
from xray_pipelines.definitions import defs
from xray_pipelines.partitions import SYMBOLS
from xray_pipelines.resources import (
    ExchangeResource,
    LakeResource,
    MarketDataResource,
    MarketScope,
    ModelsResource,
    ResearchResource,
    RuntimeJournalResource,
)
from xray_sim.exchange.market import DAY_MS, SyntheticMarket

ROOT = Path(__file__).resolve().parents[2]
CHOSEN = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
HOUR_MS = 3_600_000
# What new candles must refresh by themselves (strategy_params waits for its nightly tick, the news
# for its hourly one, training for the retraining sensors).
REFRESHED_BY_CANDLES = {"candle_quality", "features", "backtests", "filtered_symbols", "market_correlation",
                        "risk_profiles", "promoted_bundle"}
# Due on the clock (an hour or a night passing), whatever the data did: allowed in any tick, never
# required by one, so the test holds whenever it runs.
ON_THE_CLOCK = {"live_fills", "shadow_records", "news_sentiment", "strategy_params"}


def test_every_schedule_and_sensor_runs_from_the_start():
    sensors = {s.name: s.default_status for s in defs.sensors}
    assert "xray_automation" in sensors  # Dagster's own default automation sensor would start STOPPED
    assert set(sensors.values()) == {dg.DefaultSensorStatus.RUNNING}, sensors
    schedules = {s.name: s.default_status for s in defs.schedules}
    assert set(schedules.values()) == {dg.DefaultScheduleStatus.RUNNING}, schedules
    automation = next(s for s in defs.sensors if s.name == "xray_automation")
    targeted = automation.asset_selection.resolve(defs.get_repository_def().asset_graph)
    conditioned = {a.key for a in defs.assets if any(a.automation_conditions_by_key.values())}
    assert conditioned <= targeted and {dg.AssetKey("promoted_bundle")} <= conditioned


@pytest.fixture
def resources(emulator, tmp_path):
    return {
        "market": MarketScope(
            exchange=ExchangeResource(exchange_id="mexc", url=emulator.base_url),
            lake=LakeResource(duckdb_path=str(tmp_path / "xray.duckdb"), lake_dir=str(tmp_path / "lake")),
            market_data=MarketDataResource(timeframe="1h", history_days=30, symbols=CHOSEN),
        ),
        "research": ResearchResource(
            optimize_trials=6, optimize_folds=2, clusters=1, min_sharpe=-10.0, min_total_return=-1.0,
            max_drawdown=1.0, min_trades=1, optuna_storage=f"sqlite:///{tmp_path / 'optuna.db'}",
        ),
        "models": ModelsResource(
            tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", artifact_root=f"file://{tmp_path / 'art'}",
            size="test",
        ),
        "journal": RuntimeJournalResource(database_url=f"sqlite:///{tmp_path / 'runtime.db'}"),
    }


def _bundle_version(directory: Path) -> str | None:
    path = directory / CURRENT
    return read(path).get("version") if path.exists() else None


def _requested(result: dg.EvaluateAutomationConditionsResult) -> dict[str, set[str | None]]:
    """Asset name -> the partitions (None: unpartitioned) this tick asked for."""
    requested = {}
    for asset in defs.assets:
        for key in asset.keys:
            partitions = result.get_requested_partitions(key)
            if partitions:
                requested[key.to_user_string()] = set(partitions)
    return requested


def _materialize(instance, resources, names, partition_key=None) -> None:
    result = dg.materialize(list(defs.assets), instance=instance, resources=resources, selection=names,
                            partition_key=partition_key, run_config=QUIET)
    assert result.success, names


def _run_requested(instance, resources, requested: dict[str, set[str | None]]) -> None:
    """Carry out one tick's requests as the daemon would: the unpartitioned assets in one run (Dagster
    orders its steps by dependency), each symbol's features in a run of its own."""
    unpartitioned = sorted(name for name, partitions in requested.items() if partitions == {None})
    if unpartitioned:
        _materialize(instance, resources, unpartitioned)
    for symbol in sorted(requested.get("features", set()) - {None}):
        _materialize(instance, resources, ["features"], partition_key=symbol)


def _until_quiet(instance, resources, cursor) -> tuple[dict[str, set[str | None]], object]:
    """Ticks of the automation sensor, each followed by its runs, until a tick asks for nothing (an
    asset whose parent is in another partitioning waits for the next tick, as under the daemon)."""
    seen: dict[str, set[str | None]] = {}
    for _ in range(10):
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
        cursor, requested = result.cursor, _requested(result)
        if not requested:
            return seen, cursor
        for name, partitions in requested.items():
            seen.setdefault(name, set()).update(partitions)
        _run_requested(instance, resources, requested)
    raise AssertionError(f"the automation never settled: {seen}")


@pytest.mark.slow
def test_new_candles_alone_lead_to_fresh_research_and_a_new_bundle(instance, resources, admin):
    # The daemon's first tick on a new instance: nothing to build from yet.
    start = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    assert set(_requested(start)) <= ON_THE_CLOCK
    _materialize(instance, resources, ["markets"])  # the daily schedule
    symbols = instance.get_dynamic_partitions(SYMBOLS)
    assert sorted(symbols) == sorted(CHOSEN)
    for symbol in symbols:  # the new_symbols sensor's backfill
        _materialize(instance, resources, ["candles"], partition_key=symbol)

    built, cursor = _until_quiet(instance, resources, start.cursor)
    # A new instance builds everything downstream of the candles by itself, the bundle too.
    assert REFRESHED_BY_CANDLES | {"strategy_params", "news_sentiment"} <= set(built), built
    assert built["features"] == set(CHOSEN)
    assert not {"training_data", "model_gbm"} & set(built)  # training is the sensors' call
    bundles = resources["market"].lake.research().lake_dir.parent / "bundles"
    before = _bundle_version(bundles)
    assert before is not None

    admin.advance(3 * HOUR_MS)  # three more hourly bars close on the exchange
    for symbol in symbols:  # the hourly schedule's runs
        _materialize(instance, resources, ["candles"], partition_key=symbol)
    refreshed, _ = _until_quiet(instance, resources, cursor)
    assert set(refreshed) - ON_THE_CLOCK == REFRESHED_BY_CANDLES, refreshed
    after = _bundle_version(bundles)
    assert after is not None and after != before  # the bundle carries the new data versions


def _good_candles(duckdb_file: Path) -> None:
    """Two weeks of hourly bars of two symbols in the lake, with a `good` verdict."""
    market = SyntheticMarket(seed=3, history_days=20)
    store = CandleStore(duckdb_file)
    end = market.listed_from_ms + 14 * DAY_MS
    rows = []
    for symbol in ("BTC/USDT", "ETH/USDT"):
        bars = market.bars(symbol, "1h", market.listed_from_ms, end, end)
        frame = pl.DataFrame({
            "timestamp": pl.Series(bars.timestamp).cast(pl.Datetime("ms")).dt.replace_time_zone("UTC"),
            "open": bars.open, "high": bars.high, "low": bars.low, "close": bars.close, "volume": bars.volume,
        })
        store.upsert(SeriesKey("mexc", symbol, "1h"), frame)
        rows.append({"symbol": symbol, "bars": frame.height, "verdict": "good", "reason": "checks passed"})
    store.save_quality("mexc", "1h", pl.DataFrame(rows), 0)


@pytest.mark.slow
def test_the_daemon_launches_training_when_a_sensor_fires(tmp_path, monkeypatch):
    """`dagster-daemon` on a new instance: the new-data sensor sees good candles and no training yet,
    and the daemon launches `training_job` (queued here: this instance runs nothing, so the test
    does not train)."""
    dagster_home, xray_home = tmp_path / "dagster_home", tmp_path / "xray"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text(
        "run_coordinator:\n"
        "  module: dagster._core.run_coordinator\n"
        "  class: QueuedRunCoordinator\n"
        "  config:\n"
        "    max_concurrent_runs: 0\n"
        "telemetry:\n"
        "  enabled: false\n"
    )
    monkeypatch.setenv("XRAY_HOME", str(xray_home))
    _good_candles(load_settings().store.duckdb_file)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XRAY_", "DAGSTER_"))}
    env |= {"DAGSTER_HOME": str(dagster_home), "XRAY_HOME": str(xray_home),
            "XRAY_EXCHANGE_URL": "http://127.0.0.1:9"}  # nothing may reach a real exchange
    daemon = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", "workspace.yaml"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    runs = []
    try:
        with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
            deadline = time.monotonic() + 300  # a wait for the daemon's first sensor tick, not a verdict
            # The sensor creates the run, then the coordinator queues it (NOT_STARTED, then QUEUED).
            queued = dg.RunsFilter(job_name="training_job", statuses=[dg.DagsterRunStatus.QUEUED])
            while not runs and time.monotonic() < deadline and daemon.poll() is None:
                time.sleep(2)
                runs = instance.get_runs(queued)
    finally:
        daemon.terminate()
        try:
            _, stderr = daemon.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            daemon.kill()
            _, stderr = daemon.communicate()
    assert runs, f"no training_job run was queued; the daemon said:\n{stderr[-3000:]}"
    assert runs[0].tags.get("xray/trigger") == "first training"
    assert runs[0].status == dg.DagsterRunStatus.QUEUED
