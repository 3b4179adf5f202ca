"""Orders still open from earlier bars reach the book before the next decision (issue: under the load
test's fault mix, 30% of orders were rejected "Insufficient position": an exit whose sell filled
partially was sold again on the next bar, while its rest had traded), and an order a fault left unknown
is sent again once its earlier sends are dead, rather than given up."""

from __future__ import annotations

import asyncio

from cryptography.fernet import Fernet
from order_path_support import MINUTE, bar_of, intents, make_order_path, sqlite_journal
from service_support import add_users, fast_bundle

from xray_core.bundle import publish
from xray_core.settings import ExchangeSettings
from xray_core.trading.orders import OrderStatus
from xray_runtime.components import Components
from xray_runtime.order_state import LocalOrderState
from xray_runtime.reconcile import audit
from xray_runtime.service import TradingService
from xray_runtime.settings import RuntimeSettings, TelegramSettings


async def test_partial_fills_reach_the_book_before_the_next_decision(tmp_path, fixed_emulator, fixed_admin):
    settings = RuntimeSettings(database_url=f"sqlite:///{tmp_path / 'runtime.db'}", bundle_dir=tmp_path / "b",
                               fernet_key=Fernet.generate_key().decode(), paper_url=fixed_emulator.base_url,
                               http_port=0, reconcile_every_s=3600)  # no reconciliation between the bars
    publish(fast_bundle(), settings.bundle_dir)
    _store, keys = add_users(settings, fixed_admin, 3)
    parts = Components.build(settings, TelegramSettings(), ExchangeSettings(url=fixed_emulator.base_url))
    service = TradingService(parts)
    await service.start()
    fixed_admin.set_faults("partial_fill:ratio=0.4")  # every order fills 40% now, the rest on the next bar
    try:
        for _ in range(14):
            await asyncio.to_thread(fixed_admin.advance, MINUTE)
            await service.step()
        fixed_admin.set_faults("")
        await asyncio.to_thread(fixed_admin.advance, MINUTE)
        await service.follow_open_orders()
    finally:
        await service.stop()
    orders = [o for r in service.reports for o in r.orders]
    assert {o.side.value for o in orders} == {"buy", "sell"}
    assert any(o.status is OrderStatus.PARTIALLY_FILLED for o in orders)  # the fault did bite
    assert [o.reason for o in orders if o.status is OrderStatus.REJECTED] == []
    for user_id, key in keys.items():  # no reconciliation ran: the service's own records are exact
        result = audit(fixed_admin.account(key), parts.journal, user_id)
        assert result.clean, result.details


async def test_an_order_a_fault_left_unknown_is_sent_again_once_its_sends_are_dead(emulator, admin, tmp_path):
    path = make_order_path(emulator, admin, sqlite_journal(tmp_path), LocalOrderState(), max_attempts=1)
    try:
        account = path.add_user("una")
        admin.set_faults("error5xx:path=/api/v3/order:method=POST:count=3")  # the exchange never sees it
        bar = bar_of(emulator)
        [order] = await path.executor.submit(account, intents("una", bar, [("BTC/USDT", "buy", 0.01)]))
        admin.set_faults("")
        # Its one attempt failed, and was waited out (recvWindow + skew) and looked up: never arrived.
        assert order.status is OrderStatus.SUBMITTED and path.truth("una")["orders"] == []
        [looked] = await path.executor.follow({"una": account}, [order], resend=False)
        assert looked.status is OrderStatus.SUBMITTED and path.truth("una")["orders"] == []  # asked only
        [settled] = await path.executor.follow({"una": account}, [order])
        assert settled.status is OrderStatus.FILLED and len(path.truth("una")["orders"]) == 1
        assert path.audit("una").clean
    finally:
        await path.pool.close()
