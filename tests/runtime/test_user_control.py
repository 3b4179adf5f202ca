"""Pause, resume and stop: one row per user in the runtime's SQL, kept across a restart, honoured by the
vectorised decision and by the trading loop against the emulator."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from service_support import add_users, run_bars, start_service

from xray_core.bundle import Bundle, publish
from xray_core.candles.bars import Bars
from xray_core.trading.orders import Side
from xray_runtime.artefacts import ArtefactWatcher
from xray_runtime.book import Book, Sizing
from xray_runtime.db import connect
from xray_runtime.decide import MarketRules, decide
from xray_runtime.market import SymbolBars
from xray_runtime.signals import compute_signals
from xray_runtime.user_control import UserControl, masks
from xray_runtime.users import UnknownUserError, UserStore

HOUR = 3_600_000
RULES = {"BTC/USDT": MarketRules(0.001, 1.0), "ETH/USDT": MarketRules(0.001, 1.0)}
RISING_AFTER_FALL = [10, 9, 8, 7, 6, 5, 6, 8]  # SMA(2) crosses above SMA(4) on the last bar
FALLING = [10, 9, 8, 7, 6, 5, 4, 3]


@pytest.fixture
def watcher(tmp_path):
    symbols = ["BTC/USDT", "ETH/USDT"]
    publish(Bundle(exchange="mexc", timeframe="1h",
                   symbols=[{"symbol": s, "strategy": "sma_cross", "params": {"fast": 2, "slow": 4},
                             "group": 0} for s in symbols],
                   risk_profiles={}, models={}, feature_version="f", code_version="c",
                   data_versions={s: f"d-{s}" for s in symbols}), tmp_path)
    found = ArtefactWatcher(tmp_path)
    assert found.poll()
    return found


def _signals(watcher, btc, eth=FALLING):
    def bars(closes):
        closes = np.asarray(closes, dtype=float)
        stamps = np.arange(len(closes), dtype=np.int64) * HOUR
        return Bars(stamps, closes, closes * 1.01, closes * 0.99, closes, np.ones(len(closes)))

    data = {"BTC/USDT": SymbolBars("BTC/USDT", bars(btc), True),
            "ETH/USDT": SymbolBars("ETH/USDT", bars(eth), True)}
    return compute_signals(watcher.current, data, "gbm")[0]


def _book(n_users):
    book = Book()
    book.set_symbols(["BTC/USDT", "ETH/USDT"])
    book.set_users([(f"u{i}", Sizing("balanced", 0.1, 1.0, 1.0, 1_000.0, 0.05, 0.2)) for i in range(n_users)])
    book.cash[:] = 10_000.0
    return book


def _engine(tmp_path):
    return connect(f"sqlite:///{tmp_path / 'runtime.db'}")


def _user(engine, user_id):
    from xray_runtime.crypto import KeyVault, generate_key

    UserStore(engine, KeyVault(generate_key())).add(user_id, user_id, "key-" + user_id, "secret-" + user_id)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, tmp_path):
    """A fresh runtime database: SQLite in tmp_path, or a Postgres database made for this test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'runtime.db'}"
        return
    import os
    import uuid

    import psycopg

    admin = os.environ.get("XRAY_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
    name = f"xray_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as con:
            con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_users_request_is_stored_and_survives_a_restart(database_url):
    engine = connect(database_url)
    for user_id in ("alice", "bob", "carol"):
        _user(engine, user_id)
    control = UserControl(engine)
    assert control.get("alice").state == "active" and control.not_active() == {}
    control.pause("alice", "telegram")
    control.stop("bob", "web")
    control.pause("carol", "cli")
    control.resume("carol", "cli")
    engine.dispose()
    second = connect(database_url)
    again = UserControl(second)  # a new process on the same database
    states = {user_id: c.state for user_id, c in again.not_active().items()}
    assert states == {"alice": "paused", "bob": "stopped"}
    bob = again.get("bob")
    assert bob.flatten and not bob.entries_allowed and bob.changed_by == "web" and bob.changed_ms > 0
    assert again.get("carol").entries_allowed and not again.get("carol").flatten
    with pytest.raises(UnknownUserError, match="no user 'mallory'"):
        again.pause("mallory", "telegram")
    assert "mallory" not in again.not_active()
    second.dispose()


def test_masks_follow_the_book_order(tmp_path):
    engine = _engine(tmp_path)
    for user_id in ("u0", "u1", "u2"):
        _user(engine, user_id)
    control = UserControl(engine)
    control.pause("u0", "t")
    control.stop("u2", "t")
    paused, flatten = masks(["u0", "u1", "u2"], control.not_active())
    assert paused.tolist() == [True, False, True] and flatten.tolist() == [False, False, True]


def test_paused_users_enter_nothing_but_exit_and_stopped_users_flatten(watcher):
    book = _book(3)
    eth, btc = book.symbol_index["ETH/USDT"], book.symbol_index["BTC/USDT"]
    book.position[:, eth] = [2.0, 0.0, 2.0]  # ETH's target is 0 this bar: holders exit
    book.position[:, btc] = [0.0, 0.0, 3.0]  # BTC crosses up: an entry for whoever may enter
    book.mark({"BTC/USDT": 8.0, "ETH/USDT": 3.0})
    none = np.zeros(3, dtype=np.int8)
    paused = np.array([True, False, True])
    flatten = np.array([False, False, True])
    decisions = decide(book, _signals(watcher, RISING_AFTER_FALL), watcher.current, RULES, none,
                       np.zeros(3, dtype=bool), paused=paused, flatten=flatten)
    got = {book.user_ids[i]: sorted((x.symbol, x.side, x.amount, x.intent) for x in v)
           for i, v in decisions.intents.items()}
    assert got == {
        "u0": [("ETH/USDT", Side.SELL, 2.0, "exit")],  # paused: the exit still happens, no BTC entry
        "u1": [("BTC/USDT", Side.BUY, pytest.approx(10_000 * 0.1 / 8.0), "enter")],
        "u2": [("BTC/USDT", Side.SELL, 3.0, "stop"), ("ETH/USDT", Side.SELL, 2.0, "stop")],  # all sold
    }


async def test_the_trading_loop_honours_pause_and_stop(runtime_env):
    settings, emulator, admin = runtime_env
    store, _keys = add_users(settings, admin, 3)
    control = UserControl(store.engine)
    control.pause("user1", "test")
    service = await start_service(settings, emulator.base_url)
    journal = service.parts.journal
    try:
        first, held = [], {}
        for _ in range(30):  # until user0 holds something, so the stop has a position to flatten
            first += [o for r in await run_bars(service, admin, 1) for o in r.orders]
            held = await asyncio.to_thread(journal.positions, ["user0"])
            if any(amount > 0 for amount in held.get("user0", {}).values()):
                break
        control.stop("user0", "test")
        second = [o for r in await run_bars(service, admin, 4) for o in r.orders]
        after = await asyncio.to_thread(journal.positions, ["user0"])
    finally:
        await service.stop()
    assert {o.user_id for o in first if o.side.value == "buy"} >= {"user0"}
    assert not [o for o in first + second if o.user_id == "user1"], "user1 is paused: no entries"
    user0 = [o for o in second if o.user_id == "user0"]
    assert user0 and {(o.side.value, o.intent) for o in user0} == {("sell", "stop")}
    for symbol, amount in held["user0"].items():  # sold down to dust under the amount step
        assert after["user0"][symbol] < max(amount, 0.0) * 0.01 + 1e-6, (held, after)
    assert store.get("user0").status == "active"  # stopped, not disabled: /resume trades again
