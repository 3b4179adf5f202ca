"""The promotion gate refuses a worse challenger and accepts a better one, always saying why."""

import math

import pytest

from xray_core.errors import ConfigError
from xray_core.learning.gate import GateConfig, decide

GOOD = {"oos_sharpe": 1.5, "bh_sharpe": 0.4, "oos_trades": 40}


def test_a_first_champion_must_beat_buy_and_hold():
    assert decide(GOOD, None).promote
    lazy = GOOD | {"oos_sharpe": 0.45}
    decision = decide(lazy, None, GateConfig(margin=0.1))
    assert not decision.promote and "does not beat buy-and-hold" in decision.reason


def test_a_better_challenger_replaces_the_champion_a_worse_one_does_not():
    champion = {"oos_sharpe": 1.2, "bh_sharpe": 0.3, "oos_trades": 30}
    assert decide(GOOD, champion).promote
    worse = GOOD | {"oos_sharpe": 1.25}  # better than the champion, but not by the margin
    decision = decide(worse, champion, GateConfig(margin=0.1))
    assert not decision.promote and "champion's 1.200" in decision.reason


@pytest.mark.parametrize("broken", [{}, {"oos_sharpe": math.nan}, {"oos_sharpe": None}])
def test_a_failed_or_unmeasured_challenger_is_never_promoted(broken):
    decision = decide({"bh_sharpe": 0.1, "oos_trades": 50} | broken, None)
    assert not decision.promote and "no oos_sharpe" in decision.reason


def test_a_model_that_does_not_trade_proves_nothing():
    decision = decide(GOOD | {"oos_trades": 1}, None, GateConfig(min_trades=5))
    assert not decision.promote and "1 out-of-sample trades" in decision.reason


def test_a_negative_margin_is_a_config_error():
    with pytest.raises(ConfigError, match="XRAY_MODELS_PROMOTION_MARGIN"):
        GateConfig(margin=-1)
