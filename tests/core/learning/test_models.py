"""Signal models (xray_core.learning.models): learning, the shared interface, files, determinism, the
trading environment against the backtest engine, and the errors.

The frame is `build_training_frame` on four synthetic symbols (real features, real shape). Its market
labels are close to unpredictable by design, so to check that each model *learns*, the target is
replaced by a learnable one: label = sign(a standardised feature + noise), and for the agent, prices
whose next bar drifts with the sign of that feature. Models train on the earlier 70% of the timestamps
and are scored on the rest. Settings are the models' tiny defaults (seconds each).
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from sklearn.metrics import roc_auc_score

from xray_core.backtest import BacktestConfig, run_backtest
from xray_core.errors import ConfigError, DataError
from xray_core.learning.dataset import FEATURES, FeatureConfig, build_training_frame
from xray_core.learning.models.base import torch_threads
from xray_core.learning.models.env import Segment, TradingEnv
from xray_core.learning.models.lstm import build_windows
from xray_core.learning.models.registry import DEMO_PARAMS, MODEL_KINDS, build_model, load_model
from xray_core.learning.models.rl import with_prices
from xray_sim.exchange.market import SyntheticMarket

HOUR_MS = 3_600_000
SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT")
SIGNAL = "close_sma"  # persistent and centred near 0: a clean driver for the learnable target
KINDS = sorted(MODEL_KINDS)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Single-threaded torch: reproducible and polite on a shared two-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def candles() -> dict[str, pl.DataFrame]:
    market = SyntheticMarket(seed=7)
    start = market.listed_from_ms
    end = start + 480 * HOUR_MS
    out = {}
    for symbol in SYMBOLS:
        bars = market.bars(symbol, "1h", start, end, end)
        out[symbol] = pl.DataFrame(
            {
                "timestamp": pl.Series(bars.timestamp).cast(pl.Datetime("ms")).dt.replace_time_zone("UTC"),
                "open": bars.open,
                "high": bars.high,
                "low": bars.low,
                "close": bars.close,
                "volume": bars.volume,
            }
        )
    return out


def learnable(frame: pl.DataFrame, seed: int = 0) -> pl.DataFrame:
    """`frame` with label = 1 when z + noise > 0 (z: the standardised SIGNAL feature) and open/close
    prices in which bar t+1 moves by 1% in the direction of sign(z_t), plus 0.5% noise."""
    rng = np.random.default_rng(seed)
    x = frame[SIGNAL].to_numpy()
    z = (x - x.mean()) / x.std()
    label = (z + 0.5 * rng.standard_normal(len(z)) > 0).astype(np.int64)
    noise = 0.005 * rng.standard_normal(len(z))
    opens, closes = np.empty(len(z)), np.empty(len(z))
    for symbol in frame["symbol"].unique():
        rows = np.flatnonzero(frame["symbol"].to_numpy() == symbol)  # time order: the frame is sorted
        step = np.concatenate([[0.0], 0.01 * np.sign(z[rows][:-1]) + noise[rows][1:]])
        closes[rows] = 100.0 * np.exp(np.cumsum(step))
        opens[rows] = np.concatenate([[100.0], closes[rows][:-1]])
    return frame.with_columns(pl.Series("label", label), pl.Series("open", opens), pl.Series("close", closes))


@pytest.fixture(scope="module")
def frame(candles) -> pl.DataFrame:
    real = build_training_frame(candles, features=FeatureConfig(cross_window=48, volume_window=48))
    assert real.columns[:2] == ["timestamp", "symbol"] and set(FEATURES) <= set(real.columns)
    return learnable(real)


@pytest.fixture(scope="module")
def split(frame) -> tuple[pl.DataFrame, pl.DataFrame]:
    stamps = frame["timestamp"].unique().sort()
    cut = stamps[int(0.7 * len(stamps))]
    return frame.filter(pl.col("timestamp") < cut), frame.filter(pl.col("timestamp") >= cut)


@pytest.fixture(scope="module")
def fitted(split) -> dict:
    return {kind: build_model(kind).fit(split[0]) for kind in KINDS}


# ---- learning -------------------------------------------------------------------------------------


def beats_a_coin_flip(model, test: pl.DataFrame) -> bool:
    """Out of sample, a clearly better ranking (AUC) and hit rate than a coin flip. The bars are
    autocorrelated, so a few hundred test rows are far fewer independent draws: the bar is high."""
    p = model.predict_proba(test)
    y = test["label"].to_numpy()
    return roc_auc_score(y, p) > 0.75 and ((p > 0.5) == y).mean() > 0.65


@pytest.mark.parametrize("kind", KINDS)
def test_beats_a_coin_flip_out_of_sample(kind, fitted, split):
    assert beats_a_coin_flip(fitted[kind], split[1])


def test_the_coin_flip_test_can_fail(split):
    """Shuffled labels carry no signal: the same check must then fail."""
    train, test = split
    rng = np.random.default_rng(1)
    noise = train.with_columns(pl.Series("label", rng.permutation(train["label"].to_numpy())))
    assert not beats_a_coin_flip(build_model("gbm").fit(noise), test)


def test_gbm_stops_early_on_the_latest_timestamps(fitted):
    info = fitted["gbm"].fit_info
    assert 1 <= info["n_trees"] <= fitted["gbm"].config.max_iter
    assert info["valid_rows"] + info["train_rows"] > 0 and 0.3 < info["up_share"] < 0.7


# ---- the interface ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_predict_proba_shape_range_and_row_order(kind, fitted, split):
    model, test = fitted[kind], split[1]
    p = model.predict_proba(test)
    assert p.shape == (test.height,) and p.dtype == np.float64
    assert np.isfinite(p).all() and (p >= 0).all() and (p <= 1).all()
    # Row order is the caller's: a shuffled frame gets the same numbers, shuffled.
    perm = np.random.default_rng(0).permutation(test.height)
    # (float32 networks batch by frame size: equal to a few ulps, not bit for bit)
    np.testing.assert_allclose(model.predict_proba(test[perm]), p[perm], rtol=1e-6, atol=1e-7)
    # A symbol's numbers do not depend on the other symbols in the frame.
    eth = (test["symbol"] == "ETH/USDT").to_numpy()
    np.testing.assert_allclose(model.predict_proba(test.filter(eth)), p[eth], rtol=1e-6, atol=1e-7)
    # A row whose features are undefined (warm-up) gets 0.5.
    hole = pl.when(pl.int_range(pl.len()) == 100).then(None).otherwise(pl.col(SIGNAL))
    blank = test.with_columns(hole.alias(SIGNAL))
    assert model.predict_proba(blank)[100] == 0.5


def test_lstm_gives_rows_without_a_full_window_one_half(fitted, split):
    test = split[1]
    p = fitted["lstm"].predict_proba(test)
    seq_len = fitted["lstm"].history_bars
    assert seq_len == fitted["lstm"].config.seq_len and fitted["gbm"].history_bars == 1
    for symbol in SYMBOLS:
        rows = np.flatnonzero((test["symbol"] == symbol).to_numpy())
        assert (p[rows[: seq_len - 1]] == 0.5).all()
        assert (p[rows[seq_len - 1 :]] != 0.5).all()


def test_agent_probability_follows_its_own_positions(fitted, split):
    """P(up) of the agent = P(long | features, the position its previous choice left it in)."""
    agent, test = fitted["rl"], split[1]
    p = agent.predict_proba(test)
    sol = test.filter(pl.col("symbol") == "SOL/USDT")
    x = agent.standardiser.transform(sol.select(agent.feature_names).to_numpy())
    held, expected = 0.0, []
    for row in x:
        prob = float(agent.long_probability(np.append(row, held)[None, :])[0])
        expected.append(prob)
        held = float(prob > 0.55)  # long as the model strategy goes long (its long_above), not at 0.5
    np.testing.assert_allclose(p[(test["symbol"] == "SOL/USDT").to_numpy()], expected, rtol=1e-6)


def test_agent_holds_the_position_the_model_strategy_would_hold(fitted, split, monkeypatch):
    """Between P(long) 0.5 and the strategy's 0.55 the strategy stays flat, so the agent's next
    observation must say flat too: the path it is evaluated and traded on, not its argmax's."""
    agent, test = fitted["rl"], split[1]
    assert agent.config.long_above == 0.55 and agent.config.slippage == 0.0005  # the research defaults
    one = test.filter(pl.col("symbol") == "SOL/USDT").head(20)
    # 0.52 when flat, 0.9 when long: an argmax-at-0.5 path would go long and read 0.9 from row 2 on.
    monkeypatch.setattr(agent, "long_probability", lambda obs: np.where(obs[:, -1] > 0, 0.9, 0.52))
    p = agent.predict_proba(one)
    finite = np.isfinite(agent.standardiser.transform(one.select(agent.feature_names).to_numpy())).all(axis=1)
    assert finite.all() and np.allclose(p, 0.52)


