"""Two runtime services sharing one Postgres database and one Redis split the users between them: each
user is traded by exactly one of them. When one stops heartbeating (as if SIGKILLed), its lease runs
out and the survivor takes its users over — their balances and positions read from the exchange — and
keeps trading them. The exchange and the journal agree for every user at the end.

The ring and the lease alone are tested in test_sharding.py; here they decide which service trades.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from cryptography.fernet import Fernet
from service_support import MINUTE, add_users, fast_bundle
from shard_support import REDIS_URL, database_url, redis_prefix  # noqa: F401  (fixtures)

from xray_core.bundle import publish
from xray_core.settings import ExchangeSettings
from xray_runtime.components import Components
from xray_runtime.reconcile import audit
from xray_runtime.service import TradingService
from xray_runtime.settings import RuntimeSettings, TelegramSettings

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

USERS = 10
LEASE_S = 1.0


async def _service(settings: RuntimeSettings, exchange_url: str) -> TradingService:
    parts = Components.build(settings, TelegramSettings(), ExchangeSettings(url=exchange_url))
    service = TradingService(parts)
    await service.start()
    return service


async def _bar(admin, *services: TradingService) -> dict[str, set[str]]:
    """One more bar, stepped by every service at once; the client order ids each one decided."""
    await asyncio.to_thread(admin.advance, MINUTE)
    reports = await asyncio.gather(*(service.step() for service in services))
    return {service.parts.sharding.member_id: {o.client_order_id for o in report.orders} if report else set()
            for service, report in zip(services, reports, strict=True)}


async def test_two_services_split_the_users_and_the_survivor_takes_over_a_dead_ones(
        database_url, redis_prefix, tmp_path, fixed_emulator, fixed_admin):  # noqa: F811
    emulator, admin = fixed_emulator, fixed_admin
    common = {
        "database_url": database_url, "redis_url": REDIS_URL, "redis_prefix": redis_prefix,
        "lease_s": LEASE_S, "fernet_key": Fernet.generate_key().decode(), "bundle_dir": tmp_path / "bundles",
        "paper_url": emulator.base_url, "http_port": 0, "reconcile_every_s": 3600,
    }
    publish(fast_bundle(), common["bundle_dir"])
    store, keys = add_users(RuntimeSettings(**common), admin, USERS)
    store.engine.dispose()
    a = await _service(RuntimeSettings(**common, process_id="runtime-a"), emulator.base_url)
    b = await _service(RuntimeSettings(**common, process_id="runtime-b"), emulator.base_url)
    try:
        await asyncio.gather(a.refresh_users(), b.refresh_users())  # a started alone: it sees b now
        roster_a, roster_b = set(a.parts.roster.users), set(b.parts.roster.users)
        assert roster_a and roster_b, "both services own some users"
        assert not roster_a & roster_b and roster_a | roster_b == set(keys)

        decided = {"runtime-a": set(), "runtime-b": set()}
        for _ in range(6):
            for member, ids in (await _bar(admin, a, b)).items():
                decided[member] |= ids
        journal = a.parts.journal

        def users(ids: set[str]) -> set[str]:
            return {order.user_id for order in journal.get_many(ids).values()}

        # Each user's orders come from the one service that owns the user.
        assert users(decided["runtime-a"]) and users(decided["runtime-a"]) <= roster_a
        assert users(decided["runtime-b"]) and users(decided["runtime-b"]) <= roster_b

        await b.parts.sharding.stop()  # b stops heartbeating without leaving: as if it had died
        deadline = time.monotonic() + 10 * LEASE_S
        while await a.parts.sharding.alive() != ["runtime-a"]:
            assert time.monotonic() < deadline, "b's lease never ran out"
            await asyncio.sleep(0.1)
        await a.refresh_users()
        assert set(a.parts.roster.users) == set(keys), "the survivor owns every user"

        # It keeps trading b's users (from the balances and positions they have on the exchange).
        handed_over = set()
        for _ in range(15):
            ids = (await _bar(admin, a))["runtime-a"]
            decided["runtime-a"] |= ids
            handed_over |= users(ids) & roster_b
            if handed_over == roster_b:
                break
        assert handed_over == roster_b, f"the survivor traded {sorted(handed_over)} of {sorted(roster_b)}"
        assert not decided["runtime-a"] & decided["runtime-b"], "no order was decided by both"
        await a.reconcile()
        for user_id, key in keys.items():
            result = audit(admin.account(key), journal, user_id)
            found = (result.duplicate_orders, result.lost_fills, result.state_mismatches)
            assert found == (0, 0, 0), (user_id, result.details)
            assert not journal.open_orders(user_id), journal.open_orders(user_id)
    finally:
        await a.stop()
        await b.stop()
