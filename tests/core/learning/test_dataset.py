"""The training frame: point-in-time features (the lookahead test), market labels, weights, errors."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from xray_core.candles.schema import read_parquet
from xray_core.errors import ConfigError, DataError
from xray_core.indicators import add_indicators
from xray_core.learning import (
    FEATURES,
    LABEL_COLUMNS,
    FeatureConfig,
    LabelConfig,
    _kernels,
    build_training_frame,
    check_trainable,
    live_features,
)
from xray_core.learning.dataset import feature_frames

DATA = Path(__file__).resolve().parents[2] / "data" / "candles"
HOUR_MS = 3_600_000
BAR_MS = 300_000
CFG = FeatureConfig(benchmark="ETH/BTC")
SMALL = FeatureConfig(benchmark="X/USDT", cross_window=10, volume_window=10, momentum_bars=3)


@pytest.fixture(scope="module")
def candles() -> dict[str, pl.DataFrame]:
    """ADA/BTC (with gaps), ETH/BTC (the benchmark) and LTC/BTC over the same three weeks of 5m bars."""
    return {name.replace("_", "/"): read_parquet(DATA / f"{name}-5m.parquet")
            for name in ("ADA_BTC", "ETH_BTC", "LTC_BTC")}


def sentiment_for(candles: dict[str, pl.DataFrame], seed: int = 3) -> pl.DataFrame:
    """A dense hourly sentiment frame over the candles' span for every symbol and "*"."""
    first = min(int(f["timestamp"].dt.epoch("ms")[0]) for f in candles.values()) // HOUR_MS * HOUR_MS
    last = max(int(f["timestamp"].dt.epoch("ms")[-1]) for f in candles.values())
    hours = np.arange(first - HOUR_MS, last + 2 * HOUR_MS, HOUR_MS)
    rng = np.random.default_rng(seed)
    parts = [pl.DataFrame({"symbol": symbol, "hour": hours, "n_headlines": rng.integers(0, 5, hours.size),
                           "sentiment_decayed": rng.uniform(-1, 1, hours.size)})
             for symbol in ("*", *candles)]
    return pl.concat(parts).with_columns(pl.col("hour").cast(pl.Datetime("ms")).dt.replace_time_zone("UTC"))


def rewrite_after(frame: pl.DataFrame, cut_ms: int, seed: int) -> pl.DataFrame:
    """New prices and volumes for every bar opening after `cut_ms` (still valid candles)."""
    rng = np.random.default_rng(seed)
    later = (frame["timestamp"].dt.epoch("ms") > cut_ms).to_numpy()
    factor = np.where(later, rng.uniform(0.9, 1.1, frame.height), 1.0)
    return frame.with_columns(*(pl.col(c) * factor for c in ("open", "high", "low", "close")),
                              pl.col("volume") * np.where(later, rng.uniform(0.2, 5.0, frame.height), 1.0))


def toy_candles(opens: np.ndarray, symbol: str = "X/USDT") -> dict[str, pl.DataFrame]:
    """Gap-free 1h candles whose open is `opens[t]` and close the next open."""
    closes = np.append(opens[1:], opens[-1])
    stamps = 1_700_000_000_000 // HOUR_MS * HOUR_MS + np.arange(opens.size) * HOUR_MS
    frame = pl.DataFrame({
        "timestamp": stamps, "open": opens, "high": np.maximum(opens, closes) * 1.001,
        "low": np.minimum(opens, closes) * 0.999, "close": closes, "volume": np.linspace(10, 20, opens.size),
    }).with_columns(pl.col("timestamp").cast(pl.Datetime("ms")).dt.replace_time_zone("UTC"))
    return {symbol: frame}


def test_features_list_is_scale_free_and_excludes_labels():
    assert len(FEATURES) == len(set(FEATURES)) and 15 <= len(FEATURES) <= 26
    assert not set(FEATURES) & {*LABEL_COLUMNS, "weight", "timestamp", "symbol"}
    raw = {"open", "high", "low", "close", "volume", "sma_20", "ema_20", "obv", "vwap", "atr_14", "macd"}
    assert not set(FEATURES) & raw


