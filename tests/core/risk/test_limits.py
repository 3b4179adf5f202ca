"""The risk book: every user's risk state rolled each tick and the registered rules evaluated over all
users at once — who may enter, who was just killed, which global switch is on."""

import numpy as np
import pytest

from xray_core.errors import ConfigError
from xray_core.risk.limits import registry
from xray_core.risk.limits.book import NOT_BLOCKED, RiskBook
from xray_core.risk.limits.daily_loss import DAILY_LOSS
from xray_core.risk.limits.drawdown import DRAWDOWN_KILL
from xray_core.risk.limits.global_daily_loss import GLOBAL_DAILY_LOSS
from xray_core.risk.limits.registry import RULES, code_of
from xray_core.risk.limits.rule import Effect, RiskLimits, Rule, Totals
from xray_core.risk.limits.state import DAY_MS, RiskState, SavedRisk

FREE = NOT_BLOCKED
DAILY, GLOBAL, KILLED = code_of(DAILY_LOSS), code_of(GLOBAL_DAILY_LOSS), code_of(DRAWDOWN_KILL)
POOR = Rule("poor", "equity under 50: no new entries", check=lambda inputs: inputs.equity < 50)


def _limits(daily, drawdown, global_max=0.2):
    return RiskLimits(np.asarray(daily, dtype=float), np.asarray(drawdown, dtype=float), global_max)


def _risk_book():
    return RiskBook(_limits([0.05, 0.05, 0.5], [0.2, 0.1, 0.9]))


def test_daily_loss_blocks_entries_until_the_next_day_and_drawdown_kills():
    book = _risk_book()
    day = DAY_MS
    check = book.update(np.array([100.0, 100.0, 100.0]), now_ms=day)
    assert list(check.block) == [FREE] * 3 and not check.newly_killed.any() and not check.global_on
    check = book.update(np.array([94.0, 89.0, 100.0]), now_ms=day + 1)
    assert list(check.block) == [DAILY, KILLED, FREE]
    assert list(check.newly_killed) == [False, True, False]
    check = book.update(np.array([94.0, 95.0, 100.0]), now_ms=2 * day)  # a new day
    assert list(check.block) == [FREE, KILLED, FREE] and not check.newly_killed.any()  # killed stays killed
    book.revive(1, 95.0)
    check = book.update(np.array([94.0, 95.0, 100.0]), now_ms=2 * day + 1)
    assert check.block[1] == FREE


def test_the_global_kill_switch_blocks_everyone():
    book = RiskBook(_limits(np.full(2, 0.9), np.full(2, 0.95)))
    book.update(np.array([100.0, 100.0]), now_ms=0)
    check = book.update(np.array([100.0, 50.0]), now_ms=1)  # 25% combined loss
    assert check.global_on and list(check.block) == [GLOBAL, GLOBAL]
    assert check.switches == (GLOBAL_DAILY_LOSS,)


def test_users_joining_and_leaving_keep_their_own_risk_history():
    book = _risk_book()
    book.update(np.array([100.0, 100.0, 100.0]), now_ms=0)
    book.update(np.array([100.0, 85.0, 100.0]), now_ms=1)  # the second user is killed
    # The first user leaves, a new one arrives last: rows are now (old 1, old 2, new).
    book.reindex(np.array([1, 2, -1]), _limits(np.full(3, 0.05), np.full(3, 0.2)))
    check = book.update(np.array([85.0, 100.0, 50.0]), now_ms=2)
    assert list(check.block) == [KILLED, FREE, FREE]  # the newcomer starts from its equity
    assert not check.newly_killed.any()


def test_the_most_severe_rule_names_the_block_and_kills_outrank_everything():
    book = RiskBook(_limits([0.05, 0.05, 0.05], [0.6, 0.1, 0.6]))
    book.update(np.array([100.0, 100.0, 100.0]), now_ms=0)
    check = book.update(np.array([50.0, 80.0, 100.0]), now_ms=1)  # 23% combined loss: global on
    # Daily loss and global: global (registered later); daily loss, global and drawdown: the kill.
    assert list(check.block) == [GLOBAL, KILLED, GLOBAL]
    assert book.reason(check.block[1]) == DRAWDOWN_KILL.reason
    assert book.reason(check.block[0]) == GLOBAL_DAILY_LOSS.reason and book.reason(FREE) == ""


