"""`xray loadtest --processes P --chaos`: P runtime processes share one database and one Redis while
the exchange misbehaves and the processes, their leases and Redis fail under them.

Each runtime process is `xray runtime` in a child process of its own (its own event loop, heartbeat
thread and lease), trading the same paper users against the emulator; the shard ring splits the
users between them. The harness steps the emulator's clock one bar per tick and waits until every
running process has settled the bar (its /health `last_bar_ms`). With `chaos`, one event per tick,
in turn:

* kill — SIGKILL a process a moment into the bar (orders in flight), started again a tick later
  under the same name (a supervisor's restart): its users pass to the others when its lease runs out;
* stop — SIGSTOP a process for longer than its lease, then SIGCONT: it comes back believing it holds
  its users, which by then are the others' (the split brain that fencing must refuse);
* redis — SIGKILL the harness's own redis-server (appendonly, as docs/redis.md recommends) and start
  it again on the same port and data (skipped when `--redis-url` names another Redis: one shared
  with others is not the harness's to kill);

while the emulator injects every fault kind. Afterwards the processes stop, every user is reconciled
once more from the shared journal, and every account is audited against the emulator's record.
Reported besides the load test's audit: `kills`, `stops`, `redis_restarts`; `double_acting_users`
(users for whom two processes sent orders on one bar at once: `send_log.double_acting_users`);
`risk_resets` (users whose stored risk state went back between two ticks: `risk_store.risk_resets`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from cryptography.fernet import Fernet

from xray_core.bundle import publish
from xray_core.exchange.venues import traits_for
from xray_core.settings import ExchangeSettings
from xray_core.timeframes import timeframe_ms
from xray_core.trading.orders import OrderStatus
from xray_runtime import db
from xray_runtime.components import Components
from xray_runtime.risk_store import RiskStore, SavedRisk, risk_resets
from xray_runtime.send_log import double_acting_users, sends_table
from xray_runtime.service import TradingService
from xray_runtime.settings import RuntimeSettings, TelegramSettings
from xray_sim.chaos_procs import PrivateRedis, Worker

# Every fault kind of the emulator, at rates a run of a few hundred orders meets each of.
CHAOS_FAULTS = ("latency:p=0.05:ms=300;timeout:p=0.03:path=/api/v3/order:method=POST:when=after:delay_s=4;"
                "error5xx:p=0.03;burst429:p=0.01:n=3;drop:p=0.02:when=after;drop:p=0.01:when=before;"
                "partial_fill:p=0.3:ratio=0.4")
EVENTS = ("kill", "stop", "redis")
LEASE_S = 3.0  # short, so a killed or stopped process's users move within a tick
SETTLE_TIMEOUT_S = 120.0


@dataclass
class ChaosLog:
    kills: int = 0
    stops: int = 0
    redis_restarts: int = 0
    unsettled_ticks: int = 0  # ticks some running process had not settled within the timeout
    risk_resets: set[str] = field(default_factory=set)
    exits: list[str] = field(default_factory=list)  # processes that ended by themselves (a crash)
    last_errors: dict[str, str] = field(default_factory=dict)


def worker_env(settings: RuntimeSettings, exchange_url: str) -> dict[str, str]:
    """The child processes' environment: the harness's settings, nothing inherited from XRAY_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("XRAY_")}
    values = {
        "DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url or "",
        "REDIS_PREFIX": settings.redis_prefix, "BUNDLE_DIR": str(settings.bundle_dir),
        "FERNET_KEY": settings.fernet_key.get_secret_value() if settings.fernet_key else "",
        "PAPER_URL": settings.paper_url or "", "POLL_S": "0.5", "LEASE_S": str(LEASE_S),
        "USER_LOCK_S": str(2 * LEASE_S), "RECONCILE_EVERY_S": "20", "USERS_REFRESH_S": "5",
        "MAX_ORDER_CONCURRENCY": "64", "LOG_FORMAT": "json",
    }
    env |= {f"XRAY_RUNTIME_{k}": v for k, v in values.items()}
    env |= {"XRAY_EXCHANGE_URL": exchange_url, "XRAY_EXCHANGE_TIMEOUT_S": "10"}
    return env


