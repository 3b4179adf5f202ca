"""The runtime process (`python -m xray_runtime`) SIGKILLed while a bar's orders are in flight, then
started again: the new process decides the same bar again, finds what reached the exchange, sends
what did not (with the same client order ids), trades on, and stops cleanly on SIGTERM. Afterwards
every user's journal agrees exactly with the exchange's own record: no order twice, no fill lost.

On the embedded SQLite database and on Postgres (a database created for the test). The executor alone
killed mid-batch is tested in test_execution_faults.py; here it is the whole service, started from the
environment as it runs in production, with its start-up reconciliation and its own decisions.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from cryptography.fernet import Fernet
from service_support import MINUTE, fast_bundle

from xray_core.bundle import publish
from xray_core.trading.orders import OrderStatus
from xray_runtime import db
from xray_runtime.crypto import KeyVault
from xray_runtime.journal import Journal
from xray_runtime.reconcile import audit
from xray_runtime.users import RiskSettings, UserStore

PG_ADMIN = os.environ.get("XRAY_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
USERS = 8
SEND_LATENCY = "latency:ms=400:path=/api/v3/order:method=POST"  # each order takes 0.4 s to arrive
IN_DOUBT = (OrderStatus.PENDING, OrderStatus.SUBMITTED)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'runtime.db'}"
        return
    name = f"xray_crash_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    server = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    try:
        yield f"{server}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as con:
            con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class RuntimeProcess:
    """`python -m xray_runtime` with `env`; its JSON log lines (stderr) are kept as they come."""

    def __init__(self, env: dict[str, str], cwd: Path, log_path: Path) -> None:
        self.events: list[dict] = []
        self._lock = threading.Lock()
        self._log_path = log_path
        self.proc = subprocess.Popen([sys.executable, "-m", "xray_runtime"], env=env, cwd=cwd,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        with self._log_path.open("a") as log:
            for line in self.proc.stderr:
                log.write(line)
                log.flush()
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                with self._lock:
                    self.events.append(event)

    def ticked(self) -> list[int]:
        """The bars the process has decided so far (its "tick" log lines)."""
        with self._lock:
            return [e["bar_ms"] for e in self.events if e.get("event") == "tick"]

    def alive(self) -> bool:
        if self.proc.poll() is None:
            return True
        self._reader.join(5)
        return False

    def log_tail(self) -> str:
        lines = [line for line in self._log_path.read_text().splitlines(keepends=True)
                 if '"xray_runtime.users"' not in line]  # "loaded N users" at every poll
        return "".join(lines[-20:])

    def wait_for_tick(self, bar_ms: int, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if any(b >= bar_ms for b in self.ticked()):
                return
            assert self.alive(), f"the runtime exited ({self.proc.returncode}):\n{self.log_tail()}"
            time.sleep(0.02)
        raise AssertionError(f"the runtime did not decide bar {bar_ms} in time:\n{self.log_tail()}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self._reader.join(5)


def _newest_closed_bar(emulator) -> int:
    now = emulator.clock.now_ms()
    return now - now % MINUTE - MINUTE


def _next_bar(emulator, admin) -> int:
    """Move the exchange's clock just past the next minute: one more bar closes, and the next one is
    almost a minute away, so a restart within the test still sees the same newest bar."""
    now = emulator.clock.now_ms()
    admin.advance(MINUTE - now % MINUTE + 500)
    return _newest_closed_bar(emulator)


def _kill_while_orders_in_flight(runtime: RuntimeProcess, emulator, admin, max_bars: int = 40) -> int:
    """Step bars until one has entries; SIGKILL the runtime as soon as its first order reached the
    exchange (the others of the bar still queued behind it). Returns that bar."""
    orders_before = admin.stats()["orders"]
    bar, bars = _newest_closed_bar(emulator), 0
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert runtime.alive(), f"the runtime exited ({runtime.proc.returncode}):\n{runtime.log_tail()}"
        if admin.stats()["orders"] > orders_before:
            runtime.kill()
            assert runtime.proc.returncode == -signal.SIGKILL
            return bar
        if any(b >= bar for b in runtime.ticked()):  # decided without an order: the next bar
            assert bars < max_bars, "no bar had an entry"
            bar, bars = _next_bar(emulator, admin), bars + 1
        time.sleep(0.01)
    raise AssertionError(f"no order reached the exchange in time:\n{runtime.log_tail()}")


def test_a_runtime_killed_mid_bar_restarts_and_loses_and_duplicates_nothing(
        database_url, tmp_path, fixed_emulator, fixed_admin):
    emulator, admin = fixed_emulator, fixed_admin
    fernet = Fernet.generate_key().decode()
    publish(fast_bundle(), tmp_path / "bundles")
    store = UserStore(db.connect(database_url), KeyVault(fernet))
    keys = {}
    for i in range(USERS):
        key, secret = admin.create_account({"USDT": "1000"})
        store.add(f"user{i}", f"User {i}", key, secret, risk=RiskSettings(trade_percentage=0.2))
        keys[f"user{i}"] = key
    env = {name: value for name, value in os.environ.items() if not name.startswith("XRAY_")} | {
        "XRAY_HOME": str(tmp_path / "home"),
        "XRAY_RUNTIME_DATABASE_URL": database_url,
        "XRAY_RUNTIME_FERNET_KEY": fernet,
        "XRAY_RUNTIME_BUNDLE_DIR": str(tmp_path / "bundles"),
        "XRAY_RUNTIME_PAPER_URL": emulator.base_url,
        "XRAY_EXCHANGE_URL": emulator.base_url,
        "XRAY_RUNTIME_POLL_S": "0.2",
        "XRAY_RUNTIME_HTTP_PORT": "0",
        "XRAY_RUNTIME_MAX_ORDER_CONCURRENCY": "1",  # one order at a time: the kill lands mid-bar
    }
    journal = Journal(db.connect(database_url, create=False))

    admin.set_faults(SEND_LATENCY)
    _next_bar(emulator, admin)
    first = RuntimeProcess(env, tmp_path, tmp_path / "first.log")
    try:
        killed_bar = _kill_while_orders_in_flight(first, emulator, admin)
    finally:
        first.kill()
    time.sleep(0.6)  # a send the emulator had already received lands now, or never
    admin.set_faults("")

    # The kill really was mid-bar: some of the bar's orders are on the exchange, others were only
    # written ahead (decided, recorded, not yet on the exchange).
    on_exchange = {o["clientOrderId"] for key in keys.values() for o in admin.account(key)["orders"]}
    decided = [o for user in keys for o in journal.orders(user) if o.bar_ms == killed_bar]
    placed = [o for o in decided if o.client_order_id in on_exchange]
    not_sent = [o for o in decided if o.client_order_id not in on_exchange]
    assert placed and not_sent, (len(placed), len(not_sent))
    assert all(o.status in IN_DOUBT for o in not_sent)

    second = RuntimeProcess(env, tmp_path, tmp_path / "second.log")
    try:
        second.wait_for_tick(killed_bar)
        assert second.ticked()[0] == killed_bar, "the restarted runtime decides the killed bar again"
        for _ in range(4):
            second.wait_for_tick(_next_bar(emulator, admin))
        second.proc.send_signal(signal.SIGTERM)
        assert second.proc.wait(30) == 0, second.log_tail()
    finally:
        second.kill()

    for user_id, key in keys.items():
        result = audit(admin.account(key), journal, user_id)
        found = (result.duplicate_orders, result.lost_fills, result.state_mismatches)
        assert found == (0, 0, 0), (user_id, result.details)
        assert not journal.open_orders(user_id), journal.open_orders(user_id)
    # Nothing decided before the kill was dropped: the orders it never sent were sent after the
    # restart, under the same client order ids, and filled.
    after = journal.get_many([o.client_order_id for o in decided])
    assert {after[o.client_order_id].status for o in decided} == {OrderStatus.FILLED}
    journal.engine.dispose()
