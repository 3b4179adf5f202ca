"""`promoted_bundle` plans a symbol on `model` when the champion earned it there: its walk-forward
record (logged with the version) beats the symbol's rule strategy on the same windows and costs; where
the champion's record is useless, the rule strategy stays. The bundle says why, per symbol."""

import dagster as dg
import numpy as np
import polars as pl
import pytest

from xray_core.bundle import CURRENT, parse, read
from xray_core.candles.store import CandleStore, SeriesKey
from xray_core.learning.dataset import FEATURES
from xray_core.learning.models.registry import build_model
from xray_core.research.store import LakeTable
from xray_pipelines.definitions import defs
from xray_pipelines.mlops.oos import log_oos_predictions, oos_predictions
from xray_pipelines.mlops.registry import CHAMPION, log_model_version
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

SYMBOLS = ("BTC/USDT", "ETH/USDT")
TEST_BLOCKS = [(200, 300), (340, 460)]  # bar indexes of two walk-forward test blocks


@pytest.fixture
def resources(tmp_path):
    return {
        "market": MarketScope(
            exchange=ExchangeResource(exchange_id="mexc", url="http://127.0.0.1:9"),  # never called
            lake=LakeResource(duckdb_path=str(tmp_path / "xray.duckdb"), lake_dir=str(tmp_path / "lake")),
            market_data=MarketDataResource(timeframe="1h", history_days=30, symbols=list(SYMBOLS)),
        ),
        "research": ResearchResource(),
        "models": ModelsResource(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
                                 artifact_root=f"file://{tmp_path / 'art'}", size="test"),
        "journal": RuntimeJournalResource(database_url=f"sqlite:///{tmp_path / 'runtime.db'}"),
    }


def _research_done(market: MarketScope) -> dict[str, pl.DataFrame]:
    """Good candles of both symbols, both kept, each planned on a rule strategy."""
    sim = SyntheticMarket(seed=3, history_days=30)
    store = CandleStore(market.lake.duckdb_path)
    end = sim.listed_from_ms + 20 * DAY_MS
    candles, quality = {}, []
    for symbol in SYMBOLS:
        bars = sim.bars(symbol, "1h", sim.listed_from_ms, end, end)
        frame = pl.DataFrame({
            "timestamp": pl.Series(bars.timestamp).cast(pl.Datetime("ms")).dt.replace_time_zone("UTC"),
            "open": bars.open, "high": bars.high, "low": bars.low, "close": bars.close, "volume": bars.volume,
        })
        store.upsert(SeriesKey("mexc", symbol, "1h"), frame)
        quality.append({"symbol": symbol, "bars": frame.height, "verdict": "good", "reason": "checks passed"})
        candles[symbol] = frame
    store.save_quality("mexc", "1h", pl.DataFrame(quality), 0)
    market.write(LakeTable.FILTERED_SYMBOLS, pl.DataFrame({"symbol": list(SYMBOLS), "kept": [True, True]}))
    market.write(LakeTable.SYMBOL_PARAMS, pl.DataFrame({
        "symbol": list(SYMBOLS), "group": ["solo-BTC", "solo-ETH"], "strategy": ["macd_trend", "sma_cross"],
        "params": ["{}", "{}"],
    }))
    return candles


def _walk_forward_record(candles: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """What the champion's folds predicted: ETH's next held move (a planted signal), noise on BTC."""
    noise = np.random.default_rng(11)
    rows = []
    for symbol, frame in candles.items():
        opens = frame["open"].to_numpy()
        for fold, (lo, hi) in enumerate(TEST_BLOCKS):
            for t in range(lo, hi):
                up = opens[t + 2] > opens[t + 1] * 1.002
                p = (0.9 if up else 0.1) if symbol == "ETH/USDT" else noise.uniform()
                rows.append((frame["timestamp"][t], symbol, fold, float(p)))
    return pl.DataFrame(rows, schema={"timestamp": pl.Datetime("ms", "UTC"), "symbol": pl.String,
                                      "fold": pl.Int64, "p_up": pl.Float64}, orient="row")


def _champion(models: ModelsResource, record: pl.DataFrame) -> int:
    rng = np.random.default_rng(5)
    n = 300
    frame = pl.DataFrame({"timestamp": record["timestamp"].head(n), "symbol": ["ETH/USDT"] * n})
    frame = frame.with_columns(pl.Series(name, rng.normal(size=n)) for name in FEATURES)
    label = (frame[FEATURES[0]] > 0).cast(pl.Int64)
    frame = frame.with_columns(label.alias("label"), (label * 0.01).alias("forward_return"),
                               pl.lit(1.0).alias("weight"))
    models.tracking().activate()
    model = build_model("gbm").fit(frame)
    version = log_model_version("gbm", model, params=model.params(), metrics={"oos_sharpe": 1.0},
                                tags={"xray.sentiment": "true"},
                                example=frame.select("timestamp", "symbol", *FEATURES).head(8))
    client = models.tracking().client()
    log_oos_predictions(client, version, record)
    client.set_registered_model_alias("xray-gbm", CHAMPION, version.version)
    assert oos_predictions(client, version).equals(record.select("timestamp", "symbol", "fold", "p_up"))
    return int(version.version)


@pytest.mark.slow
def test_the_champion_trades_the_symbol_it_won_and_the_rule_keeps_the_other(resources):
    candles = _research_done(resources["market"])
    version = _champion(resources["models"], _walk_forward_record(candles))
    with dg.instance_for_test() as instance:
        result = dg.materialize(list(defs.assets), instance=instance, resources=resources,
                                selection=["promoted_bundle"],
                                run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}})
    assert result.success
    directory = resources["market"].lake.research().lake_dir.parent / "bundles"
    bundle = parse(read(directory / CURRENT))
    plans = {e.symbol: (e.strategy, e.model) for e in bundle.symbols}
    assert plans == {"ETH/USDT": ("model", "gbm"), "BTC/USDT": ("macd_trend", None)}
    assert bundle.models["gbm"].version == version
    assert bundle.models["gbm"].sentiment  # it learnt from news: the runtime feeds it the lake's
    eth, btc = bundle.selection["ETH/USDT"], bundle.selection["BTC/USDT"]
    assert eth.reason.startswith(f"model wins: model gbm v{version}") and "vs sma_cross" in eth.reason
    assert btc.reason.startswith(f"macd_trend kept: model gbm v{version}")
    assert eth.model_sharpe > max(eth.rule_sharpe or 0.0, 0.0) + 1.0
    assert btc.model_sharpe is None or btc.model_sharpe <= max(btc.rule_sharpe or 0.0, 0.0)
    metadata = result.asset_materializations_for_node("promoted_bundle")[0].metadata
    assert (metadata["on_model"].value, metadata["on_rules"].value) == (1, 1)
