"""Lose nothing, duplicate nothing: batches for several users under each exchange fault, then
reconciliation, then the audit against the emulator's own record of every account — and a runtime
process killed mid-batch, whose successor re-decides the same bar. Every test runs against each of the
emulator's answers to a repeated client order id (`duplicate_ids`: dedupe, reject, dedupe-open), and
the faults include a request that overtakes the executor's lookup and acts after it."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from order_path_support import (
    JOURNAL_KINDS,
    MINUTE,
    REDIS_URL,
    bar_of,
    fired,
    intents,
    journal_of,
    make_order_path,
    redis_state,
    sqlite_journal,
    statuses,
)

from xray_core.trading.orders import OrderStatus
from xray_sim.exchange.config import DUPLICATE_IDS

SPECS = [("BTC/USDT", "buy", 0.01), ("ETH/USDT", "buy", 0.2)]
ORDER = "path=/api/v3/order"
# name: (fault spec, the fault kind that must fire, client timeout in ms)
FAULTS = {
    "timeout_after": (f"timeout:{ORDER}:method=POST:when=after:delay_s=3:count=4", "timeout", 1000),
    "error5xx": (f"error5xx:status=503:{ORDER}:method=POST:count=4", "error5xx", 10_000),
    "burst429": (f"burst429:n=5:{ORDER}:count=1", "burst429", 10_000),
    "drop_after": (f"drop:when=after:{ORDER}:method=POST:count=4", "drop", 10_000),
    "drop_before": (f"drop:when=before:{ORDER}:method=POST:count=4", "drop", 10_000),
    "partial_fill": ("partial_fill:ratio=0.4", "partial_fill", 10_000),
    # The connection drops at once and the order is placed 1 s later, inside its 1.5 s recvWindow.
    "overtake": (f"overtake:{ORDER}:method=POST:delay_s=1:count=4", "overtake", 10_000),
}
MIXED = ("latency:p=0.3:ms=40;timeout:p=0.15:path=/api/v3/order:method=POST:when=after:delay_s=2;"
         "error5xx:p=0.1;burst429:p=0.05:n=3;drop:p=0.1:when=after;drop:p=0.05:when=before;"
         "overtake:p=0.1:path=/api/v3/order:method=POST:delay_s=0.8;partial_fill:p=0.4:ratio=0.3;seed=11")


@pytest.fixture(params=DUPLICATE_IDS)
def emulator(request, start_custom_emulator):
    """The test emulator, answering a repeated client order id as `duplicate_ids` says."""
    return start_custom_emulator(duplicate_ids=request.param)


@pytest.fixture(params=JOURNAL_KINDS)
def journal(request, tmp_path):
    yield from journal_of(request.param, tmp_path)


async def _run_batch(path, users, emulator, bar=None):
    """Every user's intents for `bar` (default: the emulator's current bar, which follows the wall clock:
    a test that decides one bar twice passes the bar it took the first time)."""
    bar = bar_of(emulator) if bar is None else bar
    return await asyncio.gather(*(path.executor.submit(path.accounts[u], intents(u, bar, SPECS))
                                  for u in users))


def _overtaken_all_acted(admin) -> None:
    """Wait until every overtaken request has been processed (or refused) at the emulator: a
    duplicate it would make must be in the record the audit reads."""
    deadline = time.monotonic() + 60
    while (stats := admin.stats())["overtaken"] < stats["overtakes_kept"]:
        assert time.monotonic() < deadline, "overtaken requests never acted"
        time.sleep(0.05)


async def _settle_and_audit(path, users):
    """Reconcile every user on the next bar (rests of partial fills trade there), then audit."""
    _overtaken_all_acted(path.admin)
    path.admin.advance(MINUTE)
    for user in users:
        report = await path.reconcile(user)
        assert report.unknown_orders == 0 and report.balance_diffs == 0 and report.unresolved == 0, report
    for user in users:
        result = path.audit(user)
        found = (result.duplicate_orders, result.lost_fills, result.state_mismatches)
        assert found == (0, 0, 0), result.details
        assert statuses(path.journal.orders(user)) == ["filled"] * len(SPECS)
        assert len(path.truth(user)["orders"]) == len(SPECS)
        assert await path.state_equals_journal(user)


@pytest.mark.redis
@pytest.mark.parametrize("fault", list(FAULTS))
async def test_each_fault_loses_and_duplicates_nothing(emulator, admin, journal, fault):
    spec, kind, timeout_ms = FAULTS[fault]
    users = ["ann", "ben", "cat"]
    async with redis_state() as state:
        path = make_order_path(emulator, admin, journal, state, timeout_ms=timeout_ms)
        try:
            for user in users:
                path.add_user(user)
            admin.set_faults(spec)
            batches = await _run_batch(path, users, emulator)
            admin.set_faults("")
            after_submit = [order.status for batch in batches for order in batch]
            await _settle_and_audit(path, users)
        finally:
            await path.pool.close()
    assert fired(admin).get(kind, 0) > 0
    stats = path.executor.stats
    if fault == "partial_fill":
        assert OrderStatus.PARTIALLY_FILLED in after_submit  # the rest filled on the next bar
    else:
        assert set(after_submit) == {OrderStatus.FILLED}  # resolved by the executor itself
    if fault in ("timeout_after", "drop_after", "overtake"):
        assert stats.adopted > 0  # accepted (overtake: after the first lookup), found by client order id
    if fault == "overtake":
        assert stats.waited_out > 0  # not sent again while the first send could still act
    if fault in ("error5xx", "drop_before"):
        assert stats.retried > 0  # never processed: sent again with the same id
    if fault == "burst429":
        assert stats.rate_limited > 0 and path.pool.stats.rate_limited > 0


@pytest.mark.redis
async def test_a_mix_of_every_fault_loses_and_duplicates_nothing(emulator, admin, tmp_path):
    users = [f"user{i}" for i in range(5)]
    async with redis_state() as state:
        path = make_order_path(emulator, admin, sqlite_journal(tmp_path), state, timeout_ms=1000)
        try:
            for user in users:
                path.add_user(user)
            admin.set_faults(MIXED)
            bar = bar_of(emulator)
            await _run_batch(path, users, emulator, bar)
            admin.set_faults("")
            # Faults on every attempt can leave an order unresolved (SUBMITTED, never guessed). The
            # service decides the bar again on its next poll: known ids are resolved, never re-decided.
            await _run_batch(path, users, emulator, bar)
            assert path.executor.stats.resolved == len(users) * len(SPECS)
            await _settle_and_audit(path, users)
        finally:
            await path.pool.close()
    assert sum(fired(admin).values()) > 0


@pytest.mark.redis
async def test_a_process_killed_mid_batch_is_resumed_without_duplicates(emulator, admin, tmp_path):
    users = ["kim", "lee", "max", "ned"]
    journal = sqlite_journal(tmp_path)
    async with redis_state() as state:
        path = make_order_path(emulator, admin, journal, state)
        for user in users:
            path.add_user(user)
        bar = bar_of(emulator)
        admin.set_faults(f"latency:ms=300:{ORDER}:method=POST")  # slow sends: time to kill mid-batch
        worker = _start_worker(path, state.prefix, bar, journal.engine.url.render_as_string())
        try:
            _kill_after_first_order(worker, path, users)
        finally:
            worker.kill()
            worker.wait()
        admin.set_faults("")
        assert journal.open_orders(), "the kill landed after the batch was done"
        recorded_at_kill = sum(len(journal.orders(user)) for user in users)
        try:
            batches = await asyncio.gather(*(
                path.executor.submit(path.accounts[u], intents(u, bar, SPECS)) for u in users))
            assert path.executor.stats.resolved == recorded_at_kill  # known ids: resolved, not decided anew
            await _settle_and_audit(path, users)
        finally:
            await path.pool.close()
    assert all(order.status is OrderStatus.FILLED for batch in batches for order in batch)


def _start_worker(path, prefix: str, bar_ms: int, db_url: str) -> subprocess.Popen[str]:
    job = {
        "base_url": path.emulator.base_url, "db_url": db_url, "redis_url": REDIS_URL, "prefix": prefix,
        "bar_ms": bar_ms, "specs": SPECS,
        "users": [{"user_id": user, "key": account.api_key.get_secret_value(),
                   "secret": account.api_secret.get_secret_value()}
                  for user, account in path.accounts.items()],
    }
    script = Path(__file__).with_name("crash_worker.py")
    return subprocess.Popen([sys.executable, str(script), json.dumps(job)], stdout=subprocess.PIPE, text=True)


def _kill_after_first_order(worker: subprocess.Popen[str], path, users) -> None:
    """SIGKILL the worker as soon as the exchange holds one of its orders."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and worker.poll() is None:
        if any(path.truth(user)["orders"] for user in users):
            worker.send_signal(signal.SIGKILL)
            assert worker.wait() == -signal.SIGKILL
            return
        time.sleep(0.01)
    raise AssertionError(f"the worker placed no order in time (exit {worker.poll()})")



