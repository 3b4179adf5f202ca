"""Two machines that share only Postgres: the pipelines (one XRAY_HOME) publish the promoted bundle to a
table, a runtime (another XRAY_HOME, whose bundle directory stays empty) trades it, then trades the next
one the pipelines promote, without a restart."""

import json
import os
import uuid

import dagster as dg
import polars as pl
import psycopg
import pytest
from cryptography.fernet import Fernet
from service_support import add_users, fast_bundle, run_bars, start_service

from xray_core.bundle_store import PostgresStore, open_store
from xray_core.errors import ConfigError
from xray_core.research.store import LakeTable
from xray_pipelines.defs.learning.bundle import promoted_bundle
from xray_pipelines.mlops.registry import tracking_for
from xray_pipelines.resources import (
    ExchangeResource,
    LakeResource,
    MarketDataResource,
    MarketScope,
    ModelsResource,
    ResearchResource,
)
from xray_runtime.artefacts import ArtefactWatcher
from xray_runtime.settings import RuntimeSettings

pytestmark = pytest.mark.postgres

ADMIN_URL = os.environ.get("XRAY_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
SYMBOLS = ["BTC/USDT", "ETH/USDT"]


@pytest.fixture
def bundle_url():
    """A bundle table of this test's own in the shared database, dropped afterwards."""
    table = f"xray_bundles_{uuid.uuid4().hex[:10]}"
    server = ADMIN_URL.replace("postgresql://", "postgresql+psycopg://", 1)
    yield f"{server}?table={table}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as con:
        con.execute(f'DROP TABLE IF EXISTS "{table}"')


def _pipelines(home, emulator_url, bundle_url):
    """The pipelines' machine: its own lake and MLflow under `home`; the bundle goes to `bundle_url`."""
    lake = LakeResource(duckdb_path=str(home / "xray.duckdb"), bundle_url=bundle_url)
    market = MarketScope(exchange=ExchangeResource(exchange_id="mexc", url=emulator_url), lake=lake,
                         market_data=MarketDataResource(timeframe="1m", symbols=SYMBOLS))
    tracking = tracking_for(None, "xray", home)
    models = ModelsResource(tracking_uri=tracking.tracking_uri, artifact_root=tracking.artifact_root)
    return {"market": market, "models": models, "research": ResearchResource()}


def _research(market, fast, slow):
    """What the ingest and research assets left in the lake: candles (the bundle's data versions), the
    kept universe and each symbol's parameters."""
    bars = pl.DataFrame({
        "timestamp": pl.datetime_range(pl.datetime(2026, 5, 28, time_zone="UTC"),
                                       pl.datetime(2026, 5, 28, 0, 4, time_zone="UTC"), "1m", eager=True),
        "open": [1.0] * 5, "high": [2.0] * 5, "low": [0.5] * 5, "close": [1.5] * 5, "volume": [10.0] * 5,
    })
    for symbol in SYMBOLS:
        market.lake.candles().upsert(market.series_key(symbol), bars)
    market.write(LakeTable.FILTERED_SYMBOLS, pl.DataFrame({"symbol": SYMBOLS, "kept": [True] * len(SYMBOLS)}))
    market.write(LakeTable.SYMBOL_PARAMS, pl.DataFrame({
        "symbol": SYMBOLS, "strategy": ["sma_cross"] * len(SYMBOLS),
        "params": [json.dumps({"fast": fast, "slow": slow})] * len(SYMBOLS), "group": [0] * len(SYMBOLS),
    }))


def _promote(instance, resources):
    result = dg.materialize([promoted_bundle], instance=instance, resources=resources)
    assert result.success
    return result.asset_materializations_for_node("promoted_bundle")[0].metadata["version"].value


async def test_a_runtime_elsewhere_trades_what_the_pipelines_promote_through_postgres(
        tmp_path, monkeypatch, fixed_emulator, fixed_admin, bundle_url):
    pipelines_home, runtime_home = tmp_path / "pipelines", tmp_path / "runtime"
    pipelines_home.mkdir()
    resources = _pipelines(pipelines_home, fixed_emulator.base_url, bundle_url)
    _research(resources["market"], 2, 3)
    with dg.instance_for_test() as instance:
        first = _promote(instance, resources)
        assert _promote(instance, resources) == first  # unchanged content: nothing new published

        monkeypatch.setenv("XRAY_HOME", str(runtime_home))
        settings = RuntimeSettings(
            database_url=f"sqlite:///{tmp_path / 'runtime.db'}", bundle_dir=runtime_home / "bundles",
            bundle_url=bundle_url, fernet_key=Fernet.generate_key().decode(),
            paper_url=fixed_emulator.base_url, http_port=0, reconcile_every_s=3600,
        )
        add_users(settings, fixed_admin, 2)
        service = await start_service(settings, fixed_emulator.base_url)
        try:
            assert service.parts.watcher.current.version == first
            reports = await run_bars(service, fixed_admin, 8)
            _research(resources["market"], 3, 5)  # the nightly research moved: a new bundle
            second = _promote(instance, resources)
            reports += await run_bars(service, fixed_admin, 10)
            health = service.health()
        finally:
            await service.stop()
    assert second != first
    assert health["bundle"] == second and health["bundle_refused"] is None
    orders = [o for r in reports for o in r.orders]
    traded = {o.lineage.bundle_version for o in orders}
    assert traded == {first, second}, "the runtime traded the first bundle, then the second"
    assert all(json.loads(o.lineage.params) == {"fast": 3, "slow": 5}
               for o in orders if o.lineage.bundle_version == second)
    assert not (runtime_home / "bundles").exists(), "the runtime read nothing from its own directory"
    assert not (pipelines_home / "bundles").exists(), "the pipelines wrote nothing to a local directory"
    with psycopg.connect(ADMIN_URL) as con:
        table = bundle_url.rsplit("table=", 1)[1]
        rows = con.execute(f'SELECT version FROM "{table}" ORDER BY seq').fetchall()
    assert [r[0] for r in rows] == [first, second]


def test_a_rollback_appends_and_a_torn_reader_never_sees_half(bundle_url):
    store = open_store(bundle_url, default_dir=None)  # type: ignore[arg-type]
    assert isinstance(store, PostgresStore)
    assert store.stamp() is None and store.current() is None
    one, two = fast_bundle(fast=2, slow=3), fast_bundle(fast=3, slow=5)
    assert store.publish(one)[1] and store.publish(two)[1]
    assert not store.publish(two)[1]
    assert store.publish(one)[1]  # back to the first: appended, current again
    snapshot = store.current()
    assert snapshot is not None and snapshot.data["version"] == one.version


@pytest.mark.parametrize("url", ["s3://bucket/bundles", "postgresql://h/db?table=drop;table"])
def test_a_bundle_url_it_cannot_use_is_one_clear_error(url):
    with pytest.raises(ConfigError) as caught:
        open_store(url, default_dir=None)  # type: ignore[arg-type]
    assert "\n" not in str(caught.value) and ("scheme" in str(caught.value) or "table" in str(caught.value))


def test_models_registered_on_a_tracking_server_go_to_its_artefact_store(tmp_path):
    """A local artefact directory would be unreachable from a runtime on another machine."""
    assert tracking_for("http://mlflow:5000", "xray", tmp_path).artifact_root == ""
    assert tracking_for(None, "xray", tmp_path).artifact_root.startswith("file://")


def test_an_unreachable_store_is_reported_and_the_last_bundle_keeps_trading(bundle_url):
    store = open_store(bundle_url, default_dir=None)  # type: ignore[arg-type]
    store.publish(fast_bundle())
    watcher = ArtefactWatcher(store, loader=lambda uri: None)
    assert watcher.poll() and watcher.current is not None
    good = watcher.current.version
    # the same table on a server that is not there (a closed port): one line, no password, no crash
    watcher.store = open_store("postgresql+psycopg://postgres:hunter2@127.0.0.1:1/test?table=xray_bundles",
                               default_dir=None)  # type: ignore[arg-type]
    assert not watcher.poll()
    assert watcher.current.version == good
    assert watcher.refused and "unreachable" in watcher.refused and "hunter2" not in watcher.refused
    assert "\n" not in watcher.refused


def test_the_code_location_reads_the_bundle_url_at_run_time_never_showing_it(monkeypatch):
    """A bundle URL with a password is wired as an EnvVar: the resource config holds its name only."""
    from xray_core.settings import load_settings
    from xray_pipelines.resources import build_resources

    secret_url = "postgresql+psycopg://xray:hunter2@db/xray?table=xray_bundles"
    monkeypatch.setenv("XRAY_RUNTIME_BUNDLE_URL", secret_url)
    lake = build_resources(load_settings())["lake"]
    assert isinstance(lake.bundle_url, dg.EnvVar)
    assert lake.bundle_url.env_var_name == "XRAY_RUNTIME_BUNDLE_URL"
    assert "hunter2" not in repr(lake)
    monkeypatch.delenv("XRAY_RUNTIME_BUNDLE_URL")
    assert build_resources(load_settings())["lake"].bundle_url == ""