def test_the_book_evaluates_exactly_the_registry(monkeypatch):
    equity = np.array([100.0, 40.0, 60.0])
    assert RiskBook(_limits(np.full(3, 0.05), np.full(3, 0.2))).rules is RULES
    plain = RiskBook(_limits(np.full(3, 0.05), np.full(3, 0.2)))
    assert list(plain.update(equity, now_ms=0).block) == [FREE] * 3
    monkeypatch.setattr(registry, "RULES", (*RULES, POOR))  # one registration line
    book = RiskBook(_limits(np.full(3, 0.05), np.full(3, 0.2)))
    check = book.update(equity, now_ms=0)
    assert list(check.block) == [FREE, code_of(POOR), FREE] and code_of(POOR) == len(RULES) + 1
    assert book.reason(check.block[1]) == POOR.reason
    assert not check.newly_killed.any() and not check.global_on  # it only stops entries


def test_a_registered_kill_rule_kills_once_and_the_kill_holds_until_revived(monkeypatch):
    broke = Rule("broke", "equity under 10: positions closed", check=lambda inputs: inputs.equity < 10,
                 effect=Effect.KILL)
    monkeypatch.setattr(registry, "RULES", (*RULES, broke))
    book = RiskBook(_limits(np.full(2, 0.9), np.full(2, 0.99), global_max=1.0))
    book.update(np.array([100.0, 100.0]), now_ms=0)
    check = book.update(np.array([5.0, 100.0]), now_ms=1)
    assert list(check.newly_killed) == [True, False] and list(check.block) == [code_of(broke), FREE]
    check = book.update(np.array([50.0, 100.0]), now_ms=DAY_MS)  # back above 10, a new day
    assert not check.newly_killed.any() and check.block[0] == code_of(broke)  # the kill holds
    book.revive(0, 50.0)
    assert book.update(np.array([50.0, 100.0]), now_ms=DAY_MS + 1).block[0] == FREE


def test_rules_read_the_state_passed_in_and_the_book_never_changes_it_in_place():
    # As if loaded after a restart: user 0 was killed, user 1 opened the day at 100.
    loaded = RiskState(day=3, day_open=np.array([100.0, 100.0]), peak=np.array([120.0, 100.0]),
                       killed=np.array([True, False]))
    book = RiskBook(_limits([0.05, 0.05], [0.2, 0.2]), initial_state=loaded)
    check = book.update(np.array([100.0, 94.0]), now_ms=3 * DAY_MS + 5)
    assert list(check.block) == [KILLED, DAILY] and not check.newly_killed.any()
    check = book.update(np.array([100.0, 79.0]), now_ms=3 * DAY_MS + 6)  # user 1: 21% under its peak
    assert list(check.newly_killed) == [False, True]
    assert list(loaded.killed) == [True, False] and list(loaded.day_open) == [100.0, 100.0]
    assert list(book.state.killed) == [True, True] and book.state.day == 3
    book.update(np.array([100.0, 79.0]), now_ms=4 * DAY_MS)
    assert list(book.state.day_open) == [100.0, 79.0] and book.state.day == 4  # the new day opens here


def test_a_bad_registry_or_a_bad_rule_is_refused():
    limits = _limits([0.05], [0.2])
    with pytest.raises(ConfigError, match="registered twice"):
        RiskBook(limits, rules=(*RULES, Rule(DAILY_LOSS.name, "again", DAILY_LOSS.check)))
    with pytest.raises(ConfigError, match="no kill rule"):
        RiskBook(limits, rules=(DAILY_LOSS, GLOBAL_DAILY_LOSS))
    floats = Rule("floats", "not a mask", check=lambda inputs: inputs.equity * 0.5)
    book = RiskBook(limits, rules=(*RULES, floats))
    with pytest.raises(TypeError, match="risk rule floats returned float64"):
        book.update(np.array([100.0]), now_ms=0)
    with pytest.raises(ValueError, match="reindex"):
        RiskBook(limits).update(np.array([100.0, 100.0]), now_ms=0)


