"""Risk that survives, end to end against the emulator: a killed user is flattened on every tick until
flat and only then disabled (a failed tick or a rejected sell is not the end of it); a held symbol is
priced at its last known close and sold when the bundle drops it, never valued at zero; the kill flag,
the day's opening equity and the peak survive a restart; an exit sells only what X-Ray bought."""

import asyncio
import dataclasses
import math

import numpy as np
import pytest
from service_support import MINUTE, SYMBOLS, add_users, fast_bundle, start_service, store_args

from xray_core.bundle import publish
from xray_core.candles.bars import Bars
from xray_core.risk.limits.drawdown import DRAWDOWN_KILL
from xray_core.trading.orders import OrderStatus
from xray_runtime.market import SymbolBars
from xray_runtime.users import RiskSettings


async def _bar(service, admin):
    await asyncio.to_thread(admin.advance, MINUTE)
    return await service.safe_step()


def _base_total(admin, key, symbol):
    held = admin.account(key)["balances"].get(symbol.split("/")[0])
    return float(held["free"]) + float(held["locked"]) if held else 0.0


def _dust(service, admin, key, symbol):
    """Whether what the account holds of `symbol`'s base is too little to sell (under the market's
    amount step or minimum order, at the last trade's price)."""
    total, rule = _base_total(admin, key, symbol), service.rules[symbol]
    price = float(admin.account(key)["trades"][-1]["price"])
    return total < rule.amount_step or total * price < rule.min_cost


def _held(service, user_id):
    """Symbols the user holds at least one amount step of."""
    book = service.parts.book
    i = book.user_index[user_id]
    return [s for s, j in book.symbol_index.items() if book.position[i, j] >= service.rules[s].amount_step]


async def _until_holding(service, admin, user_id, bars=30):
    for _ in range(bars):
        await _bar(service, admin)
        if _held(service, user_id):
            return _held(service, user_id)
    raise AssertionError(f"{user_id} never entered a position")


@pytest.mark.parametrize("trouble", ["tick_fails", "sell_rejected"])
async def test_a_killed_user_is_flattened_on_every_tick_until_flat_then_disabled(runtime_env, trouble):
    settings, emulator, admin = runtime_env
    store, keys = add_users(settings, admin, 1)
    # Any dip under the peak kills: the first fee or adverse move after an entry.
    store.update_risk("user0", RiskSettings(trade_percentage=0.2, max_drawdown=1e-6))
    service = await start_service(settings, emulator.base_url)
    executor = service.parts.executor
    send = executor.submit
    troubled = []

    async def submit(account, intents, **options):
        if any(i.intent == "kill" for i in intents) and not troubled:
            troubled.append(intents)
            if trouble == "tick_fails":
                raise OSError("the database went away mid-tick")  # a dependency outage: the step fails
            # Too big to fill: the exchange refuses the kill sell (insufficient balance).
            intents = [dataclasses.replace(i, amount=i.amount * 1000) if i.intent == "kill" else i
                       for i in intents]
        return await send(account, intents, **options)

    executor.submit = submit
    try:
        for _ in range(40):
            await _bar(service, admin)
            if store.get("user0").status == "disabled":
                break
    finally:
        await service.stop()
    assert troubled, "the kill switch never fired"
    user0 = store.get("user0")
    assert user0.status == "disabled" and user0.disabled_reason == DRAWDOWN_KILL.reason
    orders = service.parts.journal.orders("user0")
    kills = [o for o in orders if o.intent == "kill"]
    assert any(o.status is OrderStatus.FILLED for o in kills), [(o.status, o.reason) for o in kills]
    if trouble == "sell_rejected":
        assert any(o.status is OrderStatus.REJECTED for o in kills)
    for symbol in SYMBOLS:  # flat: nothing X-Ray bought is left on the exchange but dust
        assert _dust(service, admin, keys["user0"], symbol), symbol
    first_kill = min(o.bar_ms for o in kills)
    assert not [o for o in orders if o.intent == "enter" and o.bar_ms >= first_kill]


async def test_a_symbol_the_bundle_drops_is_priced_and_sold_not_valued_at_zero(runtime_env):
    settings, emulator, admin = runtime_env
    store, keys = add_users(settings, admin, 1)
    # Most of the equity in one position: valued at zero, it would be a 90% drawdown (a kill).
    store.update_risk("user0", RiskSettings(trade_percentage=0.9, margin_multiplier=1.0, max_drawdown=0.3))
    service = await start_service(settings, emulator.base_url)
    try:
        dropped = (await _until_holding(service, admin, "user0"))[0]
        publish(fast_bundle([s for s in SYMBOLS if s != dropped]), settings.bundle_dir)  # hot reload
        for _ in range(3):
            await _bar(service, admin)
    finally:
        await service.stop()
    assert store.get("user0").status == "active"  # no drawdown kill from a price of zero
    assert _dust(service, admin, keys["user0"], dropped)  # sold, not left unmanaged
    sold = [o for o in service.parts.journal.orders("user0", dropped) if o.intent == "drop"]
    assert sold and all(o.status is OrderStatus.FILLED and o.side.value == "sell" for o in sold)
    assert sold[0].lineage.strategy == "drop"
    assert not service.risk.state_of("user0").killed


