"""The trading service end to end through real ccxt against the emulator: promoted bundle in, orders
out for every user, each order carrying its lineage; a user with wrong keys is disabled with a clear
reason while the others keep trading; afterwards the exchange and the journal agree exactly."""

import asyncio
import json
import logging

import aiohttp
from service_support import MINUTE, add_users, fast_bundle, run_bars, start_service

from xray_core.bundle import publish
from xray_core.settings import ExchangeSettings
from xray_runtime.components import Components
from xray_runtime.reconcile import audit
from xray_runtime.service import TradingService
from xray_runtime.settings import TelegramSettings
from xray_runtime.users import RiskSettings


async def test_every_user_trades_the_promoted_bundle_and_the_exchange_agrees(runtime_env):
    settings, emulator, admin = runtime_env
    _store, keys = add_users(settings, admin, 3)
    service = await start_service(settings, emulator.base_url)
    try:
        reports = await run_bars(service, admin, 12)
        await service.reconcile()
    finally:
        await service.stop()
    orders = [o for r in reports for o in r.orders]
    assert {o.user_id for o in orders} == {"user0", "user1", "user2"}, "every user traded"
    assert {o.side.value for o in orders} == {"buy", "sell"}
    bundle_version = fast_bundle().version
    for order in orders:  # lineage: what each order was decided from
        assert order.lineage.bundle_version == bundle_version
        assert order.lineage.strategy == "sma_cross"
        assert json.loads(order.lineage.params) == {"fast": 2, "slow": 3}
        assert order.lineage.data_version.startswith(f"data-{order.symbol}@")
    for user_id, key in keys.items():
        result = audit(admin.account(key), service.parts.journal, user_id)
        assert result.clean, result.details
    # Signals are per symbol, not per user: every user's order on a bar has the same lineage.
    by_bar = {}
    for order in orders:
        by_bar.setdefault((order.symbol, order.bar_ms, order.side), set()).add(order.lineage)
    assert all(len(lineages) == 1 for lineages in by_bar.values())


async def test_a_user_with_wrong_keys_is_disabled_with_a_reason_and_the_others_keep_trading(
        runtime_env, caplog):
    settings, emulator, admin = runtime_env
    caplog.set_level(logging.DEBUG)
    store, _keys = add_users(settings, admin, 2)
    store.add("mallory", "Wrong keys", "mx0notarealkey000000000", "not-the-secret-at-all-0000")
    service = await start_service(settings, emulator.base_url)
    try:
        reports = await run_bars(service, admin, 10)
    finally:
        await service.stop()
    secrets = ["mx0notarealkey000000000", "not-the-secret-at-all-0000"]
    secrets.append(settings.fernet_key.get_secret_value())
    for user_id in ("user0", "user1"):
        credentials = store.credentials(user_id)
        secrets += [credentials.api_key.get_secret_value(), credentials.api_secret.get_secret_value()]
    # Everything logged but the test's own admin calls (urllib3 logs their URLs, which name keys).
    records = [r for r in caplog.records if not r.name.startswith("urllib3")]
    leaks = [(r.name, r.getMessage()[:200]) for r in records for secret in secrets
             if secret in r.getMessage() + str(vars(r))]
    assert records and not leaks, leaks
    mallory = store.get("mallory")
    assert mallory.status == "disabled"
    assert "API key" in mallory.disabled_reason and "mx0notarealkey" not in mallory.disabled_reason
    traded = {o.user_id for r in reports for o in r.orders}
    assert traded == {"user0", "user1"}


async def test_health_and_metrics_endpoints(runtime_env):
    settings, emulator, admin = runtime_env
    add_users(settings, admin, 1)
    service = await start_service(settings, emulator.base_url)
    try:
        await run_bars(service, admin, 2)
        base = f"http://127.0.0.1:{service.parts.http_port}"
        async with aiohttp.ClientSession() as http:
            async with http.get(base + "/health") as response:
                health = await response.json()
                assert response.status == 200
            async with http.get(base + "/metrics") as response:
                metrics = await response.text()
    finally:
        await service.stop()
    assert health["status"] == "ok" and health["bundle"] == fast_bundle().version and health["users"] == 1
    for name in ("xray_runtime_ticks_total", "xray_runtime_decision_latency_seconds_bucket",
                 "xray_runtime_rate_limit_waits_total", "xray_runtime_reconciliation_diffs"):
        assert name in metrics
    assert "xray_runtime_ticks_total 2.0" in metrics


