"""The self-learning loop end to end, small: the emulator's candles → research → training → bundle → the
runtime paper-trades bars and shadow-trades the models → `live_fills` → the new-data sensor fires →
a new challenger is trained with those fills and shadow-traded → the gate's decision with its reason.

Every step is the product's own: the Dagster assets (materialised as the daemon's runs would), the
retraining sensor evaluated on the instance, MLflow, and the runtime's service on the emulator (the
paper venue) with its SQL journal, which the pipelines read back through the journal resource."""


import dagster as dg
import numpy as np
import polars as pl
import pytest
from cryptography.fernet import Fernet
from service_support import add_users, run_bars, start_service

from xray_core.bundle import CURRENT, read
from xray_core.learning.shadow_record import shadow_returns
from xray_core.research.store import LakeTable
from xray_pipelines.definitions import defs
from xray_pipelines.defs.learning.retraining import retrain_on_new_data
from xray_pipelines.mlops.registry import list_versions
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
from xray_runtime.settings import RuntimeSettings

pytestmark = pytest.mark.slow
CHOSEN = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
HOUR_MS = 3_600_000
BARS = 48  # hourly bars the runtime trades before retraining
HORIZON = 6  # label horizon (bars): the traded bars get labels a few hours after they close
# What one run of `training_job` builds here: the learning group without the two slow model kinds.
TRAINING = ["live_fills", "shadow_records", "training_data", "model_gbm", "model_promotion",
            "promoted_bundle"]
RESEARCH = ["candle_quality", "backtests", "filtered_symbols", "market_correlation", "news_sentiment",
            "strategy_params", "risk_profiles"]


@pytest.fixture
def loop(fixed_emulator, fixed_admin, tmp_path, monkeypatch):
    tracking, artefacts = f"sqlite:///{tmp_path / 'mlflow.db'}", f"file://{tmp_path / 'art'}"
    monkeypatch.setenv("XRAY_MODELS_TRACKING_URI", tracking)  # where the runtime loads models from
    database_url = f"sqlite:///{tmp_path / 'runtime.db'}"
    resources = {
        "market": MarketScope(
            exchange=ExchangeResource(exchange_id="mexc", url=fixed_emulator.base_url),
            lake=LakeResource(duckdb_path=str(tmp_path / "xray.duckdb"), lake_dir=str(tmp_path / "lake")),
            market_data=MarketDataResource(timeframe="1h", history_days=30, symbols=CHOSEN),
        ),
        "research": ResearchResource(
            optimize_trials=6, optimize_folds=2, clusters=1, min_sharpe=-10.0, min_total_return=-1.0,
            max_drawdown=1.0, min_trades=1, optuna_storage=f"sqlite:///{tmp_path / 'optuna.db'}",
        ),
        "models": ModelsResource(tracking_uri=tracking, artifact_root=artefacts, size="test", folds=2,
                                 horizon_bars=HORIZON, embargo_bars=HORIZON, retrain_new_bars=12),
        "journal": RuntimeJournalResource(database_url=database_url),
    }
    runtime = RuntimeSettings(
        database_url=database_url, bundle_dir=tmp_path / "bundles", fernet_key=Fernet.generate_key().decode(),
        paper_url=fixed_emulator.base_url, http_port=0, reconcile_every_s=3600,
    )
    with dg.instance_for_test() as instance:
        yield instance, resources, runtime, fixed_emulator, fixed_admin


def _materialize(instance, resources, names, partition_key=None):
    result = dg.materialize(list(defs.assets), instance=instance, resources=resources, selection=names,
                            partition_key=partition_key, run_config=QUIET)
    assert result.success, names
    return result


def _ingest(instance, resources, symbols):
    """The hourly schedule's runs: new closed candles of every symbol."""
    for symbol in symbols:
        _materialize(instance, resources, ["candles"], partition_key=symbol)


def _metadata(result, asset):
    return result.asset_materializations_for_node(asset)[0].metadata


def _bundle(runtime):
    return read(runtime.bundle_dir / CURRENT)


