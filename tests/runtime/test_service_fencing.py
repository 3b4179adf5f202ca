"""The service under fencing: a user whose lock another runtime process holds is not acted for, and
that bar is not counted as done for them — it is decided again, and traded once the lock is free.

(It used to count as settled: the user's orders of that bar were never sent by anyone.)"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from cryptography.fernet import Fernet
from service_support import MINUTE, fast_bundle, start_service, store_args
from shard_support import REDIS_URL, database_url, redis_prefix  # noqa: F401  (fixtures)

from xray_core.bundle import publish
from xray_core.trading.orders import OrderStatus
from xray_runtime.reconcile import audit
from xray_runtime.redis_conn import connect
from xray_runtime.settings import RuntimeSettings
from xray_runtime.sharding import HashRing, Membership
from xray_runtime.users import RiskSettings, UserStore

pytestmark = [pytest.mark.redis, pytest.mark.postgres]


async def test_a_user_held_by_another_process_is_left_unsettled_and_traded_once_free(
        database_url, redis_prefix, tmp_path, fixed_emulator, fixed_admin):  # noqa: F811
    emulator, admin = fixed_emulator, fixed_admin
    settings = RuntimeSettings(
        database_url=database_url, redis_url=REDIS_URL, redis_prefix=redis_prefix, lease_s=3.0,
        fernet_key=Fernet.generate_key().decode(), bundle_dir=tmp_path / "bundles",
        paper_url=emulator.base_url, http_port=0, reconcile_every_s=3600, process_id="runtime-a",
    )
    publish(fast_bundle(), settings.bundle_dir)
    # Two users that the ring of {runtime-a, runtime-b} gives to runtime-a.
    ring = HashRing(["runtime-a", "runtime-b"])
    candidates = (f"user-{uuid.uuid4().hex[:8]}" for _ in range(200))
    ids = [u for u in candidates if ring.owner(u) == "runtime-a"][:2]
    store = UserStore(*store_args(settings))
    keys = {}
    for user_id in ids:
        key, secret = admin.create_account({"USDT": "1000"})
        store.add(user_id, user_id, key, secret, risk=RiskSettings(trade_percentage=0.2))
        keys[user_id] = key
    store.engine.dispose()
    held, free = ids
    # runtime-b: a live process that holds `held`'s lock (as during a hand-over from it).
    other_settings = settings.model_copy(update={"process_id": "runtime-b"})
    other = Membership(connect(other_settings), other_settings, "runtime-b")
    other.start()
    service = await start_service(settings, emulator.base_url)
    lock = other.user_lock(held, ttl_s=60)
    try:
        await service.refresh_users()
        assert set(service.parts.roster.users) == set(ids)
        assert await lock.__aenter__()
        for _ in range(30):  # bars until both users decide an order on the same bar
            await asyncio.to_thread(admin.advance, MINUTE)
            report = await service.step()
            if report and {o.user_id for o in report.orders} == set(ids):
                break
        else:
            pytest.fail("no bar on which both users traded")
        refused = [o for o in report.orders if o.user_id == held]
        assert all(o.status is OrderStatus.SUBMITTED and "runtime-b holds" in o.reason for o in refused)
        assert all(o.status is OrderStatus.FILLED for o in report.orders if o.user_id == free)
        assert service.last_bar_ms is None or service.last_bar_ms < report.bar_ms, "the bar counted as done"
        refused_ids = {o.client_order_id for o in refused}
        on_exchange = [o for o in admin.account(keys[held])["orders"] if o["clientOrderId"] in refused_ids]
        assert refused and not on_exchange

        await lock.__aexit__(None, None, None)  # runtime-b lets go: the same bar, decided again
        again = await service.step()
        assert again is not None and again.bar_ms == report.bar_ms
        assert {o.client_order_id: o.status for o in again.orders if o.user_id == held} == {
            o.client_order_id: OrderStatus.FILLED for o in refused}
        assert service.last_bar_ms == report.bar_ms
        for user_id in ids:
            result = audit(admin.account(keys[user_id]), service.parts.journal, user_id)
            assert result.clean, result.details
    finally:
        await service.stop()
        await other.stop()