async def test_a_null_close_keeps_the_last_known_price(runtime_env):
    settings, emulator, admin = runtime_env
    store, _keys = add_users(settings, admin, 1)
    store.update_risk("user0", RiskSettings(trade_percentage=0.9, margin_multiplier=1.0, max_drawdown=0.3))
    service = await start_service(settings, emulator.base_url)
    try:
        held = await _until_holding(service, admin, "user0")
        windows = await service.parts.candle_windows("1m")
        refresh = windows.refresh

        async def null_close(symbols, now_ms):  # the feed answers a null close for the held symbols
            data = await refresh(symbols, now_ms)
            for symbol in held:
                b = data[symbol].bars
                close = b.close.copy()
                close[-1] = np.nan
                data[symbol] = SymbolBars(symbol, Bars(b.timestamp, b.open, b.high, b.low, close, b.volume),
                                          data[symbol].fresh)
            return data

        windows.refresh = null_close
        await _bar(service, admin)
    finally:
        await service.stop()
    assert store.get("user0").status == "active"  # no drawdown kill from a price of zero
    state = service.risk.state_of("user0")
    assert not state.killed and math.isfinite(state.peak) and math.isfinite(state.day_open)


async def test_the_kill_flag_day_open_and_peak_survive_a_restart(runtime_env):
    settings, emulator, admin = runtime_env
    store, _keys = add_users(settings, admin, 2)
    store.update_risk("user0", RiskSettings(trade_percentage=0.2, max_drawdown=1e-6))
    first = await start_service(settings, emulator.base_url)
    send = first.parts.executor.submit
    died = []

    async def die_at_the_kill(account, intents, **options):  # the process dies as it is about to flatten
        if any(i.intent == "kill" for i in intents):
            died.append(intents)
            raise OSError("killed")
        return await send(account, intents, **options)

    first.parts.executor.submit = die_at_the_kill
    try:
        for _ in range(40):
            await _bar(first, admin)
            if died:
                break
    finally:
        await first.stop()
    assert died and store.get("user0").status == "active"
    # A later change of the limit does not revive a user whose kill switch fired.
    store.update_risk("user0", RiskSettings(trade_percentage=0.2, max_drawdown=0.9))
    second = await start_service(settings, emulator.base_url)
    try:
        for _ in range(10):
            await _bar(second, admin)
            if store.get("user0").status == "disabled":
                break
    finally:
        await second.stop()
    user0 = store.get("user0")
    assert user0.status == "disabled" and user0.disabled_reason == DRAWDOWN_KILL.reason
    kills = [o for o in second.parts.journal.orders("user0") if o.intent == "kill"]
    assert any(o.status is OrderStatus.FILLED for o in kills)
    before, after = first.risk.state_of("user1"), second.risk.state_of("user1")
    assert after.day == before.day and after.day_open == before.day_open  # the same day, opened once
    assert after.peak >= before.peak

    from xray_runtime.risk_store import RiskStore

    stored = RiskStore(second.parts.engine).snapshot()
    assert stored["user0"].killed and stored["user1"].day_open == before.day_open


async def test_an_exit_sells_only_what_x_ray_bought(runtime_env):
    settings, emulator, admin = runtime_env

    from xray_runtime.users import UserStore

    store = UserStore(*store_args(settings))
    key, secret = admin.create_account({"USDT": "1000", "ETH": "5", "BTC": "0.1"})  # coins held before
    store.add("user0", "Holder", key, secret, risk=RiskSettings(trade_percentage=0.2))
    service = await start_service(settings, emulator.base_url)
    try:
        for _ in range(16):
            await _bar(service, admin)
        orders = service.parts.journal.orders("user0")
    finally:
        await service.stop()
    sells = [o for o in orders if o.side.value == "sell" and o.symbol in ("ETH/USDT", "BTC/USDT")]
    assert sells, "no exit on the symbols the user already held coins of"
    assert _base_total(admin, key, "ETH/USDT") >= 5 * (1 - 1e-9)
    assert _base_total(admin, key, "BTC/USDT") >= 0.1 * (1 - 1e-9)