async def test_what_it_trades_teaches_it_and_a_new_challenger_is_shadow_traded_and_judged(loop):
    instance, resources, runtime, emulator, admin = loop
    # 1. Candles → research → training → gate → bundle (the first training, as the sensor asks for it).
    _materialize(instance, resources, ["markets"])
    symbols = instance.get_dynamic_partitions(SYMBOLS)
    _ingest(instance, resources, symbols)
    _materialize(instance, resources, ["candle_quality"])
    for symbol in symbols:
        _materialize(instance, resources, ["features"], partition_key=symbol)
    _materialize(instance, resources, RESEARCH[1:])
    first = _materialize(instance, resources, TRAINING)
    assert _metadata(first, "training_data")["live_fills"].value == 0  # nobody has traded yet
    client = resources["models"].tracking().client()
    v1 = {r["version"]: r for r in list_versions(client)}
    assert list(v1) == [1] and v1[1]["gate"]  # judged, with its reason
    bundle = _bundle(runtime)
    shadowed = {m["version"] for m in [*bundle["models"].values(), *bundle["challengers"].values()]}
    assert shadowed == {1} and bundle["costs"] == {"fee": 0.001, "slippage": 0.0005}

    # 2. The runtime paper-trades the bundle on the emulator and keeps a shadow book of model v1.
    _, keys = add_users(runtime, admin, 2)
    service = await start_service(runtime, emulator.base_url)
    try:
        assert [m.split()[0] for m in service.health()["shadow_models"]] == ["xray-gbm/1"]
        traded = await run_bars(service, admin, BARS, HOUR_MS)
    finally:
        await service.stop()
    orders = [o for user_id in keys for o in service.parts.journal.orders(user_id)]
    fills = [f for user_id in keys for f in service.parts.journal.fills(user_id)]
    assert fills, f"the bundle traded in {BARS} bars ({len(orders)} orders)"
    # Only a champion a symbol is planned on may order; a challenger is shadowed, never ordered.
    champions = {f"{m['name']}/{m['version']}" for m in bundle["models"].values()}
    assert {o.lineage.model_version for o in orders} <= {None, *champions}
    assert sum(r.shadow_rows for r in traded) >= BARS * len(bundle["symbols"])

    # 3. New candles → the retraining sensor fires → the training job learns from the fills.
    await_labels = HORIZON + 2
    admin.advance(await_labels * HOUR_MS)  # the last traded bars get their labels
    _ingest(instance, resources, symbols)
    with dg.build_sensor_context(instance=instance, resources=resources) as context:
        request = retrain_on_new_data(context)
    assert isinstance(request, dg.RunRequest), request
    assert request.run_key.startswith("new-data-")
    second = _materialize(instance, resources, TRAINING)
    assert _metadata(second, "live_fills")["dagster/row_count"].value == len(fills)
    assert _metadata(second, "training_data")["weighted_rows"].value > 0  # the traded bars weigh more
    versions = {r["version"]: r for r in list_versions(client)}
    assert sorted(versions) == [1, 2]
    assert versions[2]["lineage"]["data_version"] != v1[1]["lineage"]["data_version"]
    # The gate decided on v2 with its reason (promoted or kept: the data decides, not this test).
    assert versions[2]["gate"], versions[2]
    decisions = _metadata(second, "model_promotion")["decisions"].value
    assert "xray-gbm" in decisions  # the asset's table of decisions, shown in the UI
    bundle = _bundle(runtime)
    listed = {m["version"] for m in [*bundle["models"].values(), *bundle["challengers"].values()]}
    assert 2 in listed  # the new challenger (or champion) is shadow-traded next

    # 4. The runtime shadow-trades v2 on the next bars; the pipelines read its record back.
    service = await start_service(runtime, emulator.base_url)
    try:
        assert any(m.startswith("xray-gbm/2 ") for m in service.health()["shadow_models"])
        await run_bars(service, admin, 3, HOUR_MS)
    finally:
        await service.stop()
    records = _materialize(instance, resources, ["shadow_records"])
    assert _metadata(records, "shadow_records")["books"].value >= 2 * len(bundle["symbols"])
    books = shadow_returns(resources["market"].read(LakeTable.SHADOW_BARS))
    v1_book = [series for (model, version, _), series in books.items() if version == 1]
    v2_book = [series for (model, version, _), series in books.items() if version == 2]
    assert v1_book and min(len(s) for s in v1_book) >= BARS  # the whole first session, then on
    assert v2_book and all(len(s) >= 3 for s in v2_book)
    assert all(np.isfinite(s.ret).all() for s in books.values())
    stored = resources["market"].read(LakeTable.SHADOW_BARS)
    assert set(stored.filter(pl.col("version") == 2)["symbol"]) == {s["symbol"] for s in bundle["symbols"]}
