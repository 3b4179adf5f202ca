"""The trading loop's upkeep (xray_runtime.upkeep): reconciliation in the background without holding up
a bar, and consistent with execution; markets read again (precision changes, new listings); and an
exchange that refuses every API key at once is an outage, not a reason to disable every user."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from service_support import MINUTE, add_users, start_service

from xray_runtime.exchange_pool import ExchangePool
from xray_runtime.reconcile import audit
from xray_sim.exchange import shapes


async def _bars_until(service, admin, done, limit: int = 30):
    """Step bars until `done(report)`; the reports seen."""
    reports = []
    for _ in range(limit):
        await asyncio.to_thread(admin.advance, MINUTE)
        report = await service.step()
        if report is not None:
            reports.append(report)
            if done(report):
                return reports
    pytest.fail("the condition never came about")


async def test_a_slow_reconciliation_does_not_hold_up_the_bar(runtime_env):
    """Reconciliation used to run inside the step: a slow exchange held every user's next bar."""
    settings, emulator, admin = runtime_env
    settings = settings.model_copy(update={"reconcile_every_s": 0.001})
    add_users(settings, admin, 2)
    service = await start_service(settings, emulator.base_url)
    release, entered = asyncio.Event(), asyncio.Event()
    reconcile_users = service.parts.reconcile_users

    async def slow(user_ids, **options):
        entered.set()
        await release.wait()  # the exchange takes its time
        return await reconcile_users(user_ids, **options)

    service.parts.reconcile_users = slow
    try:
        await asyncio.to_thread(admin.advance, MINUTE)
        step = asyncio.create_task(service.step())
        done, _ = await asyncio.wait({step}, timeout=120)  # not a speed limit: a hang ends the test
        assert done, "the step waited for the reconciliation"
        assert entered.is_set() and service.reconciling.running
        await asyncio.to_thread(admin.advance, MINUTE)
        assert await asyncio.wait_for(service.step(), 120) is not None  # another bar, still running
        release.set()
        await service.reconciling.wait()
        assert service.reconciling.runs == 1 and service.reconciling.last_error is None
    finally:
        release.set()
        await service.stop()


async def test_background_reconciliation_and_trading_agree_with_the_exchange(runtime_env):
    """Reconciling while bars are traded: the book ends equal to the exchange's balances (no fill
    counted twice or lost), and the journal agrees with the exchange."""
    settings, emulator, admin = runtime_env
    settings = settings.model_copy(update={"reconcile_every_s": 0.001})
    _store, keys = add_users(settings, admin, 3)
    service = await start_service(settings, emulator.base_url)
    try:
        reports = []
        for _ in range(12):
            await asyncio.to_thread(admin.advance, MINUTE)
            report = await service.step()
            reports.append(report)
            await asyncio.sleep(0)  # let the background pass get going between bars
        await service.reconciling.wait()
        assert service.reconciling.runs >= 2, "reconciliation ran alongside the bars"
        assert any(r and r.orders for r in reports), "the users traded"
        book = service.parts.book
        for user_id, key in keys.items():
            truth = admin.account(key)
            balances = {a: float(v["free"]) + float(v["locked"]) for a, v in truth["balances"].items()}
            i = book.user_index[user_id]
            assert book.cash[i] == pytest.approx(balances.get("USDT", 0.0), abs=1e-6)
            for symbol, j in book.symbol_index.items():
                assert book.position[i, j] == pytest.approx(balances.get(symbol.split("/")[0], 0.0), abs=1e-9)
            assert audit(truth, service.parts.journal, user_id).clean
    finally:
        await service.stop()


async def test_an_exchange_refusing_every_key_at_once_disables_nobody(runtime_env):
    """One exchange-side auth outage used to disable every user, for good."""
    settings, emulator, admin = runtime_env
    store, keys = add_users(settings, admin, 3)
    service = await start_service(settings, emulator.base_url)
    accounts = [emulator.state.accounts.get(key) for key in keys.values()]
    secrets = [account.secret for account in accounts]
    try:
        def break_keys() -> None:
            for account in accounts:
                account.secret = "not-the-secret-" + account.secret  # every signature now fails

        emulator.call(break_keys)
        reports = await _bars_until(service, admin, lambda r: len({o.user_id for o in r.orders
                                                                   if "API key refused" in o.reason}) == 3)
        assert all(store.get(user_id).status == "active" for user_id in keys), "nobody is disabled"
        assert set(service.parts.roster.users) == set(keys)
        health = service.health()
        assert health["status"] == "degraded" and "refused 3 API keys" in health["venue_problem"]

        def mend_keys() -> None:
            for account, secret in zip(accounts, secrets, strict=True):
                account.secret = secret

        emulator.call(mend_keys)
        reports += await _bars_until(service, admin,
                                     lambda r: any(o.status.value == "filled" for o in r.orders))
        assert service.health()["venue_problem"] is None
    finally:
        await service.stop()
    for user_id, key in keys.items():
        assert audit(admin.account(key), service.parts.journal, user_id).clean


async def test_markets_are_read_again_and_a_changed_precision_is_used(emulator, admin):
    """Markets were loaded once per process: a new listing or a changed step was never seen."""
    pool = ExchangePool()
    try:
        before = (await pool.markets("mexc", emulator.base_url))["BTC/USDT"]

        def change() -> None:  # the venue changes BTC/USDT's amount step (as MEXC does at times)
            state = emulator.state
            i = state.market._index["BTC/USDT"]
            specs = list(state.market.specs)
            specs[i] = dataclasses.replace(specs[i], amount_decimals=specs[i].amount_decimals - 2)
            state.market.specs = tuple(specs)
            state._static_info["BTCUSDT"] = shapes.exchange_info_symbol(specs[i], trading=True)

        emulator.call(change)
        assert (await pool.markets("mexc", emulator.base_url))["BTC/USDT"] == before  # cached
        await pool.refresh_markets()
        after = (await pool.markets("mexc", emulator.base_url))["BTC/USDT"]
        assert after.amount_step == pytest.approx(before.amount_step * 100)
        assert pool.stats.markets_loaded == 2
    finally:
        await pool.close()


async def test_the_service_reads_the_markets_again_when_due(runtime_env):
    settings, emulator, admin = runtime_env
    settings = settings.model_copy(update={"markets_refresh_s": 0.001})
    add_users(settings, admin, 1)
    service = await start_service(settings, emulator.base_url)
    try:
        loaded = service.parts.pool.stats.markets_loaded
        await _bars_until(service, admin, lambda r: True, limit=3)
        await service.markets.wait()
        assert service.markets.runs >= 1 and service.parts.pool.stats.markets_loaded > loaded
    finally:
        await service.stop()
