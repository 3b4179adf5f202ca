"""A symbol the bundle plans on `model` trades the champion it was chosen with, and each order's
lineage names that model's version (`xray_core.research.selection` picks it per symbol)."""

import numpy as np
import polars as pl
import pytest

from xray_core.bundle import Bundle, parse, publish
from xray_core.candles.bars import Bars
from xray_core.errors import DataError
from xray_runtime.artefacts import ArtefactWatcher
from xray_runtime.market import SymbolBars
from xray_runtime.signals import compute_signals

HOUR = 3_600_000
MODELS = {
    "gbm": {"name": "xray-gbm", "uri": "models:/xray-gbm@champion", "version": 2},
    "rl": {"name": "xray-rl", "uri": "models:/xray-rl@champion", "version": 7},
}


class Bullish:
    """A champion that always says up (the runtime's side of the model strategy, without MLflow)."""

    feature_names: list[str] = []  # noqa: RUF012

    def __init__(self, uri: str) -> None:
        self.uri = uri

    def predict_proba(self, frame: pl.DataFrame) -> np.ndarray:
        return np.full(frame.height, 0.9)


def _bundle(entries, models=MODELS):
    symbols = [e["symbol"] for e in entries]
    return Bundle(exchange="mexc", timeframe="1h", symbols=entries, risk_profiles={}, models=models,
                  feature_version="f", code_version="c", data_versions={s: f"d-{s}" for s in symbols},
                  selection={e["symbol"]: {"chosen": e["strategy"], "reason": "test"} for e in entries})


def _bars(seed: int, n: int = 400) -> Bars:
    closes = 100 * np.exp(np.cumsum(np.random.default_rng(seed).normal(0, 0.01, n)))
    stamps = np.arange(n, dtype=np.int64) * HOUR
    return Bars(stamps, closes, closes * 1.01, closes * 0.99, closes, np.ones(n))


def test_each_model_symbol_trades_its_champion_with_the_version_in_the_lineage(tmp_path):
    bundle = _bundle([
        {"symbol": "ETH/USDT", "strategy": "model", "params": {}, "group": 0, "model": "rl"},
        {"symbol": "SOL/USDT", "strategy": "model", "params": {}, "group": 0},  # older bundle: no kind
        {"symbol": "BTC/USDT", "strategy": "sma_cross", "params": {}, "group": 1},
    ])
    publish(bundle, tmp_path)
    watcher = ArtefactWatcher(tmp_path, model_kind="gbm", loader=Bullish)
    assert watcher.poll(), watcher.refused
    promoted = watcher.current
    assert {k: p.uri for k, p in promoted.predictors.items()} == {
        "rl": "models:/xray-rl@champion", "gbm": "models:/xray-gbm@champion"}
    data = {s: SymbolBars(s, _bars(k), True) for k, s in enumerate(("BTC/USDT", "ETH/USDT", "SOL/USDT"))}
    signals, skipped = compute_signals(promoted, data, "gbm")
    assert not skipped
    lineage = {s: (sig.lineage.strategy, sig.lineage.model_version) for s, sig in signals.items()}
    assert lineage == {"ETH/USDT": ("model", "xray-rl/7"), "SOL/USDT": ("model", "xray-gbm/2"),
                       "BTC/USDT": ("sma_cross", None)}
    assert signals["ETH/USDT"].target == 1  # the champion said up
    assert parse(bundle_json(tmp_path)).selection["ETH/USDT"].reason == "test"


def bundle_json(directory):
    import json

    return json.loads((directory / "current.json").read_text())


def test_a_symbol_on_a_model_the_bundle_does_not_list_is_refused():
    bundle = _bundle([{"symbol": "ETH/USDT", "strategy": "model", "params": {}, "group": 0, "model": "lstm"}])
    data = {"version": bundle.version, **bundle.__dict__}
    with pytest.raises(DataError, match=r"models the bundle does not list: ETH/USDT \(lstm\)"):
        parse(data)
    rule = _bundle([{"symbol": "ETH/USDT", "strategy": "sma_cross", "params": {}, "group": 0,
                     "model": "gbm"}])
    with pytest.raises(DataError, match="names model 'gbm' but trades sma_cross"):
        parse({"version": rule.version, **rule.__dict__})