def test_an_unmeasured_equity_changes_nothing_and_fires_nothing():
    book = _risk_book()
    book.update(np.array([100.0, 100.0, 100.0]), now_ms=0)
    check = book.update(np.array([np.nan, 100.0, np.nan]), now_ms=1)  # e.g. a price never known
    assert list(check.block) == [FREE] * 3 and not check.killed.any() and not check.global_on
    assert list(book.state.day_open) == [100.0] * 3 and list(book.state.peak) == [100.0] * 3
    book.update(np.array([np.nan, 100.0, 100.0]), now_ms=DAY_MS)  # a new day: opens when measured
    assert np.isnan(book.state.day_open[0]) and book.state.peak[0] == 100.0
    book.update(np.array([90.0, 100.0, 100.0]), now_ms=DAY_MS + 1)
    assert book.state.day_open[0] == 90.0


def test_a_stored_state_is_put_back_at_the_users_first_tick():
    book = _risk_book()
    book.update(np.array([100.0, 100.0, 100.0]), now_ms=3 * DAY_MS)
    saved = {1: SavedRisk(3, 200.0, 250.0, False), 2: SavedRisk(2, 50.0, 300.0, True)}
    book.reindex(np.array([0, -1, -1]), _limits([0.05] * 3, [0.5] * 3), saved=saved)
    book.reindex(np.array([1, 2, 0]), _limits([0.05] * 3, [0.5] * 3))  # moved again before any tick
    check = book.update(np.array([180.0, 160.0, 100.0]), now_ms=3 * DAY_MS + 1)
    assert list(book.state.day_open) == [200.0, 160.0, 100.0]  # today's opening kept; yesterday's not
    assert list(book.state.peak) == [250.0, 300.0, 100.0]
    assert list(check.block) == [DAILY, KILLED, FREE] and list(check.killed) == [False, True, False]
    assert not check.newly_killed.any()  # killed before: not news
    assert book.state.saved(1) == SavedRisk(3, 160.0, 300.0, True)


def test_combined_totals_from_elsewhere_drive_the_global_switch():
    book = RiskBook(_limits(np.full(2, 0.9), np.full(2, 0.95)))
    equity = np.array([100.0, 100.0])
    assert not book.update(equity, now_ms=0).global_on
    elsewhere_down = Totals(day_open=1_000.0, equity=700.0)  # every process's users: 30% down
    check = book.update(equity, now_ms=1, combined=elsewhere_down)
    assert check.global_on and list(check.block) == [GLOBAL, GLOBAL]
    assert not book.update(equity, now_ms=2, combined=Totals(1_000.0, 950.0)).global_on


def test_transfers_move_the_baselines_and_are_neither_profit_nor_loss():
    book = RiskBook(_limits([0.05, 0.05, 0.05], [0.2, 0.2, 0.2], global_max=0.5))
    book.update(np.array([100.0, 100.0, 100.0]), now_ms=DAY_MS)
    # 0 withdraws half; 1 deposits 100 and loses 50 of its 200 (raw: 100 -> 150, up); 2 loses 3.
    moved = np.array([-50.0, 100.0, 0.0])
    check = book.update(np.array([50.0, 150.0, 97.0]), now_ms=DAY_MS + 1, transfers=moved)
    assert list(check.block) == [FREE, KILLED, FREE]
    # The state keeps the baselines net of the transfers; a second withdrawal moves them again.
    assert list(book.state.day_open) == [100.0, 100.0, 100.0] and book.state.peak[0] == 100.0
    moved = np.array([-75.0, 100.0, 0.0])
    check = book.update(np.array([25.0, 150.0, 94.0]), now_ms=DAY_MS + 2, transfers=moved)
    assert list(check.block) == [FREE, KILLED, DAILY]  # 2: down 6% of its day-open, no transfer to excuse it
    assert not check.global_on
