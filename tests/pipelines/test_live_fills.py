"""`live_fills`: the runtime's journal (written here with the runtime's own API) read by the pipelines
through the journal schema in xray_core, snapshot into the lake, and weighting the training data."""

import os
import uuid
from datetime import UTC, datetime, timedelta

import dagster as dg
import polars as pl
import psycopg
import pytest
from live_support import HOUR_MS, bar_ms, journal_resource, market_with, record_trades, synthetic_candles

from xray_core.errors import ConfigError
from xray_core.research.store import LakeTable
from xray_core.trading.orders import Side
from xray_pipelines.definitions import defs
from xray_pipelines.journal import LIVE_FILLS_SCHEMA, read_live_fills
from xray_pipelines.resources import ModelsResource, ResearchResource, RuntimeJournalResource

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def test_the_journal_is_read_with_each_fills_lineage(tmp_path):
    journal = journal_resource(tmp_path)
    assert journal.fills().is_empty() and not (tmp_path / "runtime.db").exists()  # read only: no file made
    t0 = 1_767_225_600_000
    record_trades(journal, [("BTC/USDT", t0, Side.BUY, 100.0),
                            ("BTC/USDT", t0 + 5 * HOUR_MS, Side.SELL, 110.0)])
    record_trades(journal, [("ETH/USDT", t0, Side.BUY, 10.0)], model_version=None, user_id="paper-2")
    fills = journal.fills()
    assert fills.schema == pl.Schema(LIVE_FILLS_SCHEMA)
    assert fills.height == 3
    btc = fills.filter(pl.col("symbol") == "BTC/USDT").sort("timestamp")
    assert btc["side"].to_list() == ["buy", "sell"] and btc["price"].to_list() == [100.0, 110.0]
    assert btc["model_version"].to_list() == ["xray-gbm/1"] * 2 and set(btc["strategy"]) == {"model"}
    assert bar_ms(btc.select(pl.col("bar").alias("timestamp"))).tolist() == [t0, t0 + 5 * HOUR_MS]
    assert (btc["timestamp"] > btc["bar"]).all()  # filled after the decision bar closed
    eth = fills.filter(pl.col("symbol") == "ETH/USDT").row(0, named=True)
    assert eth["model_version"] is None and eth["strategy"] == "ema_cross" and eth["user_id"] == "paper-2"


PG_ADMIN = os.environ.get("XRAY_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.mark.postgres
def test_the_journal_is_read_from_postgres():
    """Production's journal: a bare postgresql:// URL means psycopg 3, as in the runtime; a database
    the runtime has not written yet reads as no fills."""
    name = f"xray_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    try:
        journal = RuntimeJournalResource(database_url=f"{PG_ADMIN.rsplit('/', 1)[0]}/{name}")
        assert journal.fills().is_empty()
        t0 = 1_767_225_600_000
        record_trades(journal, [("BTC/USDT", t0, Side.BUY, 100.0),
                                ("BTC/USDT", t0 + HOUR_MS, Side.SELL, 99.0)])
        fills = journal.fills()
        assert fills.schema == pl.Schema(LIVE_FILLS_SCHEMA)
        assert fills["side"].to_list() == ["buy", "sell"] and set(fills["model_version"]) == {"xray-gbm/1"}
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as con:
            con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_bad_journal_url_is_a_config_error():
    with pytest.raises(ConfigError, match="XRAY_RUNTIME_DATABASE_URL"):
        read_live_fills("not a url")


def _materialize(instance, resources, *names):
    result = dg.materialize(list(defs.assets), instance=instance, resources=resources,
                            selection=list(names), run_config=QUIET)
    assert result.success
    return result


@pytest.fixture
def lake(tmp_path):
    candles = synthetic_candles(40)
    return candles, {
        "market": market_with(tmp_path, candles),
        "journal": journal_resource(tmp_path),
        "research": ResearchResource(),
        "models": ModelsResource(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
                                 artifact_root=f"file://{tmp_path / 'artifacts'}", horizon_bars=12),
    }


def test_live_fills_snapshots_the_journal_into_the_lake_with_metadata(instance, lake):
    candles, resources = lake
    empty = _materialize(instance, resources, "live_fills").asset_materializations_for_node("live_fills")[0]
    assert empty.metadata["dagster/row_count"].value == 0
    stamps = bar_ms(candles["SOL/USDT"])
    record_trades(resources["journal"], [("SOL/USDT", int(stamps[300]), Side.BUY, 1.0),
                                         ("SOL/USDT", int(stamps[310]), Side.SELL, 1.1)])
    event = _materialize(instance, resources, "live_fills").asset_materializations_for_node("live_fills")[0]
    assert event.metadata["dagster/row_count"].value == 2
    assert event.metadata["model_fills"].value == 2 and event.metadata["users"].value == 1
    assert len(event.metadata["preview"].value.records) == 2
    assert "xray-gbm/1" in event.metadata["by_strategy"].value
    assert event.tags["dagster/data_version"] != empty.tags["dagster/data_version"]
    stored = resources["market"].read(LakeTable.LIVE_FILLS)
    assert stored.height == 2 and set(stored["symbol"]) == {"SOL/USDT"}


def test_fills_add_weight_to_the_bars_the_runtime_traded(instance, lake):
    candles, resources = lake
    research = resources["market"].lake.research()

    def build():
        result = _materialize(instance, resources, "live_fills", "training_data")
        frame = research.read_series("training", "mexc", "1h", "all")
        return frame, result.asset_materializations_for_node("training_data")[0]

    before, before_event = build()
    assert (before["weight"] == 1.0).all()
    stamps = bar_ms(candles["ETH/USDT"])
    traded = [int(stamps[400]), int(stamps[420])]
    record_trades(resources["journal"], [("ETH/USDT", traded[0], Side.BUY, 1.0),
                                         ("ETH/USDT", traded[1], Side.SELL, 1.0)])
    after, after_event = build()
    heavy = after.filter(pl.col("weight") > 1.0)
    assert heavy["symbol"].to_list() == ["ETH/USDT"] * 2
    assert sorted(heavy["timestamp"].dt.epoch("ms").to_list()) == traded  # the decision bars, no others
    assert after.drop("weight").equals(before.drop("weight"))  # labels stay the market's
    assert after_event.metadata["live_fills"].value == 2 and after_event.metadata["weighted_rows"].value == 2
    assert after_event.tags["dagster/data_version"] != before_event.tags["dagster/data_version"]


def test_live_fills_refreshes_itself_every_hour(instance):
    """Its automation condition asks for one run per hourly tick (whoever evaluates the conditions)."""
    start = datetime(2026, 12, 1, 10, 30, tzinfo=UTC)
    counts, cursor = [], None
    for minutes in (0, 10, 40, 50, 100):
        result = dg.evaluate_automation_conditions(
            defs=defs, asset_selection=dg.AssetSelection.assets("live_fills"), instance=instance,
            cursor=cursor, evaluation_time=start + timedelta(minutes=minutes),
        )
        counts.append(result.total_requested)
        cursor = result.cursor
    assert counts == [0, 0, 1, 0, 1]  # 11:00 and 12:00 passed; nothing between them