@pytest.mark.parametrize("kind", KINDS)
def test_params_are_loggable(kind, fitted):
    params = fitted[kind].params()
    assert params["kind"] == kind and params["n_features"] == len(FEATURES)
    json.dumps(params)
    assert fitted[kind].flavor in ("sklearn", "lightning", "sb3")


def test_lightning_trains_quietly_and_threads_are_restored(split, caplog):
    """No banner, tip or warning from Lightning during a fit; the caller's torch settings are kept."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        build_model("lstm", max_epochs=1).fit(split[0])
    assert [str(w.message) for w in caught] == []
    assert not torch.are_deterministic_algorithms_enabled()
    assert not [r for r in caplog.records if "lightning" in r.name and r.levelno >= logging.INFO]
    with torch_threads(2):
        assert torch.get_num_threads() == 2
    assert torch.get_num_threads() == 1


# ---- files ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_save_load_gives_identical_predictions(kind, fitted, split, tmp_path):
    model = fitted[kind]
    model.save(tmp_path / kind)
    document = json.loads((tmp_path / kind / "model.json").read_text())
    assert document["kind"] == kind and document["flavor"] == model.flavor
    assert document["features"] == list(FEATURES)
    restored = load_model(tmp_path / kind)
    assert type(restored) is type(model) and restored is not model
    np.testing.assert_array_equal(restored.predict_proba(split[1]), model.predict_proba(split[1]))
    assert not list((tmp_path / kind).glob("*.pkl"))


def test_saved_models_load_in_a_fresh_process(fitted, split, tmp_path):
    """Nothing from the training process is needed to restore a model: a new interpreter loads all
    three from their directories and predicts the same numbers."""
    split[1].write_parquet(tmp_path / "test.parquet")
    for kind, model in fitted.items():
        model.save(tmp_path / kind)
    script = (
        "import sys, numpy as np, polars as pl\n"
        "from xray_core.learning.models.registry import load_model\n"
        "root = sys.argv[1]; frame = pl.read_parquet(f'{root}/test.parquet')\n"
        "for kind in sys.argv[2:]:\n"
        "    np.save(f'{root}/{kind}.npy', load_model(f'{root}/{kind}').predict_proba(frame))\n"
    )
    subprocess.run([sys.executable, "-c", script, str(tmp_path), *KINDS], check=True, timeout=120)
    for kind, model in fitted.items():
        np.testing.assert_array_equal(np.load(tmp_path / f"{kind}.npy"), model.predict_proba(split[1]))


# ---- determinism ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_one_seed_one_model(kind, fitted, split):
    train, test = split
    again = build_model(kind).fit(train)
    np.testing.assert_array_equal(again.predict_proba(test), fitted[kind].predict_proba(test))
    if kind != "gbm":  # the boosted trees draw nothing at random at this size
        other = build_model(kind, seed=1).fit(train)
        assert not np.array_equal(other.predict_proba(test), fitted[kind].predict_proba(test))


# ---- the environment ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "config",
    [BacktestConfig(fee=0.001, slippage=0.0005), BacktestConfig(fee=0.002, size_fraction=0.5, cash=1234.5)],
)
def test_env_equity_equals_the_backtest_engine(candles, config):
    """A fixed action sequence through the env ends with run_backtest's equity, bar for bar."""
    c = candles["ETH/USDT"]
    n = c.height
    positions = (np.random.default_rng(3).random(n) < 0.5).astype(np.int8)
    positions[5:40] = 1  # a long stretch as well as frequent flips
    o, h, low, cl = (c[name].to_numpy() for name in ("open", "high", "low", "close"))
    stamps = c["timestamp"].dt.epoch("ms").to_numpy()
    expected = run_backtest(o, h, low, cl, stamps, positions, config).equity
    env = TradingEnv([Segment(np.zeros((n, 2), np.float32), o, cl, "ETH/USDT")], n - 1, config)
    obs, _ = env.reset(options={"segment": 0, "start": 0})
    equity = [env.equity]
    for t in range(n - 1):
        assert obs[-1] == env.side
        obs, reward, terminated, truncated, info = env.step(int(positions[t]))
        assert np.isclose(reward, np.log(info["equity"] / equity[-1]), rtol=0, atol=1e-12)
        equity.append(env.equity)
        assert not terminated and truncated == (t == n - 2)
    np.testing.assert_allclose(equity, expected, rtol=1e-9, atol=0)
    assert expected[-1] != config.cash  # it traded