class NewsReader:
    """A champion that learnt from news: up exactly when its symbol's decayed sentiment is positive."""

    feature_names = ["sent_decayed"]  # noqa: RUF012

    def __init__(self, uri: str) -> None:
        self.uri = uri

    def predict_proba(self, frame: pl.DataFrame) -> np.ndarray:
        return np.where(frame["sent_decayed"].to_numpy() > 0.1, 0.9, 0.1)


def _sentiment(symbol: str, hours: int) -> pl.DataFrame:
    from xray_core.analysis.news import NEWS_SCHEMA

    return pl.DataFrame({
        "symbol": [symbol] * hours, "hour": [h * HOUR for h in range(hours)], "n_headlines": [2] * hours,
        "sentiment_mean": [0.6] * hours, "sentiment_decayed": [0.5] * hours, "positive": [2] * hours,
        "negative": [0] * hours,
    }).with_columns(pl.col("hour").cast(pl.Datetime("ms", "UTC"))).select(list(NEWS_SCHEMA))


@pytest.mark.parametrize("trained_with_news", [True, False])
def test_sentiment_reaches_the_models_trained_with_it_and_no_other(tmp_path, trained_with_news):
    models = {"gbm": MODELS["gbm"] | {"sentiment": trained_with_news}}
    publish(_bundle([{"symbol": "ETH/USDT", "strategy": "model", "params": {}, "group": 0, "model": "gbm"}],
                    models), tmp_path)
    watcher = ArtefactWatcher(tmp_path, loader=NewsReader)
    assert watcher.poll(), watcher.refused
    data = {s: SymbolBars(s, _bars(k), True) for k, s in enumerate(("BTC/USDT", "ETH/USDT"))}
    signals, skipped = compute_signals(watcher.current, data, "gbm", sentiment=_sentiment("ETH/USDT", 400))
    assert not skipped
    # Bullish news: the model that read it goes long; one trained without news never sees it.
    assert signals["ETH/USDT"].target == int(trained_with_news)


async def test_the_runtime_reads_the_pipelines_sentiment_from_the_lake(tmp_path):
    from xray_core.research.store import LakeTable, ResearchStore
    from xray_runtime.sentiment import SentimentFeed, wants_sentiment

    duckdb_file = tmp_path / "xray.duckdb"
    feed = SentimentFeed(duckdb_file, "mexc", refresh_s=3600)
    assert await feed.current() is None  # the pipelines have not written any yet
    rows = _sentiment("ETH/USDT", 5)
    ResearchStore(duckdb_file, tmp_path / "lake").write(LakeTable.NEWS_SENTIMENT, rows, {"exchange": "mexc"})
    assert (await feed.current()) is None  # read at most once per refresh_s
    fresh = SentimentFeed(duckdb_file, "mexc", refresh_s=0)
    read = await fresh.current()  # as the pipelines' training read it (DuckDB's own datetime type)
    assert read.columns == rows.columns and read["sentiment_decayed"].to_list() == [0.5] * 5
    assert wants_sentiment({"gbm": {"sentiment": True}, "rl": {}}, {"gbm"})
    assert not wants_sentiment({"gbm": {"sentiment": True}, "rl": {}}, {"rl"})


async def test_the_lake_is_read_only_for_a_bundle_trading_a_model_trained_with_news(tmp_path):
    from xray_runtime.sentiment import SentimentFeed, news_for

    class Counting(SentimentFeed):
        reads = 0

        async def current(self):
            Counting.reads += 1
            return _sentiment("ETH/USDT", 3)

    feed = Counting(tmp_path / "none.duckdb", "mexc")
    entries = [{"symbol": "ETH/USDT", "strategy": "model", "params": {}, "group": 0, "model": "gbm"}]
    for with_news, expected in ((False, None), (True, 3)):
        directory = tmp_path / str(with_news)
        publish(_bundle(entries, {"gbm": MODELS["gbm"] | {"sentiment": with_news}}), directory)
        watcher = ArtefactWatcher(directory, loader=Bullish)
        assert watcher.poll(), watcher.refused
        got = await news_for(feed, watcher.current, "gbm")
        assert (got.height if got is not None else None) == expected
    assert Counting.reads == 1
