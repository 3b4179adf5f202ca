"""From promoted artefacts and closed bars to each user's intents: one signal per symbol, sized per
user, within each user's limits, and the same again when re-derived after a restart."""

import json

import numpy as np
import pytest

from xray_core.bundle import Bundle, publish
from xray_core.candles.bars import Bars
from xray_core.risk.limits.book import NOT_BLOCKED
from xray_core.risk.limits.daily_loss import DAILY_LOSS
from xray_core.risk.limits.registry import code_of
from xray_core.trading.orders import Side
from xray_runtime.artefacts import ArtefactWatcher
from xray_runtime.book import Book, Sizing
from xray_runtime.decide import MarketRules, decide
from xray_runtime.market import SymbolBars
from xray_runtime.signals import compute_signals

HOUR = 3_600_000


def _bundle(symbols, params=None, profiles=None):
    return Bundle(
        exchange="mexc",
        timeframe="1h",
        symbols=[
            {"symbol": s, "strategy": "sma_cross", "params": params or {"fast": 2, "slow": 4}, "group": 0}
            for s in symbols
        ],
        risk_profiles=profiles or {},
        models={},
        feature_version="f",
        code_version="c",
        data_versions={s: f"d-{s}" for s in symbols},
    )


def _bars(closes, start=0):
    closes = np.asarray(closes, dtype=float)
    stamps = start + np.arange(len(closes), dtype=np.int64) * HOUR
    return Bars(stamps, closes, closes * 1.01, closes * 0.99, closes, np.ones(len(closes)))


def _sizing(profile="balanced", trade_percentage=0.1, max_position_usd=1_000.0):
    return Sizing(profile, trade_percentage, 1.0, 1.0, max_position_usd, 0.05, 0.2)


@pytest.fixture
def watcher(tmp_path):
    publish(_bundle(["BTC/USDT", "ETH/USDT"]), tmp_path)
    w = ArtefactWatcher(tmp_path)
    assert w.poll()
    return w


RISING_AFTER_FALL = [10, 9, 8, 7, 6, 5, 6, 8]  # SMA(2) crosses above SMA(4) on the last bar
FALLING = [10, 9, 8, 7, 6, 5, 4, 3]


def test_one_signal_per_symbol_with_entry_only_on_the_crossing_bar(watcher):
    data = {
        "BTC/USDT": SymbolBars("BTC/USDT", _bars(RISING_AFTER_FALL), True),
        "ETH/USDT": SymbolBars("ETH/USDT", _bars(FALLING), True),
    }
    signals, skipped = compute_signals(watcher.current, data, "gbm")
    assert skipped == []
    btc, eth = signals["BTC/USDT"], signals["ETH/USDT"]
    assert (btc.target, btc.entry, btc.bar_ms, btc.close) == (1, True, 7 * HOUR, 8.0)
    assert (eth.target, eth.entry) == (0, False)
    assert btc.lineage.bundle_version == watcher.current.version
    assert json.loads(btc.lineage.params) == {"fast": 2, "slow": 4}
    assert btc.lineage.data_version == f"d-BTC/USDT@{7 * HOUR}"
    # A bar later the target still holds but it is no longer an entry.
    later = {"BTC/USDT": SymbolBars("BTC/USDT", _bars([*RISING_AFTER_FALL, 9]), True)}
    assert compute_signals(watcher.current, later, "gbm")[0]["BTC/USDT"].entry is False


def test_stale_or_missing_symbols_are_skipped_with_their_reason(watcher):
    data = {"BTC/USDT": SymbolBars("BTC/USDT", _bars(FALLING), False, "stale data: 3.0 bars old")}
    signals, skipped = compute_signals(watcher.current, data, "gbm")
    assert signals == {}
    assert {(s.symbol, s.reason) for s in skipped} == {
        ("BTC/USDT", "stale data: 3.0 bars old"),
        ("ETH/USDT", "no candles fetched"),
    }


def _book(n_users=3, cash=10_000.0, sizing=None):
    book = Book()
    book.set_symbols(["BTC/USDT", "ETH/USDT"])
    book.set_users([(f"u{i}", sizing or _sizing()) for i in range(n_users)])
    book.cash[:] = cash
    return book


RULES = {"BTC/USDT": MarketRules(0.001, 1.0), "ETH/USDT": MarketRules(0.001, 1.0)}


