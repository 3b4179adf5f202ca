"""The research assets end to end on a Dagster instance: emulator → candles → research tables."""

import json

import dagster as dg
import polars as pl
import pytest

from xray_pipelines.definitions import defs
from xray_pipelines.partitions import SYMBOLS
from xray_pipelines.resources import (
    ExchangeResource,
    LakeResource,
    MarketDataResource,
    MarketScope,
    ResearchResource,
)
from xray_sim.news.feed import start_fake_feed

CHOSEN = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "ADA/USDT", "DOGE/USDT", "TGT/USDT", "SRM/USDT"]
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
LEARNING = {"live_fills", "shadow_records", "training_data", "model_gbm", "model_lstm", "model_rl",
            "model_promotion", "risk_profiles", "promoted_bundle"}
# The research assets only: the learning assets need the models resource (tested on their own).
ASSETS = [a for a in defs.assets if not {k.to_user_string() for k in a.keys} & LEARNING]


@pytest.fixture
def feed():
    with start_fake_feed(port=0, seed=3, days=40) as running:
        yield running


@pytest.fixture
def research_resources(emulator, feed, tmp_path):
    return {
        "market": MarketScope(
            exchange=ExchangeResource(exchange_id="mexc", url=emulator.base_url),
            lake=LakeResource(duckdb_path=str(tmp_path / "xray.duckdb"), lake_dir=str(tmp_path / "lake")),
            market_data=MarketDataResource(timeframe="1h", history_days=40, symbols=CHOSEN),
        ),
        "research": ResearchResource(
            optimize_trials=20,
            optimize_folds=2,
            clusters=2,
            min_sharpe=-10.0,
            min_total_return=-1.0,
            max_drawdown=1.0,
            min_trades=1,
            optuna_storage=f"sqlite:///{tmp_path / 'optuna.db'}",
            news_sources=[feed.rss_url, feed.atom_url, feed.status_url(500)],
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


def _metadata(result, asset):
    return result.asset_materializations_for_node(asset)[0].metadata


def test_research_pipeline_end_to_end(instance, research_resources):
    _materialize(instance, research_resources, "markets")
    symbols = instance.get_dynamic_partitions(SYMBOLS)
    for symbol in symbols:
        _materialize(instance, research_resources, "candles", partition_key=symbol)
    _materialize(instance, research_resources, "candle_quality")

    features = {s: _materialize(instance, research_resources, "features", partition_key=s) for s in symbols}
    assert _metadata(features["TGT/USDT"], "features")["skipped"].value is True
    assert _metadata(features["BTC/USDT"], "features")["dagster/row_count"].value == 40 * 24
    lake = research_resources["market"].lake.research()
    btc = lake.read_series("features", "mexc", "1h", "BTC/USDT")
    assert {"rsi_14", "macd", "bb_upper", "atr_14"} <= set(btc.columns)
    assert lake.read_series("features", "mexc", "1h", "TGT/USDT") is None

    first = _materialize(instance, research_resources, "backtests")
    assert _metadata(first, "backtests")["computed"].value == 5 * 4  # 5 good symbols x 4 strategies
    again = _materialize(instance, research_resources, "backtests")
    assert _metadata(again, "backtests")["computed"].value == 0  # nothing changed: all from the cache
    assert _metadata(again, "backtests")["reused_from_cache"].value == 20

    _materialize(instance, research_resources, "filtered_symbols")
    scope = {"exchange": "mexc", "timeframe": "1h"}
    filtered = {r["symbol"]: r for r in lake.read("filtered_symbols", scope).iter_rows(named=True)}
    assert set(CHOSEN) < set(filtered)  # every listed market has a row
    assert filtered["XRP/USDT"]["reason"] == "not in the universe: not in XRAY_INGEST_SYMBOLS"
    assert filtered["TGT/USDT"]["reason"].startswith("data quality:")
    assert filtered["SRM/USDT"]["reason"].startswith("not in the universe:")
    assert filtered["BTC/USDT"]["kept"]

    correlation = _materialize(instance, research_resources, "market_correlation")
    clusters = lake.read("correlation_clusters", scope)
    assert set(clusters["symbol"]) == {"BTC/USDT", "ETH/USDT", "SOL/USDT", "ADA/USDT", "DOGE/USDT"}
    assert clusters["cluster"].n_unique() == 2
    assert _metadata(correlation, "market_correlation")["heatmap"].value.startswith("![correlation heatmap]")

    news = _materialize(instance, research_resources, "news_sentiment")
    assert _metadata(news, "news_sentiment")["sources_failed"].value == 1  # the HTTP 500 one
    sentiment = lake.read("news_sentiment", {"exchange": "mexc"})
    assert sentiment.filter(pl.col("n_headlines") > 0)["symbol"].n_unique() >= 3

    params = _materialize(instance, research_resources, "strategy_params")
    groups = lake.read("strategy_params", scope)
    assert groups.height == 2 and groups["trials"].min() == 20
    per_symbol = lake.read("symbol_params", scope)
    kept = {s for s, r in filtered.items() if r["kept"]}
    assert set(per_symbol["symbol"]) == kept
    for row in per_symbol.iter_rows(named=True):
        assert isinstance(json.loads(row["params"]), dict)
    assert any(key.startswith("pareto_") for key in _metadata(params, "strategy_params"))