@pytest.mark.redis
async def test_a_418_halts_every_order_and_lookup_on_the_ip_until_the_ban_lifts(emulator, admin, tmp_path):
    users = ["ann", "ben", "cat"]
    async with redis_state() as state:
        path = make_order_path(emulator, admin, sqlite_journal(tmp_path), state, concurrency=1)
        try:
            for user in users:
                path.add_user(user)
            await path.pool.venue(path.accounts["ann"])  # markets loaded: only order traffic from here
            requests_before = admin.stats()["requests"]
            admin.set_faults(f"ban418:retry_after_s=2:{ORDER}:method=POST:count=1")
            banned_at = time.monotonic()
            bar = bar_of(emulator)  # decided again below: the same bar, whatever the wall clock does
            first = [order for batch in await _run_batch(path, users, emulator, bar) for order in batch]
            during = admin.stats()
            assert during["banned_418"] == 1 and during["requests"] == requests_before + 1  # nothing followed
            assert "GET /api/v3/order" not in during["by_endpoint"]  # not even a lookup
            assert path.executor.stats.halted == len(users) * len(SPECS)  # the banned one included
            assert all(order.status in (OrderStatus.PENDING, OrderStatus.SUBMITTED) for order in first)
            assert all("banned by the venue (HTTP 418)" in order.reason for order in first)
            while time.monotonic() - banned_at < 2.5:  # Retry-After: 2 s
                await asyncio.sleep(0.1)
            again = [order for batch in await _run_batch(path, users, emulator, bar) for order in batch]
            assert {order.status for order in again} == {OrderStatus.FILLED}
            await _settle_and_audit(path, users)
        finally:
            await path.pool.close()
