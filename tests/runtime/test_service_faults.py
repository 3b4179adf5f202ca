"""The running service (its own poll loop, in this process) trades bar after bar for several users while
the exchange misbehaves in one way at a time: answers that come too late, 5xx errors, bursts of 429s,
connections dropped before or after the exchange acted, partial fills. It keeps serving — every bar is
traded once — and once the faults clear, one more bar and a reconciliation leave every user's journal
in exact agreement with the exchange's own record: no duplicate order, no lost fill, no state that
disagrees.

The executor's own answers to each fault are tested in test_execution_faults.py; here the whole
service meets them, market data and account reads included (a fault without a path hits those too).
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest
import requests
from cryptography.fernet import Fernet
from service_support import MINUTE, add_users, fast_bundle

from xray_core.bundle import publish
from xray_core.settings import ExchangeSettings
from xray_runtime.components import Components
from xray_runtime.reconcile import audit
from xray_runtime.service import TradingService
from xray_runtime.settings import RuntimeSettings, TelegramSettings

USERS = 5
FAULTY_BARS = 8
# name: (fault spec, the fault kind that must fire, the client's timeout in seconds)
FAULTS = {
    "timeout_after": ("timeout:path=/api/v3/order:method=POST:when=after:delay_s=3", "timeout", 1.0),
    "error5xx": ("error5xx:p=0.3", "error5xx", 10.0),
    "burst429": ("burst429:p=0.2:n=3", "burst429", 10.0),
    "drop_after": ("drop:p=0.2:when=after", "drop", 10.0),
    "drop_before": ("drop:p=0.2:when=before", "drop", 10.0),
    "partial_fill": ("partial_fill:p=0.5:ratio=0.4", "partial_fill", 10.0),
}


def _fired(emulator) -> dict[str, int]:
    return requests.get(emulator.base_url + "/_emulator/faults", timeout=10).json()["fired"]


def _newest_closed_bar(emulator) -> int:
    now = emulator.clock.now_ms()
    return now - now % MINUTE - MINUTE


class RunningService:
    """`TradingService.run` in a task of this event loop, as `python -m xray_runtime` runs it."""

    def __init__(self, service: TradingService, emulator) -> None:
        self.service = service
        self.emulator = emulator
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(service.run(self.stop))

    async def traded(self, timeout_s: float = 30.0) -> None:
        """Wait until the service has traded the newest closed bar of the exchange's clock."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.task.done():
                self.task.result()  # the loop died: raise why
                raise AssertionError("the service loop ended by itself")
            last = self.service.last_bar_ms
            if last is not None and last >= _newest_closed_bar(self.emulator):
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"the service did not trade bar {_newest_closed_bar(self.emulator)} in time")

    async def next_bar(self, admin) -> int:
        """Move the exchange's clock just past the next minute (one more bar closes, the next is almost
        a minute of real time away) and wait until the service has traded it."""
        now = self.emulator.clock.now_ms()
        await asyncio.to_thread(admin.advance, MINUTE - now % MINUTE + 500)
        await self.traded()
        return self.service.last_bar_ms

    async def close(self) -> None:
        self.stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(self.task, 30)


@pytest.mark.parametrize("fault", list(FAULTS))
async def test_the_service_keeps_trading_through_each_fault_and_the_exchange_agrees(
        tmp_path, fixed_emulator, fixed_admin, fault):
    emulator, admin = fixed_emulator, fixed_admin
    spec, kind, timeout_s = FAULTS[fault]
    settings = RuntimeSettings(
        database_url=f"sqlite:///{tmp_path / 'runtime.db'}", bundle_dir=tmp_path / "bundles",
        fernet_key=Fernet.generate_key().decode(), paper_url=emulator.base_url, http_port=0,
        reconcile_every_s=3600, poll_s=0.05,
    )
    publish(fast_bundle(), settings.bundle_dir)
    _store, keys = add_users(settings, admin, USERS)
    parts = Components.build(settings, TelegramSettings(), ExchangeSettings(url=emulator.base_url,
                                                                            timeout_s=timeout_s))
    parts.executor.backoff_s, parts.executor.rate_limit_backoff_s = 0.05, 0.1  # seconds, not minutes
    service = TradingService(parts)
    running = RunningService(service, emulator)
    try:
        await running.traded()  # started, reconciled, and traded the current bar
        before = len(service.reports)
        admin.set_faults(spec)
        faulty_bars = [await running.next_bar(admin) for _ in range(FAULTY_BARS)]
        fired = _fired(emulator).get(kind, 0)
        during = service.reports[before:]
        admin.set_faults("")
        await running.next_bar(admin)  # a partial fill's rest trades on a later bar
        totals = await service.reconcile()
    finally:
        await running.close()

    assert fired > 0, f"the {kind} fault never fired"
    # It kept serving: it traded every bar, one after the other (a bar whose step failed, or whose
    # orders stayed in doubt, was decided again on the next step before the service moved on).
    assert faulty_bars == sorted(set(faulty_bars)) and len(during) >= FAULTY_BARS
    assert {o.user_id for r in during for o in r.orders} == set(keys), "not every user met the fault"
    assert totals.get("unknown_orders", 0) == 0 and totals.get("failed", 0) == 0, totals
    for user_id, key in keys.items():
        result = audit(admin.account(key), parts.journal, user_id)
        found = (result.duplicate_orders, result.lost_fills, result.state_mismatches)
        assert found == (0, 0, 0), (user_id, result.details)
        # Nothing is left in doubt: every order the service decided is settled.
        assert not parts.journal.open_orders(user_id), parts.journal.open_orders(user_id)
    if fault == "partial_fill":  # the rest filled on a later bar, found by reconciliation
        assert any(o.status.value == "partially_filled" for r in during for o in r.orders)
    if fault == "timeout_after":  # every send timed out after the exchange took it: found by id
        assert parts.executor.stats.adopted > 0
