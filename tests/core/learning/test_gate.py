"""The promotion gate: planted skill passes, noise and every missing piece of evidence fail, each with
its reason; a decayed champion is recognised against the confidence bound it promised."""

import math

import numpy as np
import pytest

from xray_core.errors import ConfigError
from xray_core.learning.gate import KEEP, PROMOTE, GateConfig, decayed, judge
from xray_core.learning.skill import PairedReturns

HOURLY = 24 * 365
COST = 0.001
GATE = GateConfig(resamples=499)
RECORD_KEYS = {"p_value", "trials", "baseline_flat_sharpe", "sharpe_at_2x_costs", "verdict", "reason",
               "oos_sharpe", "oos_sharpe_ci_low", "oos_sharpe_ci_high"}


def _evidence(skill: float, seed: int = 1, n: int = 1500, champion: bool = False, trend: float = 0.0,
              trades: float = 20.0) -> PairedReturns:
    """A long-only model on a random market that sees the sign of the next move with strength `skill`."""
    rng = np.random.default_rng(seed)
    market = rng.normal(trend, 0.01, n)
    held = ((skill * market + rng.normal(0, 0.01, n)) > 0).astype(float)
    turnover = np.abs(np.diff(np.concatenate([[0.0], held])))
    ours = held * market - COST * turnover
    other = (rng.random(n) > 0.5) * market if champion else None
    return PairedReturns(ours, other, market, held * market - 2 * COST * turnover,
                         {"AAA/USDT": trades, "BBB/USDT": trades + 5}, HOURLY,
                         champion_version="1" if champion else None)


def test_planted_skill_is_promoted_with_a_small_p_value():
    record = judge(_evidence(skill=1.0), trials=3, config=GATE)
    assert record.verdict == PROMOTE, record.reason
    assert record.p_value < 0.01 and record.deflated_sharpe > 0.95
    assert record.oos_sharpe_ci_low < record.oos_sharpe < record.oos_sharpe_ci_high
    assert record.baseline_flat_sharpe == 0.0 and record.sharpe_at_2x_costs > 0
    assert set(record.as_dict()) >= RECORD_KEYS
    beaten = judge(_evidence(skill=1.0, champion=True), trials=3, config=GATE)
    assert beaten.promote and beaten.reference == "champion v1", beaten.reason


def test_a_noise_challenger_is_kept_out():
    for seed in (2, 3, 4):
        record = judge(_evidence(skill=0.0, seed=seed), trials=3, config=GATE)
        assert record.verdict == KEEP and record.reason, record


def test_the_gate_is_deterministic():
    assert judge(_evidence(0.3), 5, config=GATE) == judge(_evidence(0.3), 5, config=GATE)


def test_many_trials_deflate_a_modest_edge_away():
    modest = _evidence(skill=0.25, seed=9)
    few, many = judge(modest, 1, config=GATE), judge(modest, 10_000, config=GATE)
    assert many.deflated_sharpe < few.deflated_sharpe
    assert many.trials == 10_000 and "trials" in many.reason


def test_every_missing_piece_of_evidence_is_a_reason():
    thin = judge(_evidence(1.0, trades=1), 1, config=GATE)
    assert not thin.promote and "1 trades on AAA/USDT, 3 per symbol needed" in thin.reason
    short = judge(_evidence(1.0, n=100), 1, config=GATE)
    assert not short.promote and "100 paired bars, 240 needed" in short.reason
    costly = _evidence(1.0)
    costly = PairedReturns(costly.challenger, None, costly.buy_and_hold, costly.challenger - 0.01,
                           costly.trades_per_symbol, HOURLY)
    record = judge(costly, 1, config=GATE)
    assert not record.promote and "at 2x costs" in record.reason


def test_buy_and_hold_must_be_beaten_in_a_rising_market():
    record = judge(_evidence(skill=0.0, trend=0.003), 1, config=GATE)  # long half the time in a rally
    assert not record.promote and "does not beat buy-and-hold" in record.reason
    assert record.reference == "buy-and-hold"


def test_a_failed_measurement_is_never_promoted():
    broken = PairedReturns(np.array([math.nan] * 300), None, np.zeros(300), np.zeros(300), {"A": 9.0}, HOURLY)
    record = judge(broken, 1, config=GATE)
    assert record.verdict == KEEP and "no usable" in record.reason
    assert record.as_dict()["p_value"] is None


def test_decay_is_falling_below_the_promised_lower_bound():
    assert decayed(0.2, promised_ci_low=0.5)
    assert not decayed(0.6, promised_ci_low=0.5)
    assert decayed(math.nan, promised_ci_low=0.5)  # a live record that cannot be measured has no edge
    assert not decayed(-3.0, promised_ci_low=math.nan)


def test_bad_settings_are_config_errors():
    with pytest.raises(ConfigError, match="XRAY_MODELS_GATE_ALPHA"):
        GateConfig(alpha=0.7)
