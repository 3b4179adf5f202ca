"""Each risk limit on its own: the mask it returns for given equity, state and thresholds; and every
rule written under xray_core/risk/limits is registered."""

import importlib
import pkgutil

import numpy as np

import xray_core.risk.limits as limits_package
from xray_core.risk.limits.daily_loss import DAILY_LOSS
from xray_core.risk.limits.drawdown import DRAWDOWN_KILL
from xray_core.risk.limits.global_daily_loss import GLOBAL_DAILY_LOSS
from xray_core.risk.limits.registry import RULES
from xray_core.risk.limits.rule import Effect, RiskInputs, RiskLimits, Rule, Scope
from xray_core.risk.limits.state import RiskState


def _inputs(equity, day_open=None, peak=None, daily=0.05, drawdown=0.2, global_max=0.2):
    equity = np.asarray(equity, dtype=float)
    n = len(equity)
    day_open = equity if day_open is None else np.asarray(day_open, dtype=float)
    peak = equity if peak is None else np.asarray(peak, dtype=float)
    state = RiskState(0, day_open, peak, np.zeros(n, dtype=bool))
    return RiskInputs(0, equity, state, RiskLimits(np.full(n, daily), np.full(n, drawdown), global_max))


def test_daily_loss_blocks_entries_from_its_limit_on():
    mask = DAILY_LOSS.check(_inputs([95.0, 95.01, 10.0, 120.0], day_open=[100.0, 100.0, 0.0, 100.0]))
    assert list(mask) == [True, False, False, False]  # 5% down; just under; nothing at the open; up
    assert (DAILY_LOSS.effect, DAILY_LOSS.scope) == (Effect.NO_ENTRIES, Scope.USER)


def test_the_global_switch_is_all_or_nothing_on_the_combined_daily_loss():
    assert list(GLOBAL_DAILY_LOSS.check(_inputs([100.0, 80.0], day_open=[100.0, 100.0]))) == [False, False]
    assert list(GLOBAL_DAILY_LOSS.check(_inputs([100.0, 50.0], day_open=[100.0, 100.0]))) == [True, True]
    # One user's loss is everyone's switch only through the total: 25% of a small account is not.
    assert not GLOBAL_DAILY_LOSS.check(_inputs([10_000.0, 75.0], day_open=[10_000.0, 100.0])).any()
    assert GLOBAL_DAILY_LOSS.check(_inputs([])).shape == (0,)
    assert (GLOBAL_DAILY_LOSS.effect, GLOBAL_DAILY_LOSS.scope) == (Effect.NO_ENTRIES, Scope.ALL)


def test_the_drawdown_kill_fires_from_its_limit_under_the_peak():
    mask = DRAWDOWN_KILL.check(_inputs([79.0, 81.0, 0.0, 150.0], peak=[100.0, 100.0, 0.0, 150.0]))
    assert list(mask) == [True, False, False, False]
    assert (DRAWDOWN_KILL.effect, DRAWDOWN_KILL.scope) == (Effect.KILL, Scope.USER)


def test_every_rule_written_under_limits_is_registered_once():
    written = set()
    for module in pkgutil.iter_modules(limits_package.__path__):
        namespace = vars(importlib.import_module(f"{limits_package.__name__}.{module.name}"))
        written |= {value for value in namespace.values() if isinstance(value, Rule)}
    assert written == set(RULES), "a rule file is not registered in xray_core/risk/limits/registry.py"
    assert len({rule.name for rule in RULES}) == len(RULES)
