"""Money moved in or out of an account is neither a profit nor a loss, end to end against the
emulator: a withdrawal of half the equity mid-day kills nobody (the baselines move with it), a deposit
does not hide a real loss, and a transfer is applied once, across reconciliations and a restart."""

import asyncio
from decimal import Decimal

import pytest
import sqlalchemy as sa
from service_support import MINUTE, add_users, start_service

from xray_runtime import db
from xray_runtime.transfers import transfers_table
from xray_runtime.users import RiskSettings

# Kills on a 30% drawdown, blocks entries on a 30% daily loss; entries small, so trading moves the
# equity by well under 1% in these few bars.
LIMITS = RiskSettings(trade_percentage=0.02, max_drawdown=0.3, max_daily_loss=0.3)


async def _bars(service, admin, n):
    for _ in range(n):
        await asyncio.to_thread(admin.advance, MINUTE)
        await service.safe_step()


def _equity(service, user_id):
    book = service.parts.book
    return float(book.equity()[book.user_index[user_id]])


def _lose(emulator, key, amount):
    """A real loss: USDT leaves the account without any transfer (as a bad trade elsewhere would)."""
    def take():
        emulator.state.accounts.get(key).balance("USDT").free -= Decimal(amount)
    emulator.call(take)


async def test_withdrawing_half_the_equity_mid_day_kills_nobody_and_moves_the_baselines(runtime_env):
    settings, emulator, admin = runtime_env
    store, keys = add_users(settings, admin, 1)
    store.update_risk("user0", LIMITS)
    service = await start_service(settings, emulator.base_url)
    try:
        await _bars(service, admin, 3)
        before = _equity(service, "user0")
        day_open, peak = service.risk.baselines("user0", service.parts.book)
        assert before == pytest.approx(1000, rel=0.01) and day_open == pytest.approx(1000, rel=0.01)
        admin.transfer(keys["user0"], "USDT", "-500")
        await service.reconcile()
        await service.reconcile()  # seen again: applied once
        await _bars(service, admin, 3)
        assert _equity(service, "user0") == pytest.approx(before - 500, rel=0.01)
        assert float(service.parts.book.transfers[0]) == -500
        moved_open, moved_peak = service.risk.baselines("user0", service.parts.book)
        assert moved_open == pytest.approx(day_open - 500, abs=1e-6)
        assert moved_peak == pytest.approx(peak - 500, rel=0.01)
        assert not service.risk.state_of("user0").killed
        assert store.get("user0").status == "active"
        assert not service.risk.global_on
    finally:
        await service.stop()

    # A restart reads the transfer back from the journal and finds it again at the venue: once.
    again = await start_service(settings, emulator.base_url)
    try:
        await _bars(again, admin, 2)
        assert float(again.parts.book.transfers[0]) == -500
        assert again.risk.baselines("user0", again.parts.book)[0] == pytest.approx(moved_open, abs=1e-6)
        assert not again.risk.state_of("user0").killed and store.get("user0").status == "active"
    finally:
        await again.stop()
    with db.connect(settings.database_url).connect() as conn:
        rows = conn.execute(sa.select(transfers_table.c.transfer_id, transfers_table.c.value)).all()
    assert len(rows) == 1 and rows[0].value == -500


async def test_a_deposit_does_not_hide_a_real_loss_of_the_same_size(runtime_env):
    settings, emulator, admin = runtime_env
    store, keys = add_users(settings, admin, 1)
    store.update_risk("user0", LIMITS)
    service = await start_service(settings, emulator.base_url)
    try:
        await _bars(service, admin, 3)
        admin.transfer(keys["user0"], "USDT", "500")
        _lose(emulator, keys["user0"], "500")  # the balance ends where it was: only the deposit explains it
        await service.reconcile()
        for _ in range(10):
            await _bars(service, admin, 1)
            if store.get("user0").status == "disabled":
                break
        assert float(service.parts.book.transfers[0]) == 500
        assert service.risk.state_of("user0").killed
        assert store.get("user0").status == "disabled"
    finally:
        await service.stop()


async def test_transfers_made_before_the_runtime_first_looked_are_in_the_baselines(runtime_env):
    settings, emulator, admin = runtime_env
    store, keys = add_users(settings, admin, 1)
    store.update_risk("user0", LIMITS)
    admin.transfer(keys["user0"], "USDT", "-400")  # before the runtime ever saw the account
    service = await start_service(settings, emulator.base_url)
    try:
        await _bars(service, admin, 3)
        assert float(service.parts.book.transfers[0]) == 0
        assert service.risk.baselines("user0", service.parts.book)[0] == pytest.approx(600, rel=0.01)
    finally:
        await service.stop()