def test_env_episodes_are_seeded_and_fixed_length():
    rng = np.random.default_rng(0)
    segments = [
        Segment(rng.standard_normal((n, 3)).astype(np.float32), np.full(n, 10.0), np.full(n, 10.0), s)
        for n, s in ((50, "A"), (80, "B"), (5, "C"))  # C is too short for an episode and is left out
    ]
    env = TradingEnv(segments, episode_len=20)
    assert [s.symbol for s in env.segments] == ["A", "B"]
    assert env.observation_space.shape == (4,)
    starts = [env.reset(seed=11)[1]["start"] for _ in range(2)]
    assert starts[0] == starts[1]
    obs, info = env.reset(seed=11)
    segment = env.segments[info["segment"]]
    np.testing.assert_array_equal(obs[:3], segment.features[info["start"]])
    assert obs[3] == 0
    for step in range(20):
        obs, _, _, truncated, _ = env.step(1)
        assert obs[3] == 1 and truncated == (step == 19)
    with pytest.raises(RuntimeError):
        env.step(0)
    with pytest.raises(ConfigError):
        env.reset(options={"segment": 0, "start": 40})
    with pytest.raises(ConfigError):
        TradingEnv(segments, 20, BacktestConfig(leverage=2.0))
    with pytest.raises(DataError):
        TradingEnv(segments, 100)


