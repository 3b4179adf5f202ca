"""The runtime trades a registered model by its MLflow alias (`models:/xray-gbm@champion`), and a
promotion reaches it without a restart: the bundle swaps between bars, positions stay."""

import asyncio

import numpy as np
import polars as pl
import pytest
from service_support import MINUTE, add_users, fast_bundle, run_bars, start_service

from xray_core.bundle import Bundle, publish
from xray_core.learning.dataset import FEATURES
from xray_core.learning.gate import GateConfig
from xray_core.learning.models.registry import build_model
from xray_pipelines.mlops.registry import CHAMPION, Tracking, gate_challenger, log_model_version

pytestmark = pytest.mark.slow


def _learnable_frame() -> pl.DataFrame:
    rng = np.random.default_rng(5)
    n = 500
    stamps = pl.datetime_range(pl.datetime(2026, 1, 1), pl.datetime(2026, 1, 1) + pl.duration(hours=n - 1),
                               "1h", eager=True, time_zone="UTC").cast(pl.Datetime("ms", "UTC"))
    values = rng.normal(size=(n, len(FEATURES)))
    label = (values[:, 0] > 0).astype(np.int64)
    frame = pl.DataFrame({"timestamp": stamps, "symbol": ["AAA/USDT"] * n})
    frame = frame.with_columns(pl.Series(name, values[:, k]) for k, name in enumerate(FEATURES))
    return frame.with_columns(pl.Series("forward_return", label * 0.01), pl.Series("label", label),
                              pl.lit(1.0).alias("weight"))


@pytest.fixture
def champion(tmp_path):
    tracking = Tracking(f"sqlite:///{tmp_path / 'mlflow.db'}", f"file://{tmp_path / 'artifacts'}")
    tracking.activate()
    frame = _learnable_frame()
    model = build_model("gbm").fit(frame)
    metrics = {"oos_sharpe": 1.5, "bh_sharpe": 0.2, "oos_trades": 30, "oos_return": 0.1}
    version = log_model_version("gbm", model, params=model.params(), metrics=metrics,
                                tags={"xray.data_version": "d1"},
                                example=frame.select("timestamp", "symbol", *FEATURES).head(8))
    # Promoted by hand: what is tested here is trading a champion, not earning it (tests/core/learning).
    decision = gate_challenger(tracking.client(), "gbm", GateConfig(), {}, force=True)
    assert decision.promote, decision.reason
    return {"name": "xray-gbm", "uri": f"models:/xray-gbm@{CHAMPION}", "version": int(version.version)}


def model_bundle(champion, symbols=("BTC/USDT", "ETH/USDT")):
    return Bundle(
        exchange="mexc", timeframe="1m",
        symbols=[{"symbol": s, "strategy": "model", "params": {"long_above": 0.5, "short_below": 0.5},
                  "group": 0} for s in symbols],
        risk_profiles={}, models={"gbm": champion}, feature_version="f", code_version="c",
        data_versions={s: f"data-{s}" for s in symbols},
    )


async def test_the_champion_model_trades_and_a_new_promotion_swaps_in_between_bars(
        champion, tmp_path, fixed_emulator, fixed_admin):
    from cryptography.fernet import Fernet

    from xray_runtime.settings import RuntimeSettings

    settings = RuntimeSettings(
        database_url=f"sqlite:///{tmp_path / 'runtime.db'}", bundle_dir=tmp_path / "bundles",
        fernet_key=Fernet.generate_key().decode(), paper_url=fixed_emulator.base_url, http_port=0,
        reconcile_every_s=3600,
    )
    bundle = model_bundle(champion)
    publish(bundle, settings.bundle_dir)
    add_users(settings, fixed_admin, 2)
    service = await start_service(settings, fixed_emulator.base_url)
    try:
        assert service.parts.watcher.current.predictors["gbm"] is not None  # loaded by alias
        model_reports = await run_bars(service, fixed_admin, 8)
        held_before = service.parts.book.position.copy()
        rules = fast_bundle(["BTC/USDT", "ETH/USDT"])
        publish(rules, settings.bundle_dir)  # a new promotion, while running
        await asyncio.to_thread(fixed_admin.advance, MINUTE)
        swapped = await service.step()
        rule_reports = [swapped, *await run_bars(service, fixed_admin, 6)]
    finally:
        await service.stop()
    model_orders = [o for r in model_reports for o in r.orders]
    assert model_orders, "the model's signals traded"
    lineages = {(o.lineage.strategy, o.lineage.model_version, o.lineage.bundle_version) for o in model_orders}
    assert lineages == {("model", f"xray-gbm/{champion['version']}", bundle.version)}
    assert service.health()["bundle"] == rules.version
    assert service.parts.book.position.shape == held_before.shape  # the same users and symbols
    assert all(o.lineage.bundle_version == rules.version for r in rule_reports for o in r.orders)