def test_frame_shape_sorting_and_no_missing_values(candles):
    frame = build_training_frame(candles, features=CFG)
    assert frame.columns == ["timestamp", "symbol", *FEATURES, "forward_return", "label", "weight"]
    assert frame["label"].dtype == pl.Int64 and set(frame["label"].unique()) == {0, 1}
    assert frame.equals(frame.sort("timestamp", "symbol"))
    values = frame.select(*FEATURES, "forward_return").to_numpy()
    assert np.isfinite(values).all()
    eth = frame.filter(pl.col("symbol") == "ETH/BTC")
    # warm-up: the first correlation window (168 bars, >= 90% of them with a return) ends at bar 167;
    # tail: the last horizon + 1 = 13 bars have no label yet
    assert eth.height == candles["ETH/BTC"].height - 167 - 13
    assert eth["timestamp"][0] == candles["ETH/BTC"]["timestamp"][167]
    np.testing.assert_allclose(eth["bench_corr"].to_numpy(), 1.0, atol=1e-12)
    np.testing.assert_allclose(eth["bench_beta"].to_numpy(), 1.0, atol=1e-12)
    assert (frame["weight"] == 1.0).all()


@pytest.mark.parametrize("cut", [400, 3_000, 5_600])
def test_no_feature_looks_ahead(candles, cut):
    """Rewrite every bar and every sentiment hour after bar `cut`: every feature at or before `cut` stays
    bit-identical, while later features and the labels near `cut` do change."""
    cut_ms = int(candles["ETH/BTC"]["timestamp"].dt.epoch("ms")[cut])
    sentiment = sentiment_for(candles)
    changed = {s: rewrite_after(f, cut_ms, seed=i) for i, (s, f) in enumerate(candles.items())}
    rng = np.random.default_rng(11)
    unknown = pl.col("hour").dt.epoch("ms") + HOUR_MS > cut_ms + BAR_MS  # ends after the decision time
    sentiment_changed = sentiment.with_columns(
        pl.when(unknown).then(pl.lit(rng.uniform(-1, 1, sentiment.height))).otherwise("sentiment_decayed")
        .alias("sentiment_decayed"),
        pl.when(unknown).then(pl.col("n_headlines") + 7).otherwise("n_headlines").alias("n_headlines"),
    )
    before = pl.concat(feature_frames(candles, sentiment, CFG, 0))
    after = pl.concat(feature_frames(changed, sentiment_changed, CFG, 0))
    early = (pl.col("timestamp").dt.epoch("ms") <= cut_ms)
    for name in FEATURES:
        a = before.filter(early)[name].to_numpy()
        b = after.filter(early)[name].to_numpy()
        np.testing.assert_array_equal(a, b, err_msg=f"{name} looks ahead")
        late_a, late_b = before.filter(~early)[name].to_numpy(), after.filter(~early)[name].to_numpy()
        assert not np.array_equal(late_a, late_b, equal_nan=True), f"{name} was not perturbed"
    # the labels of the bars just before the cut read the rewritten future: they are outputs, not inputs
    labels_a = build_training_frame(candles, sentiment, features=CFG).filter(early)
    labels_b = build_training_frame(changed, sentiment_changed, features=CFG).filter(early)
    keys = ["timestamp", "symbol", *FEATURES]
    assert labels_a.select(keys).equals(labels_b.select(keys))
    assert not labels_a["forward_return"].equals(labels_b["forward_return"])


def test_sentiment_is_the_last_hour_ended_by_the_decision_time(candles):
    sentiment = sentiment_for(candles)
    frame = build_training_frame(candles, sentiment, features=CFG)
    stamps = frame["timestamp"].dt.epoch("ms").to_numpy()
    expected_hour = (stamps + BAR_MS) // HOUR_MS * HOUR_MS - HOUR_MS
    table = sentiment.with_columns(pl.col("hour").dt.epoch("ms").alias("h"))
    for column, symbol_of in (("sent_decayed", frame["symbol"].to_list()), ("mkt_sent_decayed", None)):
        keys = pl.DataFrame({"symbol": symbol_of or ["*"] * frame.height, "h": expected_hour})
        want = keys.join(table, on=["symbol", "h"], how="left", maintain_order="left")["sentiment_decayed"]
        np.testing.assert_array_equal(frame[column].to_numpy(), want.to_numpy())
    # e.g. the 10:55 bar is decided at 11:00, when the 10:00-11:00 hour has just ended
    row = frame.filter(pl.col("timestamp").dt.minute() == 55).row(0, named=True)
    assert (int(row["timestamp"].timestamp() * 1000) + BAR_MS) % HOUR_MS == 0
    # missing sentiment reads 0
    no_news = build_training_frame(candles, features=CFG)
    assert (no_news.select(FEATURES[-4:]).to_numpy() == 0).all()