def _signals(watcher, btc, eth=FALLING):
    data = {
        "BTC/USDT": SymbolBars("BTC/USDT", _bars(btc), True),
        "ETH/USDT": SymbolBars("ETH/USDT", _bars(eth), True),
    }
    return compute_signals(watcher.current, data, "gbm")[0]


def test_entries_are_sized_per_user_and_rounded_to_the_market_step(watcher):
    book = _book()
    # u1 wants 50% (5,000) but may hold at most 1,000
    book.set_users(
        list(zip(book.user_ids, [_sizing(), _sizing(trade_percentage=0.5), _sizing()], strict=True))
    )
    book.cash[:] = [10_000.0, 10_000.0, 20.0]
    signals = _signals(watcher, RISING_AFTER_FALL)
    none = np.zeros(3, dtype=np.int8)
    decisions = decide(book, signals, watcher.current, RULES, none, np.zeros(3, dtype=bool))
    amounts = {
        book.user_ids[i]: [(x.side, x.amount, x.intent) for x in v] for i, v in decisions.intents.items()
    }
    assert amounts == {
        "u0": [(Side.BUY, 125.0, "enter")],  # 10% of 10,000 at 8.0
        "u1": [(Side.BUY, 125.0, "enter")],  # capped at max_position_usd 1,000
        "u2": [(Side.BUY, 0.25, "enter")],  # 10% of an equity of 20: 2 USDT
    }


def test_profile_sizing_from_the_bundle_never_exceeds_the_users_own(tmp_path):
    profiles = {
        "balanced": {"BTC/USDT": {"trade_percentage": 0.05, "leverage": 3.0, "margin_multiplier": 2.0}}
    }
    publish(_bundle(["BTC/USDT", "ETH/USDT"], profiles=profiles), tmp_path)
    watcher = ArtefactWatcher(tmp_path)
    watcher.poll()
    book = _book(1)
    decisions = decide(
        book,
        _signals(watcher, RISING_AFTER_FALL),
        watcher.current,
        RULES,
        np.zeros(1, dtype=np.int8),
        np.zeros(1, dtype=bool),
    )
    [intent] = decisions.intents[0]
    assert intent.amount == pytest.approx(10_000 * 0.05 * 1.0 / 2.0 / 8.0)  # min share, max margin, spot x1


def test_blocked_users_do_not_enter_but_holders_exit_and_killed_users_flatten(watcher):
    book = _book(3)
    book.position[:, book.symbol_index["ETH/USDT"]] = [2.0, 2.0, 0.0]
    block = np.array([code_of(DAILY_LOSS), NOT_BLOCKED, NOT_BLOCKED], dtype=np.int8)
    killed = np.array([False, True, False])
    decisions = decide(book, _signals(watcher, RISING_AFTER_FALL), watcher.current, RULES, block, killed)
    got = {
        book.user_ids[i]: sorted((x.symbol, x.side, x.intent) for x in v)
        for i, v in decisions.intents.items()
    }
    assert got == {
        "u0": [("ETH/USDT", Side.SELL, "exit")],  # ETH's target is 0: exits are always allowed
        "u1": [("ETH/USDT", Side.SELL, "kill")],  # the kill switch flattens and enters nothing
        "u2": [("BTC/USDT", Side.BUY, "enter")],
    }


def test_re_deriving_the_same_bar_gives_the_same_client_order_ids(watcher):
    def ids():
        book = _book(2)
        signals = _signals(watcher, RISING_AFTER_FALL)
        decisions = decide(
            book, signals, watcher.current, RULES, np.zeros(2, dtype=np.int8), np.zeros(2, dtype=bool)
        )
        return sorted(x.client_order_id for v in decisions.intents.values() for x in v)

    assert ids() == ids() and len(set(ids())) == 2


def test_cash_is_not_spent_twice_on_simultaneous_entries(tmp_path):
    publish(_bundle(["BTC/USDT", "ETH/USDT"]), tmp_path)
    watcher = ArtefactWatcher(tmp_path)
    watcher.poll()
    book = _book(1, cash=100.0, sizing=_sizing(trade_percentage=0.6))
    signals = _signals(watcher, RISING_AFTER_FALL, RISING_AFTER_FALL)
    decisions = decide(
        book, signals, watcher.current, RULES, np.zeros(1, dtype=np.int8), np.zeros(1, dtype=bool)
    )
    first, second = (x.amount * 8.0 for x in decisions.intents[0])
    assert first == pytest.approx(60.0, abs=0.01)  # 60% of the equity
    assert second == pytest.approx(40.0 * 0.995, abs=0.01)  # what is left, less room for the fee