async def test_fills_and_the_daily_summary_reach_each_users_telegram_chat(runtime_env):
    from xray_sim.telegram.fake_bot import start_fake_bot

    settings, emulator, admin = runtime_env
    store, _ = add_users(settings, admin, 2)
    token = "123456:fake-token-for-tests"
    with start_fake_bot(token) as bot:
        from xray_runtime.users import users_table

        with store.engine.begin() as con:  # user0 has a chat, user1 none
            chat = users_table.update().where(users_table.c.user_id == "user0").values(telegram_chat_id=42)
            con.execute(chat)
        parts = Components.build(settings, TelegramSettings(bot_token=token, api_url=bot.api_url),
                                 ExchangeSettings(url=emulator.base_url))
        service = TradingService(parts)
        await service.start()
        try:
            reports = await run_bars(service, admin, 10)
            now = admin.advance(0)
            await asyncio.to_thread(admin.advance, 86_400_000 - now % 86_400_000 + MINUTE)  # past 00:00 UTC
            await service.step()
        finally:
            await service.stop()  # drains the notification queue
        texts = [m.plain for m in bot.messages(42)]
    fills = [o for r in reports for o in r.orders if o.user_id == "user0" and o.filled > 0]
    assert fills and any("BUY" in text or "fills" in text for text in texts)
    assert any("Daily summary" in text and "Equity" in text for text in texts)
    assert {m.chat_id for m in bot.messages()} == {42}  # user1 has no chat: nothing sent for them


async def test_a_halted_listing_is_skipped_with_its_reason_while_the_others_trade(runtime_env):
    settings, emulator, admin = runtime_env
    publish(fast_bundle(["BTC/USDT", "SRM/USDT", "ETH/USDT"]), settings.bundle_dir)  # SRM's listing stopped
    add_users(settings, admin, 2)
    service = await start_service(settings, emulator.base_url)
    try:
        reports = await run_bars(service, admin, 16)
        health = service.health()
    finally:
        await service.stop()
    assert all("SRM/USDT" in r.skipped for r in reports)
    assert "stale data" in reports[-1].skipped["SRM/USDT"]
    assert health["skipped_symbols"] == reports[-1].skipped
    traded = {o.symbol for r in reports for o in r.orders}
    assert traded and "SRM/USDT" not in traded, [(r.signals, r.intents, r.failures) for r in reports]


async def test_a_user_past_their_drawdown_is_flattened_and_disabled_with_the_kill_switchs_reason(runtime_env):
    from xray_core.risk.limits.drawdown import DRAWDOWN_KILL

    settings, emulator, admin = runtime_env
    store, _keys = add_users(settings, admin, 2)
    # user0's limit is any dip under its peak: the first fee or adverse move after an entry kills it.
    store.update_risk("user0", RiskSettings(trade_percentage=0.2, max_drawdown=1e-6))
    service = await start_service(settings, emulator.base_url)
    try:
        reports = await run_bars(service, admin, 16)
    finally:
        await service.stop()
    user0 = store.get("user0")
    assert user0.status == "disabled" and user0.disabled_reason == DRAWDOWN_KILL.reason
    orders = [o for r in reports for o in r.orders]
    kills = [o for o in orders if o.intent == "kill"]
    assert kills and {o.user_id for o in kills} == {"user0"} and {o.side.value for o in kills} == {"sell"}
    last_kill = max(o.bar_ms for o in kills)
    assert not [o for o in orders if o.user_id == "user0" and o.bar_ms > last_kill]  # stopped trading
    assert {o.user_id for o in orders if o.bar_ms > last_kill} == {"user1"}  # the other carries on
    assert all(o.filled == o.amount for o in kills)  # the positions were closed


async def test_a_start_while_the_exchange_answers_429_does_not_kill_the_service(runtime_env):
    """Market data refused with 429s during start-up (a chaos run crashed a process this way): the
    warm-up is only a head start, so the service starts cold and trades once the exchange answers."""
    settings, emulator, admin = runtime_env
    add_users(settings, admin, 1)
    admin.set_faults("burst429:p=1:n=1")  # every request, market data and account alike
    try:
        service = await start_service(settings, emulator.base_url)
    finally:
        admin.set_faults("")
    try:
        cold = await run_bars(service, admin, 2)  # ticks run; balances unread yet: nothing is sent
        health = service.health()
        await service.reconcile()  # the next reconciliation reads them
        warm = await run_bars(service, admin, 4)
    finally:
        await service.stop()
    assert len(cold) == 2 and health["status"] == "ok", service.last_error
    assert not any(report.orders for report in cold)
    assert any(report.orders for report in warm)