def test_forward_return_labels_on_a_hand_built_series():
    opens = 100.0 * np.exp(np.cumsum(np.tile([0.01, -0.02, 0.015, 0.004, -0.006], 14)))
    h, threshold = 3, 0.002
    frame = build_training_frame(toy_candles(opens), features=SMALL,
                                 labels=LabelConfig(horizon=h, threshold=threshold))
    stamps = frame["timestamp"].dt.epoch("ms").to_numpy()
    index = (stamps - stamps[0]) // HOUR_MS + SMALL.warmup
    assert index[0] == SMALL.warmup == 33 and index[-1] == opens.size - h - 2
    expected = opens[index + 1 + h] / opens[index + 1] - 1.0
    np.testing.assert_array_equal(frame["forward_return"].to_numpy(), expected)
    np.testing.assert_array_equal(frame["label"].to_numpy(), (expected > threshold).astype(np.int64))


def test_triple_barrier_kernel_on_hand_built_bars():
    open_ = np.array([100.0, 100.0, 101.0, 103.5, 100.0, 99.0, 96.0, 100.0])
    high = np.array([100.5, 101.0, 102.0, 104.0, 100.5, 99.5, 97.0, 100.5])
    low = np.array([99.5, 99.5, 100.5, 103.0, 98.5, 98.0, 95.0, 99.5])
    atr = np.full(open_.size, 1.0)
    ret, label = _kernels.triple_barrier(open_, high, low, atr, 3, 2.0, 1.5, 0.0)
    # t=0: entry open[1]=100, up 102, down 98.5; bar 2 reaches 102 -> upper at 102
    assert label[0] == 1 and ret[0] == pytest.approx(0.02)
    # t=1: entry 101, up 103, down 99.5; bar 3 opens at 103.5 above the barrier -> exits at that open
    assert label[1] == 1 and ret[1] == pytest.approx(103.5 / 101 - 1)
    # t=2: entry 103.5, down 102; bar 4 opens at 100 below it -> lower, at the gap open
    assert label[2] == 0 and ret[2] == pytest.approx(100 / 103.5 - 1)
    # t=3: entry 100, up 102, down 98.5; bar 4 opens at 100 and its low touches 98.5 -> lower, at 98.5
    assert label[3] == 0 and ret[3] == pytest.approx(-0.015)
    # a bar whose range spans both barriers counts as the lower one (the backtest's pessimistic order)
    wide_high, wide_low = high.copy(), low.copy()
    wide_high[2], wide_low[2] = 103.0, 98.0
    assert _kernels.triple_barrier(open_, wide_high, wide_low, atr, 3, 2.0, 1.5, 0.0)[1][0] == 0
    # the last horizon + 1 bars have no exit yet
    assert (label[-4:] == -1).all() and np.isnan(ret[-4:]).all()
    # vertical barrier: a quiet path exits at open[t+1+h] and compares with the threshold
    flat = np.array([100.0, 100.0, 100.2, 100.1, 100.3, 100.3])
    ret, label = _kernels.triple_barrier(flat, flat + 0.1, flat - 0.1, np.ones(6), 3, 2.0, 2.0, 0.0)
    assert ret[0] == pytest.approx(100.3 / 100 - 1) and label[0] == 1
    ret, label = _kernels.triple_barrier(flat, flat + 0.1, flat - 0.1, np.ones(6), 3, 2.0, 2.0, 0.01)
    assert label[0] == 0


