"""The self-learning loop end to end on a Dagster instance: emulator candles → training data → three
models trained, evaluated out of sample and registered in MLflow → the promotion gate."""

import dagster as dg
import pytest

from xray_core.learning.dataset import FEATURES, LABEL_COLUMNS
from xray_pipelines.definitions import defs
from xray_pipelines.mlops.registry import CHALLENGER, list_versions, load_evidence
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

CHOSEN = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "ADA/USDT"]
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
ASSETS = list(defs.assets)


@pytest.fixture
def learning_resources(emulator, tmp_path):
    return {
        "market": MarketScope(
            exchange=ExchangeResource(exchange_id="mexc", url=emulator.base_url),
            lake=LakeResource(duckdb_path=str(tmp_path / "xray.duckdb"), lake_dir=str(tmp_path / "lake")),
            market_data=MarketDataResource(timeframe="1h", history_days=40, symbols=CHOSEN),
        ),
        "research": ResearchResource(),
        "journal": RuntimeJournalResource(database_url=f"sqlite:///{tmp_path / 'runtime.db'}"),
        "models": ModelsResource(
            tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
            artifact_root=f"file://{tmp_path / 'artifacts'}",
            size="test",
            folds=2,
            horizon_bars=12,
            embargo_bars=12,
        ),
    }


def _materialize(instance, resources, *names, partition_key=None):
    result = dg.materialize(
        ASSETS,
        instance=instance,
        resources=resources,
        selection=list(names),
        partition_key=partition_key,
        run_config=QUIET,
    )
    assert result.success, names
    return result


@pytest.mark.slow
def test_three_models_train_register_and_meet_the_gate(instance, learning_resources):
    _materialize(instance, learning_resources, "markets")
    for symbol in instance.get_dynamic_partitions(SYMBOLS):
        _materialize(instance, learning_resources, "candles", partition_key=symbol)
    _materialize(instance, learning_resources, "candle_quality")

    _materialize(instance, learning_resources, "live_fills")  # the runtime has not traded yet
    data = _materialize(instance, learning_resources, "training_data")
    frame = learning_resources["market"].lake.research().read_series("training", "mexc", "1h", "all")
    assert frame.columns == ["timestamp", "symbol", *FEATURES, *LABEL_COLUMNS, "weight"]
    assert set(frame["symbol"]) == set(CHOSEN)
    assert (frame["weight"] == 1.0).all()  # no user has traded: training does not need it
    version = data.asset_materializations_for_node("training_data")[0].tags["dagster/data_version"]

    for kind in ("gbm", "lstm", "rl"):
        result = _materialize(instance, learning_resources, f"model_{kind}")
        metadata = result.asset_materializations_for_node(f"model_{kind}")[0].metadata
        for key in ("oos_sharpe", "oos_return", "oos_max_drawdown", "bh_sharpe", "bh_return",
                    "oos_equity", "oos_equity_by_fold", "mlflow_figures"):
            assert key in metadata, (kind, key)
        assert metadata["oos_equity"].value.startswith("![")  # the plot, inline in the Dagster UI
        by_fold = metadata["oos_equity_by_fold"].value
        assert [r.data["fold"] for r in by_fold.records] == [0, 1]
        assert {c.name for c in by_fold.schema.columns} >= {"oos_return", "bh_return", "flat_return"}
        figures = metadata["mlflow_figures"].value
        assert figures == ["oos_equity/all_folds.png", "oos_equity/fold_0.png", "oos_equity/fold_1.png"]
        run_id = metadata["mlflow_run_id"].value
        logged = learning_resources["models"].tracking().client().list_artifacts(run_id, "oos_equity")
        assert sorted(a.path for a in logged) == figures and all(a.file_size for a in logged)

    client = learning_resources["models"].tracking().client()
    rows = list_versions(client)
    assert {r["flavor"] for r in rows} == {"sklearn", "lightning", "sb3"}
    assert all(CHALLENGER in r["aliases"] for r in rows)
    assert all(r["lineage"]["data_version"] == version for r in rows)
    assert all("oos_sharpe" in r["metrics"] for r in rows)

    promotion = _materialize(instance, learning_resources, "model_promotion")
    decisions = promotion.asset_materializations_for_node("model_promotion")[0].metadata["decisions"].value
    for name in ("xray-gbm", "xray-lstm", "xray-rl"):
        assert name in decisions
    judged = list_versions(client)
    for r in judged:  # every challenger was judged on paired evidence, with its numbers and reason
        keys = {"verdict", "reason", "p_value", "trials", "oos_sharpe_ci_low", "sharpe_at_2x_costs"}
        assert set(r["gate"]) >= keys, r["gate"]
        assert r["gate"]["trials"] == 1 and r["gate"]["source"] == "walk-forward", r["gate"]
        assert ("champion" in r["aliases"]) == (r["gate"]["verdict"] == "promote"), r
        evidence = load_evidence(client, client.get_model_version(r["name"], str(r["version"])))
        assert evidence is not None and evidence.champion is None  # the first ones face the baselines
        assert evidence.challenger.size == evidence.buy_and_hold.size == evidence.challenger_2x.size > 100
        assert set(evidence.trades_per_symbol) == set(CHOSEN)
    again = _materialize(instance, learning_resources, "model_promotion")  # nothing new to judge
    assert again.asset_materializations_for_node("model_promotion")[0].metadata["promoted"].value == 0


def test_the_bundle_shows_its_symbols_and_strategies_as_a_table(instance, learning_resources):
    import json

    import polars as pl

    from xray_core.research.store import LakeTable

    market = learning_resources["market"]
    prices = [1.0, 2.0, 3.0]
    bars = pl.DataFrame({"timestamp": [0, 3_600_000, 7_200_000], "open": prices, "high": prices,
                         "low": prices,
                         "close": prices, "volume": [1.0, 1.0, 1.0]})
    bars = bars.with_columns(pl.col("timestamp").cast(pl.Datetime("ms")).dt.replace_time_zone("UTC"))
    for symbol in ("BTC/USDT", "ETH/USDT"):
        market.lake.candles().upsert(market.series_key(symbol), bars)
    market.write(LakeTable.FILTERED_SYMBOLS, pl.DataFrame({"symbol": ["BTC/USDT", "ETH/USDT", "SOL/USDT"],
                                                            "kept": [True, True, False]}))
    market.write(LakeTable.SYMBOL_PARAMS, pl.DataFrame({
        "symbol": ["BTC/USDT", "ETH/USDT", "SOL/USDT"],
        "strategy": ["sma_cross", "rsi_reversion", "sma_cross"],
        "params": [json.dumps({"fast": 5, "slow": 20}), json.dumps({"period": 14}), "{}"],
        "group": [0, 1, 0],
    }))
    result = _materialize(instance, learning_resources, "promoted_bundle")
    metadata = result.asset_materializations_for_node("promoted_bundle")[0].metadata
    table = metadata["symbols_table"].value
    assert [c.name for c in table.schema.columns] == ["symbol", "strategy", "params", "group", "data_version"]
    rows = {r.data["symbol"]: r.data for r in table.records}
    assert set(rows) == {"BTC/USDT", "ETH/USDT"}  # SOL was dropped by the filter: not in the bundle
    assert rows["BTC/USDT"]["strategy"] == "sma_cross" and json.loads(rows["BTC/USDT"]["params"]) == {
        "fast": 5, "slow": 20}
    assert rows["ETH/USDT"]["strategy"] == "rsi_reversion" and rows["ETH/USDT"]["group"] == "1"
    assert metadata["symbols"].value == 2
    assert all(r["data_version"].startswith("3-") for r in rows.values())  # 3 bars behind each