class Chaos:
    """The harness: workers, the private Redis, the schedule of events (seeded)."""

    def __init__(self, workers: list[Worker], redis: PrivateRedis | None, engine: Any, seed: int,
                 chaos: bool) -> None:
        self.workers, self.redis, self.engine, self.chaos = workers, redis, engine, chaos
        self.random = random.Random(seed)
        self.log = ChaosLog()
        self.to_restart: list[Worker] = []
        self._risk: dict[str, SavedRisk] = {}
        self._pending: list[asyncio.Task[None]] = []

    def start(self) -> None:
        for worker in self.workers:
            worker.start()

    def stop(self) -> None:
        for worker in self.workers:
            if worker.process is not None:
                worker.signal(signal.SIGCONT)
                worker.signal(signal.SIGTERM)
        for worker in self.workers:
            if worker.process is not None:
                try:
                    worker.process.wait(30)
                except subprocess.TimeoutExpired:
                    worker.kill()

    async def event(self, tick: int, ticks: int) -> None:
        """This tick's event (none in the last two ticks: the run ends quiet), a moment into the bar."""
        for worker in self.to_restart:
            worker.start()
        self.to_restart = []
        if not self.chaos or tick >= ticks - 2:
            return
        kind = EVENTS[tick % len(EVENTS)]
        await asyncio.sleep(self.random.uniform(0.1, 1.5))
        running = [w for w in self.workers if w.running]
        if kind == "kill" and running:
            victim = self.random.choice(running)
            victim.kill()
            self.log.kills += 1
            self.to_restart.append(victim)
        elif kind == "stop" and len(running) > 1:
            victim = self.random.choice(running)
            victim.signal(signal.SIGSTOP)
            victim.stopped = True
            self.log.stops += 1
            self._pending.append(asyncio.create_task(self._resume(victim, 1.5 * LEASE_S + 1)))
        elif kind == "redis" and self.redis is not None:
            self.redis.kill()
            await asyncio.sleep(self.random.uniform(0.5, 2.0))
            await asyncio.to_thread(self.redis.start)
            self.log.redis_restarts += 1

    async def _resume(self, worker: Worker, after_s: float) -> None:
        await asyncio.sleep(after_s)
        worker.signal(signal.SIGCONT)
        worker.stopped = False

    async def settle(self, bar_ms: int) -> None:
        """Wait until every running process has settled `bar_ms` (and stopped ones are back)."""
        await asyncio.gather(*self._pending)
        self._pending = []
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while time.monotonic() < deadline:
            healths = await asyncio.gather(*(asyncio.to_thread(w.health) for w in self.workers if w.running))
            if all(h is not None and (h.get("last_bar_ms") or 0) >= bar_ms for h in healths):
                break
            await asyncio.sleep(0.3)
        else:
            self.log.unsettled_ticks += 1
        for worker in self.workers:
            ended = worker.process is not None and worker.process.poll() is not None
            if ended and worker.process is not None and worker not in self.to_restart:
                code = worker.process.returncode
                self.log.exits.append(f"{worker.name}: exit {code}: {worker.last_words()}")
                worker.process = None
                self.to_restart.append(worker)
            health = worker.health() if worker.running else None
            if health and health.get("last_error"):
                self.log.last_errors[worker.name] = str(health["last_error"])[:200]
        self.check_risk()

    def check_risk(self) -> None:
        """Stored risk rows never go back between ticks (a lost kill flag, peak or day open)."""
        now = RiskStore(self.engine).snapshot()
        self.log.risk_resets.update(risk_resets(self._risk, now))
        self._risk = now


async def bar_of(admin: Any, step_ms: int) -> int:
    """The emulator's newest closed bar (from its admin API, which faults never touch)."""
    now = int((await admin.call("GET", "/clock"))["now_ms"])
    return now - now % step_ms - step_ms


async def final_reconcile(settings: RuntimeSettings, base_url: str) -> tuple[TradingService, dict[str, Any]]:
    """After the processes stopped: one process (no Redis: the journal is the record) reconciles every
    user against the exchange, then settles what is still open as the service does before each bar
    (adopted, or sent again under its id once its earlier sends are dead); the audit then reads its
    journal. An order the exchange still does not have is settled as never placed only once its
    signed request has expired (twice the venue's recvWindow after its last send, as reconciliation
    does in the runtime): if some are left, this waits for that and reconciles again."""
    from xray_sim.loadtest import _settle_open_orders

    alone = settings.model_copy(update={"redis_url": None, "process_id": "chaos-audit"})
    parts = Components.build(alone, TelegramSettings(), ExchangeSettings(url=base_url, timeout_s=30))
    service = TradingService(parts)
    await parts.start()
    service.reload_bundle()
    await service.refresh_users(reconcile_new=False)
    repaired: dict[str, Any] = dict(await service.reconcile())
    repaired["open_after_ticks"] = await _settle_open_orders(service)
    unsent = (OrderStatus.PENDING, OrderStatus.SUBMITTED)  # open on the exchange is not in doubt
    left = [o for o in await asyncio.to_thread(parts.journal.in_doubt) if o.status in unsent]
    if left:
        expired_ms = max(o.updated_ms for o in left) + 2 * traits_for("mexc").max_recv_window_ms + 1000
        wait_s = max(0.0, (expired_ms - time.time() * 1000) / 1000)
        await asyncio.sleep(wait_s)
        again = await service.reconcile()
        repaired = {k: repaired.get(k, 0) + again.get(k, 0) for k in {*repaired, *again}}
        repaired["waited_for_recv_window_s"] = round(wait_s, 1)
    return service, repaired


def sends_summary(engine: Any) -> dict[str, int]:
    import sqlalchemy as sa

    with engine.connect() as conn:
        total = conn.execute(sa.select(sa.func.count()).select_from(sends_table)).scalar_one()
    return {"admitted_sends": int(total)}


