"""Strategies: one interface, lookahead-free, typed parameters with clear errors."""

import numpy as np
import polars as pl
import pytest

from xray_core.candles.bars import Bars
from xray_core.candles.schema import read_parquet
from xray_core.errors import ConfigError
from xray_core.learning.dataset import build_training_frame
from xray_core.learning.models.registry import build_model
from xray_core.strategies import RULE_STRATEGIES, STRATEGIES, MarketContext, Mode, ModelStrategy, get_strategy

PLANTED = "rsi"  # RSI / 100: crosses its midpoint (0.5) often on real bars


def _fitted_model(candles_dir):
    """A real gradient-boosting model trained on the real features of the first half of BTC/USDT's
    bars, with a planted label (up when RSI > 50). A model of the market's own labels is weak, and its
    P(up) falls on either side of a fixed threshold depending on the CPU's floating point; a planted
    rule is learned to near-certainty everywhere, so the strategy's thresholds are crossed on any
    machine while the features (and so any lookahead in them) stay the real ones."""
    frame = read_parquet(candles_dir / "BTC_USDT-5m.parquet")
    training = build_training_frame({"BTC/USDT": frame.head(frame.height // 2)})
    planted = (training[PLANTED] > 0.5).cast(pl.Int64).alias("label")
    return build_model("gbm").fit(training.with_columns(planted))


@pytest.fixture(scope="module")
def bars(candles_dir) -> Bars:
    return Bars.from_frame(read_parquet(candles_dir / "BTC_USDT-5m.parquet"))


@pytest.fixture(scope="module")
def model_strategy(candles_dir) -> ModelStrategy:
    return ModelStrategy().bind(_fitted_model(candles_dir), MarketContext("BTC/USDT"))


def _all_strategies(model_strategy):
    return [STRATEGIES[name] for name in RULE_STRATEGIES] + [model_strategy]


def _perturbed_after(bars: Bars, cut: int, seed: int) -> Bars:
    """Every bar after `cut` moved (prices, ranges, volume); bars up to `cut` untouched."""
    rng = np.random.default_rng(seed)
    factor, wider = np.ones(len(bars)), np.ones(len(bars))
    factor[cut + 1 :] = np.exp(rng.normal(0, 0.05, len(bars) - cut - 1))
    wider[cut + 1 :] = 1.01
    return Bars(
        bars.timestamp,
        bars.open * factor,
        bars.high * factor * wider,
        bars.low * factor / wider,
        bars.close * factor,
        bars.volume * factor,
    )


@pytest.mark.parametrize("mode", list(Mode))
def test_no_strategy_looks_ahead(bars, model_strategy, mode):
    """Changing every bar after t changes no position at or before t (so no fill at or before t+1)."""
    for strategy in _all_strategies(model_strategy):
        params = strategy.params()
        original = strategy.positions(bars, params, mode)
        for cut, seed in ((500, 1), (4000, 2), (9000, 3)):
            changed = strategy.positions(_perturbed_after(bars, cut, seed), params, mode)
            assert np.array_equal(original[: cut + 1], changed[: cut + 1]), (strategy.name, cut)
            assert not np.array_equal(original[cut + 1 :], changed[cut + 1 :]) or strategy.name == "model"


def test_live_decision_is_the_backtest_position_of_the_newest_bar(bars, model_strategy):
    for strategy in _all_strategies(model_strategy):
        params = strategy.params()
        window = bars.take(slice(0, 3000))
        assert strategy.decide(window, params) == strategy.positions(bars, params)[2999]


@pytest.mark.parametrize("mode", list(Mode))
def test_positions_are_flat_in_warmup_and_within_the_mode(bars, model_strategy, mode):
    for strategy in _all_strategies(model_strategy):
        params = strategy.params()
        positions = strategy.positions(bars, params, mode)
        assert positions.dtype == np.int8 and len(positions) == len(bars)
        assert not positions[: strategy.warmup(params)].any()
        allowed = {-1, 0, 1} if mode is Mode.LONG_SHORT else {0, 1}
        assert set(np.unique(positions)) <= allowed
        assert len(set(np.unique(positions))) > 1, strategy.name  # it trades on real data


def test_sma_cross_is_long_exactly_while_fast_above_slow():
    close = np.array([10, 10, 10, 11, 12, 13, 12, 11, 10, 9, 9, 10, 11], dtype=float)
    bars = Bars(np.arange(len(close)) * 60_000, close, close, close, close, np.ones(len(close)))
    strategy = get_strategy("sma_cross")
    positions = strategy.positions(bars, strategy.params({"fast": 2, "slow": 3}))
    fast = np.convolve(close, np.ones(2) / 2)[1 : len(close)]
    slow = np.convolve(close, np.ones(3) / 3)[2 : len(close)]
    expected = np.r_[0, 0, (fast[1:] > slow).astype(np.int8)]
    assert positions.tolist() == expected.tolist()


def test_rsi_reversion_holds_from_oversold_until_overbought():
    strategy = get_strategy("rsi_reversion")
    down = np.linspace(100, 80, 20)
    up = np.linspace(80, 120, 30)
    close = np.r_[down, up]
    bars = Bars(np.arange(len(close)) * 60_000, close, close, close, close, np.ones(len(close)))
    positions = strategy.positions(bars, strategy.params({"period": 5, "lower": 30, "upper": 70}))
    first_long = int(np.argmax(positions == 1))
    assert 5 <= first_long < 20  # entered while falling (oversold)
    assert positions[first_long:21].all()  # held through the turn
    assert positions[-1] == 0  # left once overbought


@pytest.mark.parametrize(
    ("name", "values", "message"),
    [
        ("sma_cross", {"fast": 60, "slow": 50}, "fast (60) must be below slow (50)"),
        ("sma_cross", {"fst": 5}, "unknown parameter 'fst'"),
        ("sma_cross", {"fast": 1}, "fast=1"),
        ("rsi_reversion", {"lower": 80}, "lower=80"),
        ("bb_breakout", {"k": "wide"}, "k='wide'"),
    ],
)
def test_bad_parameters_are_named(name, values, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        get_strategy(name).params(values)


def test_unknown_strategy_lists_the_known_ones():
    with pytest.raises(ConfigError, match=r"unknown strategy 'sma'.*sma_cross, rsi_reversion"):
        get_strategy("sma")


def test_the_model_strategy_needs_a_model(bars):
    with pytest.raises(ConfigError, match="has no model"):
        get_strategy("model").positions(bars, get_strategy("model").params())


def test_search_space_comes_from_parameter_bounds():
    space = {r.name: r for r in get_strategy("sma_cross").search_space()}
    assert (space["fast"].low, space["fast"].high, space["fast"].is_int) == (2, 200, True)
    assert {r.name for r in get_strategy("rsi_reversion").search_space()} == {"period", "lower", "upper"}