def test_triple_barrier_frame_uses_the_atr_of_the_decision_bar(candles):
    labels = LabelConfig(kind="triple_barrier", horizon=12, up_atr=1.5, down_atr=1.0)
    frame = build_training_frame({"ETH/BTC": candles["ETH/BTC"]}, features=CFG, labels=labels)
    bars = add_indicators(candles["ETH/BTC"])
    ret, label = _kernels.triple_barrier(*(bars[c].to_numpy() for c in ("open", "high", "low", "atr_14")),
                                         12, 1.5, 1.0, 0.0)
    index = bars["timestamp"].search_sorted(frame["timestamp"]).to_numpy()
    np.testing.assert_array_equal(frame["forward_return"].to_numpy(), ret[index])
    np.testing.assert_array_equal(frame["label"].to_numpy(), label[index])


def test_fills_add_weight_to_the_bars_traded(candles):
    eth = candles["ETH/BTC"]
    t = eth["timestamp"]
    fills = pl.DataFrame({  # two fills inside one ETH bar, one LTC fill, one for a symbol not loaded
        "timestamp": [t[1000] + timedelta(minutes=2), t[1000], t[2000], t[3000]],
        "symbol": ["ETH/BTC", "ETH/BTC", "LTC/BTC", "DOGE/BTC"],
        "side": ["buy", "sell", "buy", "buy"], "price": [1.0] * 4, "amount": [1.0] * 4,
    })
    frame = build_training_frame(candles, fills=fills, features=CFG, fill_bonus=2.0)
    heavy = frame.filter(pl.col("weight") != 1.0)
    assert heavy.select("timestamp", "symbol").rows() == [(t[1000], "ETH/BTC"), (t[2000], "LTC/BTC")]
    assert (heavy["weight"] == 3.0).all()
    plain = build_training_frame(candles, features=CFG)
    assert plain.drop("weight").equals(frame.drop("weight"))
    empty = build_training_frame(candles, fills=fills.clear(), features=CFG)
    assert (empty["weight"] == 1.0).all() and (plain["weight"] == 1.0).all()


def test_live_features_are_the_training_features_of_the_latest_bars(candles):
    cut = 4_000
    until = candles["ETH/BTC"]["timestamp"][cut]
    head = {s: f.filter(pl.col("timestamp") <= until) for s, f in candles.items()}
    live = live_features(head, features=CFG, last=2)
    assert live.columns == ["timestamp", "symbol", *FEATURES] and live.height == 6
    assert live["timestamp"].max() == candles["ETH/BTC"]["timestamp"][cut]
    full = build_training_frame(candles, features=CFG)
    matched = live.join(full, on=["timestamp", "symbol"], how="left", maintain_order="left")
    np.testing.assert_array_equal(matched.select(FEATURES).to_numpy(), live.select(FEATURES).to_numpy())


def test_too_little_data_names_the_symbol_and_the_counts(candles):
    short = dict(candles, **{"LTC/BTC": candles["LTC/BTC"].head(150)})
    with pytest.raises(DataError, match=r"LTC/BTC: 150 bars, needs at least 182"):
        build_training_frame(short, features=CFG)
    with pytest.raises(ConfigError, match="benchmark 'BTC/USDT'"):
        build_training_frame(candles)


def test_check_trainable_refuses_a_constant_label(candles):
    frame = build_training_frame({"ETH/BTC": candles["ETH/BTC"]}, features=CFG)
    check_trainable(frame)
    never = build_training_frame({"ETH/BTC": candles["ETH/BTC"]}, features=CFG,
                                 labels=LabelConfig(threshold=10.0))
    with pytest.raises(DataError, match="label is constant"):
        check_trainable(never)
    with pytest.raises(DataError, match="rows"):
        check_trainable(frame.head(1))
    with pytest.raises(DataError, match="lacks"):
        check_trainable(frame.drop("rsi"))


@pytest.mark.parametrize("kwargs", [{"horizon": 0}, {"kind": "sign"}, {"threshold": float("nan")},
                                    {"up_atr": 0.0}, {"down_atr": -1.0}, {"horizon": 2.5}])
def test_label_config_is_validated(kwargs):
    with pytest.raises(ConfigError):
        LabelConfig(**kwargs)


def test_feature_config_is_validated():
    with pytest.raises(ConfigError):
        FeatureConfig(cross_window=1)
    with pytest.raises(ConfigError):
        FeatureConfig(cross_window=20, cross_min_periods=30)
