"""Redis or Postgres briefly down: the service says so on /health, keeps its state, and when the
dependency returns it decides the missed bar again — nothing lost, nothing doubled."""

import asyncio
import uuid

import psycopg
import pytest
from cryptography.fernet import Fernet
from outage_proxy import OutageProxy
from service_support import MINUTE, add_users, fast_bundle, start_service

from xray_core.bundle import publish
from xray_runtime import db
from xray_runtime.journal import Journal
from xray_runtime.reconcile import audit
from xray_runtime.settings import RuntimeSettings

pytestmark = [pytest.mark.redis, pytest.mark.postgres]


@pytest.fixture
def database():
    name = f"xray_outage_{uuid.uuid4().hex[:10]}"
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield name
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.parametrize("dependency", ["redis", "postgres"])
async def test_a_dependency_outage_skips_bars_and_the_service_recovers_by_itself(
        dependency, database, tmp_path, fixed_emulator, fixed_admin):
    emulator, admin = fixed_emulator, fixed_admin
    proxy = OutageProxy(6379 if dependency == "redis" else 5432).start()
    redis_port = proxy.port if dependency == "redis" else 6379
    pg_port = proxy.port if dependency == "postgres" else 5432
    settings = RuntimeSettings(
        database_url=f"postgresql+psycopg://postgres@127.0.0.1:{pg_port}/{database}",
        redis_url=f"redis://127.0.0.1:{redis_port}/0", redis_prefix=f"outage-{uuid.uuid4().hex[:8]}",
        bundle_dir=tmp_path / "bundles", fernet_key=Fernet.generate_key().decode(),
        paper_url=emulator.base_url, http_port=0, reconcile_every_s=3600, lease_s=30,
    )
    publish(fast_bundle(), settings.bundle_dir)
    _, keys = add_users(settings, admin, 3)
    service = await start_service(settings, emulator.base_url)
    try:
        before = [await _bar(service, admin) for _ in range(3)]
        assert all(report is not None for report in before)
        proxy.cut()
        missed = [await _bar(service, admin) for _ in range(3)]
        assert missed == [None, None, None]
        health = service.health()
        assert health["status"] == "degraded" and health["last_error"]
        proxy.restore()
        after = [await _bar(service, admin) for _ in range(6)]
        assert all(report is not None for report in after), service.last_error
        assert service.health()["status"] == "ok"
        await service.reconcile()
    finally:
        await service.stop()
        proxy.stop()
    orders = [o for r in before + after if r for o in r.orders]
    assert orders, "the users traded"
    journal = Journal(db.connect(f"postgresql+psycopg://postgres@127.0.0.1:5432/{database}"))
    for user_id, key in keys.items():
        result = audit(admin.account(key), journal, user_id)
        assert result.clean, result.details


async def _bar(service, admin):
    await asyncio.to_thread(admin.advance, MINUTE)
    return await service.safe_step()