@contextlib.contextmanager
def harness(config: Any, workdir: Path, base_url: str) -> Iterator[tuple[Chaos, RuntimeSettings]]:
    """The workers and Redis of a chaos run, stopped (and Redis killed) on the way out."""
    redis = None if config.redis_url else PrivateRedis(workdir)
    if redis is not None:
        redis.start()
    settings = RuntimeSettings(
        database_url=config.database_url or f"sqlite:///{workdir / 'runtime.db'}",
        redis_url=config.redis_url or (redis.url if redis else None),
        redis_prefix=f"xray-chaos-{os.getpid()}", bundle_dir=workdir / "bundles",
        fernet_key=Fernet.generate_key().decode(), paper_url=base_url, http_port=0,
    )
    engine = db.connect(settings.database_url)
    env = worker_env(settings, base_url)
    workers = [Worker(f"chaos-{i}", env, workdir / f"runtime-{i}.log") for i in range(config.processes)]
    chaos = Chaos(workers, redis, engine, config.seed, config.chaos)
    try:
        yield chaos, settings
    finally:
        chaos.stop()
        if redis is not None:
            redis.kill()
        engine.dispose()


async def run_processes(config: Any, base_url: str, workdir: Path) -> dict[str, Any]:
    from xray_sim.loadtest import (
        EmulatorAdmin,
        _add_users,
        _audit_all,
        _symbols,
        loadtest_bundle,
        rejections_by_reason,
    )

    began = time.perf_counter()
    step_ms = timeframe_ms(config.timeframe)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as http:
        admin = EmulatorAdmin(http, base_url)
        symbols = await _symbols(http, base_url, config.symbols)
        created = await admin.call("POST", "/accounts", {"count": config.users,
                                                         "funds": {"USDT": config.funds_usdt}})
        keys = {f"load{i:05d}": a["key"] for i, a in enumerate(created["accounts"])}
        with harness(config, workdir, base_url) as (chaos, settings):
            publish(loadtest_bundle(symbols, config), settings.bundle_dir)
            await asyncio.to_thread(_add_users, settings, created["accounts"])
            chaos.start()
            await chaos.settle(await bar_of(admin, step_ms))  # every process up, warmed up
            setup_s = time.perf_counter() - began
            faults = config.faults if config.faults is not None else (CHAOS_FAULTS if config.chaos else None)
            if faults:
                await admin.call("POST", "/faults", {"spec": faults})
            ticked = time.perf_counter()
            for tick in range(config.ticks):
                await admin.call("POST", "/clock/advance", {"ms": step_ms})
                await chaos.event(tick, config.ticks)
                await chaos.settle(await bar_of(admin, step_ms))
            trading_s = time.perf_counter() - ticked
            fired = (await admin.call("GET", "/faults")).get("fired") if faults else None
            await admin.call("POST", "/faults", {"spec": ""})
            await admin.call("POST", "/clock/advance", {"ms": step_ms})  # partial fills complete
            await chaos.settle(await bar_of(admin, step_ms))
            chaos.stop()
            service, repaired = await final_reconcile(settings, base_url)
            try:
                result = await _audit_all(admin, service, keys)
                doubled = await asyncio.to_thread(double_acting_users, service.parts.engine)
                sends = await asyncio.to_thread(sends_summary, service.parts.engine)
                orders = await asyncio.to_thread(_orders_by_status, service.parts.engine)
                journal = service.parts.journal
                rejected = rejections_by_reason([o for u in keys for o in journal.orders(u)])
            finally:
                await service.parts.stop()
            stats = await admin.call("GET", "/stats")
    return {
        "users": config.users, "symbols": config.symbols, "ticks": config.ticks,
        "processes": config.processes, "chaos": config.chaos,
        "orders": sum(orders.values()), "orders_by_status": orders, "rejected_by_reason": rejected,
        "fills": int(stats["fills"]), "rate_limit_violations": int(stats["rate_limit_violations"]),
        "duplicate_orders": result.duplicate_orders, "lost_fills": result.lost_fills,
        "state_mismatches": result.state_mismatches, "audit_details": result.details[:5],
        "kills": chaos.log.kills, "stops": chaos.log.stops, "redis_restarts": chaos.log.redis_restarts,
        "double_acting_users": len(doubled), "risk_resets": len(chaos.log.risk_resets),
        "unsettled_ticks": chaos.log.unsettled_ticks, "crashes": chaos.log.exits,
        "faults_fired": fired, "reconcile_diffs": {k: v for k, v in repaired.items() if v},
        **sends, "setup_s": round(setup_s, 1), "trading_s": round(trading_s, 1),
    }


def _orders_by_status(engine: Any) -> dict[str, int]:
    import sqlalchemy as sa

    from xray_runtime.journal import orders_table

    query = sa.select(orders_table.c.status, sa.func.count()).group_by(orders_table.c.status)
    with engine.connect() as conn:
        return {str(status): int(count) for status, count in conn.execute(query)}