def test_a_bad_bundle_is_refused_and_the_last_good_one_kept(watcher, tmp_path):
    good = watcher.current.version
    bad = _bundle(["BTC/USDT"], params={"fast": 50, "slow": 10})  # fast must be below slow
    publish(bad, tmp_path)
    assert not watcher.poll()
    assert watcher.current.version == good and "sma_cross" in watcher.refused
    fixed = _bundle(["BTC/USDT"], params={"fast": 3, "slow": 10})
    publish(fixed, tmp_path)
    assert watcher.poll() and watcher.current.version == fixed.version and watcher.refused is None


def _in_doubt(user, symbol, side, amount, bar_ms=0):
    from xray_core.trading.orders import Lineage, Order, OrderIntent, OrderStatus

    intent = OrderIntent(user, symbol, side, amount, bar_ms, "enter", Lineage("b", "s", "{}", None, "d"))
    return Order.from_intent(intent, 1).advance(OrderStatus.SUBMITTED, 2)


def test_orders_in_doubt_count_against_the_limits(watcher):
    book = _book(3, cash=1_000.0)
    book.position[:, book.symbol_index["ETH/USDT"]] = [0.0, 0.0, 3.0]
    book.set_pending([
        _in_doubt("u0", "BTC/USDT", Side.BUY, 60.0),  # a buy of 480 USDT in doubt: held, and spent
        _in_doubt("u1", "ETH/USDT", Side.BUY, 100.0),  # spent: 300 (100 ETH at 3) of u1's 1,000
        _in_doubt("u2", "ETH/USDT", Side.SELL, 2.0),  # 2 of u2's 3 ETH already being sold
    ])
    none = np.zeros(3, dtype=np.int8)
    decisions = decide(book, _signals(watcher, RISING_AFTER_FALL), watcher.current, RULES, none,
                       np.zeros(3, dtype=bool))
    got = {book.user_ids[i]: [(x.symbol, x.side, x.amount) for x in v] for i, v in decisions.intents.items()}
    assert "u0" not in got  # no second entry on top of the buy in doubt
    assert got["u1"] == [("BTC/USDT", Side.BUY, pytest.approx(1_000 * 0.1 / 8.0))]  # equity unchanged
    assert ("ETH/USDT", Side.SELL, 1.0) in got["u2"]  # only what is not already being sold
    book.cash[:] = [1_000.0, 100.0, 1_000.0]  # u1: the buy in doubt leaves 100 - 300 < 0 free
    decisions = decide(book, _signals(watcher, RISING_AFTER_FALL), watcher.current, RULES, none,
                       np.zeros(3, dtype=bool))
    assert 1 not in decisions.intents


def test_a_symbol_left_out_of_the_bundle_is_sold_and_a_killed_user_flattens_without_a_signal(watcher):
    book = _book(2)
    book.set_symbols(["BTC/USDT", "ETH/USDT", "SOL/USDT"])
    book.position[:, book.symbol_index["SOL/USDT"]] = [4.0, 0.0]  # SOL: no longer in the bundle
    book.position[:, book.symbol_index["BTC/USDT"]] = [0.0, 2.0]
    book.mark({"SOL/USDT": 20.0, "BTC/USDT": 9.0})
    rules = RULES | {"SOL/USDT": MarketRules(0.01, 1.0)}
    # Only ETH has a signal this bar (BTC's candles failed): still, the killed user sells BTC.
    signals = {"ETH/USDT": _signals(watcher, RISING_AFTER_FALL)["ETH/USDT"]}
    killed = np.array([False, True])
    none = np.zeros(2, dtype=np.int8)
    decisions = decide(book, signals, watcher.current, rules, none, killed, bar_ms=7 * HOUR)
    got = {book.user_ids[i]: [(x.symbol, x.side, x.amount, x.intent, x.bar_ms) for x in v]
           for i, v in decisions.intents.items()}
    assert got["u0"] == [("SOL/USDT", Side.SELL, 4.0, "drop", 7 * HOUR)]
    assert got["u1"] == [("BTC/USDT", Side.SELL, 2.0, "kill", 7 * HOUR)]
    [drop] = decisions.intents[0]
    assert drop.lineage.strategy == "drop" and drop.lineage.bundle_version == watcher.current.version