# ---- windows --------------------------------------------------------------------------------------


def test_lstm_windows_never_cross_symbols_or_gaps():
    """Three interleaved symbols, one with a missing bar: every window is one symbol's consecutive
    bars, and the bars right after the gap have no window."""
    rows = []
    for k, symbol in enumerate(("A", "B", "C")):
        for i in range(30):
            if symbol == "B" and i == 12:
                continue  # the gap
            rows.append({"timestamp": i * HOUR_MS, "symbol": symbol, "code": float(k), "bar": float(i)})
    frame = pl.DataFrame(rows).sort("timestamp", "symbol")
    values = frame.select("code", "bar").to_numpy()
    windows = build_windows(frame, values, seq_len=5, what="test")
    batch = windows.gather()
    assert batch.shape == (len(windows.rows), 5, 2)
    assert (batch[:, :, 0] == batch[:, :1, 0]).all()  # one symbol per window
    assert (np.diff(batch[:, :, 1], axis=1) == 1).all()  # consecutive bars, so no gap inside
    np.testing.assert_array_equal(batch[:, -1, :], values[windows.rows])  # ends at the predicted row
    # A and C: 30 - 4 windows; B: 12 bars before the gap (8 windows), 17 after (13 windows).
    assert len(windows.rows) == 26 + 26 + 8 + 13


# ---- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_missing_feature_columns_are_named(kind, split, fitted):
    train, test = split
    with pytest.raises(DataError, match="rsi"):
        build_model(kind).fit(train.drop("rsi"))
    with pytest.raises(DataError, match="rsi"):
        fitted[kind].predict_proba(test.drop("rsi"))


@pytest.mark.parametrize("kind", ["gbm", "lstm"])
def test_constant_labels_are_refused(kind, split):
    with pytest.raises(DataError, match="nothing to learn"):
        build_model(kind).fit(split[0].with_columns(pl.lit(1).alias("label")))


def test_a_class_with_a_handful_of_rows_is_refused(split):
    train = split[0]
    labels = np.zeros(train.height, dtype=np.int64)
    labels[:5] = 1
    with pytest.raises(DataError, match="only 5 of"):
        build_model("gbm").fit(train.with_columns(pl.Series("label", labels)))


@pytest.mark.parametrize("kind", KINDS)
def test_too_few_rows_are_refused(kind, split):
    with pytest.raises(DataError, match=r"too few|needs"):
        build_model(kind).fit(split[0].head(30))


def test_agent_needs_prices_and_gets_them_from_candles(split, candles):
    train = split[0].drop("open", "close")
    with pytest.raises(DataError, match="open, close"):
        build_model("rl").fit(train)
    priced = with_prices(train, candles)
    assert priced.height == train.height and priced["close"].null_count() == 0
    assert priced.select("timestamp", "symbol").equals(train.select("timestamp", "symbol"))


def test_registry_refuses_unknown_kinds_params_and_values(tmp_path):
    with pytest.raises(ConfigError, match="unknown model kind"):
        build_model("xgboost")
    with pytest.raises(ConfigError, match="hiden"):
        build_model("lstm", hiden=8)
    with pytest.raises(ConfigError, match="seq_len"):
        build_model("lstm", seq_len=1)
    with pytest.raises(ConfigError, match="fee"):
        build_model("rl", fee=0.5)
    with pytest.raises(ConfigError, match="not fitted"):
        build_model("gbm").predict_proba(pl.DataFrame())
    with pytest.raises(DataError, match=r"model\.json"):
        load_model(tmp_path)
    for kind, params in DEMO_PARAMS.items():  # the demo settings are valid settings
        assert build_model(kind, **params).params()["kind"] == kind


def test_loading_a_directory_of_another_kind_is_refused(fitted, tmp_path):
    fitted["gbm"].save(tmp_path)
    with pytest.raises(ConfigError, match="gbm"):
        MODEL_KINDS["lstm"].load(tmp_path)
    document = json.loads((tmp_path / "model.json").read_text())
    (tmp_path / "model.json").write_text(json.dumps({**document, "kind": "svm"}))
    with pytest.raises(ConfigError, match="svm"):
        load_model(Path(tmp_path))
