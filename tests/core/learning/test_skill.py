"""The gate's statistics: a paired block bootstrap that finds planted skill and not noise, whose p-value
is about uniform when there is no difference; a deflated Sharpe that shrinks with the trials; shadow
books turned into paired returns."""

import itertools
import math

import numpy as np
import polars as pl
import pytest

from xray_core.errors import DataError
from xray_core.learning.skill import (
    SHADOW,
    PairedReturns,
    deflated_sharpe,
    expected_max_sharpe,
    paired_bootstrap,
    shadow_pair,
    sharpe,
    stationary_indices,
)

HOURLY = 24 * 365


def _market(n: int, seed: int) -> tuple[np.ndarray, np.random.Generator]:
    rng = np.random.default_rng(seed)
    return rng.normal(0.0, 0.01, n), rng


def test_stationary_blocks_have_the_mean_length_asked_for():
    idx = stationary_indices(2000, 10.0, 50, np.random.default_rng(1))
    assert idx.shape == (50, 2000) and idx.min() >= 0 and idx.max() < 2000
    continues = np.mean(idx[:, 1:] == (idx[:, :-1] + 1) % 2000)
    assert 1 / (1 - continues) == pytest.approx(10.0, rel=0.15)  # mean block length


def test_planted_skill_is_significant_and_noise_is_not():
    market, rng = _market(1500, 7)
    skilled = (market + rng.normal(0, 0.02, market.size) > 0) * market  # knows the sign a little
    noise = (rng.random(market.size) > 0.5) * market  # guesses
    found = paired_bootstrap(skilled, noise, HOURLY, block=24, resamples=999, seed=3)
    assert found.diff > 0 and found.p_value < 0.01
    assert found.ci_low < sharpe(skilled, HOURLY) < found.ci_high and found.ci_low > 0
    other_noise = (rng.random(market.size) > 0.5) * market
    assert paired_bootstrap(other_noise, noise, HOURLY, block=24, resamples=999, seed=3).p_value > 0.05 or \
        paired_bootstrap(noise, other_noise, HOURLY, block=24, resamples=999, seed=3).p_value > 0.05


def test_the_bootstrap_is_deterministic_for_a_seed():
    market, rng = _market(400, 2)
    a, b = market * (rng.random(400) > 0.3), market * (rng.random(400) > 0.6)
    first = paired_bootstrap(a, b, HOURLY, block=12, resamples=199, seed=5)
    assert paired_bootstrap(a, b, HOURLY, block=12, resamples=199, seed=5) == first


def test_p_values_are_about_uniform_when_neither_model_is_better():
    p = []
    for k in range(150):
        rng = np.random.default_rng(100 + k)
        common = rng.normal(0, 1, 300)
        a, b = common + rng.normal(0, 1, 300), common + rng.normal(0, 1, 300)  # paired, same true Sharpe
        p.append(paired_bootstrap(a, b, 1.0, block=5, resamples=199, seed=k).p_value)
    p = np.asarray(p)
    assert 0.01 <= np.mean(p < 0.1) <= 0.22  # 0.1 expected
    assert 0.33 <= np.mean(p < 0.5) <= 0.67  # 0.5 expected
    assert 0.3 <= np.mean(p) <= 0.7


def test_deflated_sharpe_falls_with_every_trial():
    market, rng = _market(1000, 11)
    returns = (market + rng.normal(0, 0.05, market.size) > 0) * market
    values = [deflated_sharpe(returns, trials) for trials in (1, 2, 10, 100, 1000)]
    assert all(later < earlier for earlier, later in itertools.pairwise(values)), values
    assert expected_max_sharpe(1, 1.0) == 0 and expected_max_sharpe(100, 1.0) > expected_max_sharpe(10, 1.0)
    # Trials whose Sharpes spread widely deflate more than trials that all look alike.
    wide, alike = [-20, 0, 20], [1, 1.1, 0.9]
    assert deflated_sharpe(returns, 10, wide, HOURLY) < deflated_sharpe(returns, 10, alike, HOURLY)


def test_paired_series_must_have_the_same_bars():
    with pytest.raises(DataError, match="same bars"):
        paired_bootstrap(np.zeros(10), np.zeros(9), 1.0, block=2, resamples=99)
    with pytest.raises(DataError, match="same bars"):
        PairedReturns(np.zeros(10), None, np.zeros(9), np.zeros(10), {}, 1.0)


def test_evidence_survives_json():
    ev = PairedReturns(np.arange(5.0), None, np.ones(5), np.arange(5.0) - 1, {"A": 3.0}, 8760.0,
                       champion_version=None, notes=("x",))
    back = PairedReturns.from_json(ev.to_json())
    assert np.array_equal(back.challenger, ev.challenger) and back.champion is None
    assert back.trades_per_symbol == {"A": 3.0} and back.notes == ("x",)


def test_shadow_books_become_paired_returns_with_costs():
    stamps = pl.datetime_range(pl.datetime(2026, 1, 1), pl.datetime(2026, 1, 1, 9), "1h", eager=True,
                               time_zone="UTC").cast(pl.Datetime("ms", "UTC"))
    close = np.array([100, 101, 102, 101, 103, 104, 104, 105, 106, 107], dtype=float)
    candles = {"AAA/USDT": pl.DataFrame({"timestamp": stamps, "close": close})}
    challenger = [1, 1, 0, 1, 1, 1, 0, 0, 1, 1]
    champion = [0] * 10
    rows = pl.DataFrame({
        "timestamp": list(stamps) * 2, "symbol": "AAA/USDT",
        "model_version": ["xray-gbm/2"] * 10 + ["xray-gbm/1"] * 10, "position": challenger + champion,
    })
    pair = shadow_pair(rows, candles, "xray-gbm/2", "xray-gbm/1", cost=0.001, bars_per_year=HOURLY)
    assert pair is not None and pair.source == SHADOW and pair.champion_version == "1"
    move = close[1:] / close[:-1] - 1
    turnover = np.abs(np.diff(np.concatenate([[0], challenger[:-1]])))
    assert pair.challenger == pytest.approx(np.asarray(challenger[:-1]) * move - 0.001 * turnover)
    assert pair.challenger_2x == pytest.approx(np.asarray(challenger[:-1]) * move - 0.002 * turnover)
    assert pair.champion == pytest.approx(np.zeros(9)) and pair.buy_and_hold[0] == pytest.approx(0.01 - 0.001)
    assert pair.trades_per_symbol == {"AAA/USDT": 5.0}  # entries and exits
    assert shadow_pair(rows, candles, "xray-gbm/3", "xray-gbm/1", cost=0.0, bars_per_year=1.0) is None
    assert math.isfinite(sharpe(pair.challenger, HOURLY))
