"""Pause, resume and stop: one row per user in the runtime's SQL, kept across a restart, honoured by the
vectorised decision and by the trading loop against the emulator."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from service_support import add_users, run_bars, start_service
from test_decisions import RISING_AFTER_FALL, RULES, _book, _signals, watcher  # noqa: F401 (fixture)

from xray_core.trading.orders import Side
from xray_runtime.db import connect
from xray_runtime.decide import decide
from xray_runtime.user_control import UserControl, masks
from xray_runtime.users import UnknownUserError, UserStore


def _engine(tmp_path):
    return connect(f"sqlite:///{tmp_path / 'runtime.db'}")


def _user(engine, user_id):
    from xray_runtime.crypto import KeyVault, generate_key

    UserStore(engine, KeyVault(generate_key())).add(user_id, user_id, "key-" + user_id, "secret-" + user_id)


def test_a_users_request_is_stored_and_survives_a_restart(tmp_path):
    engine = _engine(tmp_path)
    for user_id in ("alice", "bob", "carol"):
        _user(engine, user_id)
    control = UserControl(engine)
    assert control.get("alice").state == "active" and control.not_active() == {}
    control.pause("alice", "telegram")
    control.stop("bob", "web")
    control.pause("carol", "cli")
    control.resume("carol", "cli")
    engine.dispose()
    again = UserControl(_engine(tmp_path))  # a new process on the same database
    states = {user_id: c.state for user_id, c in again.not_active().items()}
    assert states == {"alice": "paused", "bob": "stopped"}
    bob = again.get("bob")
    assert bob.flatten and not bob.entries_allowed and bob.changed_by == "web" and bob.changed_ms > 0
    assert again.get("carol").entries_allowed and not again.get("carol").flatten
    with pytest.raises(UnknownUserError, match="no user 'mallory'"):
        again.pause("mallory", "telegram")
    assert "mallory" not in again.not_active()


def test_masks_follow_the_book_order(tmp_path):
    engine = _engine(tmp_path)
    for user_id in ("u0", "u1", "u2"):
        _user(engine, user_id)
    control = UserControl(engine)
    control.pause("u0", "t")
    control.stop("u2", "t")
    paused, flatten = masks(["u0", "u1", "u2"], control.not_active())
    assert paused.tolist() == [True, False, True] and flatten.tolist() == [False, False, True]


def test_paused_users_enter_nothing_but_exit_and_stopped_users_flatten(watcher):  # noqa: F811
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
