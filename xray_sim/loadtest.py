"""`xray loadtest`: the runtime with N paper users against the emulator, measured.

The emulator runs in its own process (so its work does not share this process's GIL and distort the
runtime's latency); its clock is stepped one bar per tick through its admin API, and the runtime
trades each new bar for every user. Afterwards every account is audited against the emulator's own
record of it. Reported:

* p50_ms / p99_ms — per-user decision latency: from the new bar (tick start) to that user's
  decision, over all users and ticks (the vectorised pass decides every user at once, so each user of
  a tick has the tick's latency);
* orders, fills; rate_limit_violations — 429s the emulator answered because a limit was exceeded
  (fault-injected 429s are reported apart); duplicate_orders, lost_fills, state_mismatches — the
  audit; peak_rss_mb — this process (runtime and harness);
* order_throughput — orders acknowledged per second of the ticks' send phases (first send to last
  acknowledgement: write-ahead, fencing, limiter, ccxt, the ack recorded); last_ack_ms_p99 — per
  tick with orders, from the bar's close (the emulator's clock stepped) until the runtime has every
  order of that bar acknowledged and recorded; settled_orders_per_s / settled_ms_p99 — the same with
  every order also read back (its fills recorded) and the book moved: the whole order phase;
  wire_orders_per_s — in the same run, signed order POSTs straight to the same emulator with a
  keep-alive aiohttp client and no ccxt (`xray_sim.wire`): the ceiling the runtime is measured against.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import resource
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
from cryptography.fernet import Fernet

from xray_core.bundle import Bundle, publish
from xray_core.errors import ConfigError, XrayError
from xray_core.settings import ExchangeSettings
from xray_core.timeframes import timeframe_ms
from xray_runtime import db
from xray_runtime.components import Components
from xray_runtime.crypto import KeyVault
from xray_runtime.reconcile import AuditResult, audit
from xray_runtime.service import TradingService
from xray_runtime.settings import RuntimeSettings, TelegramSettings
from xray_runtime.users import NewUser, RiskSettings, UserStore
from xray_sim.exchange.config import DUPLICATE_IDS
from xray_sim.exchange.faults import parse_fault_spec
from xray_sim.wire import wire_orders_per_s

BROKEN = {"TGT/USDT", "SRM/USDT"}  # the emulator's deliberately broken listings
PREFIX = "/_emulator"
MIN_TICK_GAP_S = 3.0
WIRE_ACCOUNTS = 200  # the wire measurement's orders are spread over this many fresh keys (per-key limits)
_VARYING = re.compile(r"[0-9a-fA-F]{12,}|\d{7,}|\d+\.\d+")  # ids, times and amounts in reasons


@dataclass(frozen=True)
class LoadTestConfig:
    users: int
    symbols: int
    ticks: int
    faults: str | None = None
    timeframe: str = "1m"
    fast: int = 10
    slow: int = 30
    seed: int = 7
    # A fixed market start: every run sees the same bars (and so the same orders); None: now.
    market_start_ms: int | None = 1_780_000_000_000
    funds_usdt: str = "10000"
    workdir: Path | None = None
    database_url: str | None = None
    redis_url: str | None = None
    processes: int = 1  # above 1, or with chaos: runtime processes of their own (xray_sim.chaos)
    chaos: bool = False
    duplicate_ids: str = "dedupe"  # the emulator's answer to a repeated client order id

    def __post_init__(self) -> None:
        if self.users < 1 or self.symbols < 1 or self.ticks < 1:
            raise ConfigError("--users, --symbols and --ticks must be at least 1", "e.g. --users 100")
        if self.processes < 1:
            raise ConfigError("--processes must be at least 1", "e.g. --processes 3")
        if self.duplicate_ids not in DUPLICATE_IDS:
            raise ConfigError(f"--duplicate-ids {self.duplicate_ids!r} is not one of "
                              f"{', '.join(DUPLICATE_IDS)}", "e.g. --duplicate-ids reject")
        try:  # refused here, before anything starts, with the emulator's own one-line reason
            parse_fault_spec(self.faults)
        except ConfigError as error:
            raise ConfigError(f"--faults: {error.problem}", error.hint) from None


@contextlib.contextmanager
def emulator_process(seed: int, history_days: int = 3, extra: int = 40,
                     start_ms: int | None = None, duplicate_ids: str = "dedupe") -> Iterator[str]:
    """`xray exchange-sim` in a child process on a free port; yields its base URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "xray_cli.main", "exchange-sim", "--port", str(port),
               "--seed", str(seed), "--history-days", str(history_days), "--extra-listings", str(extra),
               "--duplicate-ids", duplicate_ids]
    if start_ms is not None:
        command += ["--start-ms", str(start_ms)]
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(child, url)
        yield url
    finally:
        child.terminate()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()


def _wait_ready(child: subprocess.Popen[str], url: str, timeout_s: float = 60.0) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise XrayError(f"the emulator exited: {(child.stderr.read() if child.stderr else '')[-500:]}")
        try:
            with urllib.request.urlopen(url + "/api/v3/ping", timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise XrayError(f"the emulator did not start within {timeout_s:.0f} s", "see `xray exchange-sim`")


class EmulatorAdmin:
    """The emulator's /_emulator API, async."""

    def __init__(self, http: aiohttp.ClientSession, base_url: str) -> None:
        self.http, self.url = http, base_url + PREFIX

    async def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """The answer's JSON; an error answer raises XrayError with the emulator's reason (one line)."""
        async with self.http.request(method, self.url + path, json=body) as response:
            if response.status >= 400:
                text = await response.text()
                try:
                    reason = str(json.loads(text).get("error", text))
                except (ValueError, AttributeError):
                    reason = text
                raise XrayError(f"the emulator refused {method} {PREFIX}{path} ({response.status}): "
                                f"{' '.join(reason.split())[:300]}", "see `xray exchange-sim --help`")
            return await response.json()


def loadtest_bundle(symbols: list[str], config: LoadTestConfig) -> Bundle:
    return Bundle(
        exchange="mexc", timeframe=config.timeframe,
        symbols=[{"symbol": s, "strategy": "sma_cross", "params": {"fast": config.fast, "slow": config.slow},
                  "group": 0} for s in symbols],
        risk_profiles={}, models={}, feature_version="loadtest", code_version="loadtest",
        data_versions={s: "emulator" for s in symbols},
    )


async def _symbols(http: aiohttp.ClientSession, base_url: str, count: int) -> list[str]:
    async with http.get(base_url + "/api/v3/exchangeInfo") as response:
        info = await response.json()
    symbols = [f"{s['baseAsset']}/{s['quoteAsset']}" for s in info["symbols"] if s["quoteAsset"] == "USDT"]
    symbols = [s for s in symbols if s not in BROKEN]
    if count > len(symbols):
        raise ConfigError(f"--symbols {count}: the emulator lists {len(symbols)} usable USDT pairs",
                          f"use at most {len(symbols)}")
    return symbols[:count]


def _add_users(settings: RuntimeSettings, accounts: list[dict[str, str]]) -> None:
    store = UserStore(db.connect(settings.database_url), KeyVault(settings.fernet_key))
    risk = RiskSettings(trade_percentage=0.05, max_position_usd=500.0)
    store.add_many(NewUser(f"load{i:05d}", f"Load user {i}", a["key"], a["secret"], risk=risk)
                   for i, a in enumerate(accounts))
    store.engine.dispose()


async def _audit_all(admin: EmulatorAdmin, service: TradingService, keys: dict[str, str]) -> AuditResult:
    total = AuditResult()
    gate = asyncio.Semaphore(32)

    async def one(user_id: str, key: str) -> None:
        async with gate:
            truth = await admin.call("GET", f"/accounts/{key}")
        result = await asyncio.to_thread(audit, truth, service.parts.journal, user_id)
        total.duplicate_orders += result.duplicate_orders
        total.lost_fills += result.lost_fills
        total.state_mismatches += result.state_mismatches
        total.details.extend(result.details[:3])

    await asyncio.gather(*(one(u, k) for u, k in keys.items()))
    return total


async def _run(config: LoadTestConfig, base_url: str, workdir: Path) -> dict[str, Any]:
    began = time.perf_counter()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as http:
        admin = EmulatorAdmin(http, base_url)
        symbols = await _symbols(http, base_url, config.symbols)
        created = await admin.call("POST", "/accounts", {"count": config.users,
                                                         "funds": {"USDT": config.funds_usdt}})
        settings = RuntimeSettings(
            database_url=config.database_url or f"sqlite:///{workdir / 'runtime.db'}",
            redis_url=config.redis_url, redis_prefix=f"xray-load-{os.getpid()}",
            bundle_dir=workdir / "bundles", fernet_key=Fernet.generate_key().decode(), paper_url=base_url,
            reconcile_every_s=1e9, http_port=0, max_order_concurrency=128,
        )
        publish(loadtest_bundle(symbols, config), settings.bundle_dir)
        await asyncio.to_thread(_add_users, settings, created["accounts"])
        keys = {f"load{i:05d}": a["key"] for i, a in enumerate(created["accounts"])}
        parts = Components.build(settings, TelegramSettings(), ExchangeSettings(url=base_url, timeout_s=30))
        service = TradingService(parts)
        try:  # whatever fails from here on, the service (its sessions, its database) is stopped
            await service.start()
            setup_s = time.perf_counter() - began
            if config.faults:
                await admin.call("POST", "/faults", {"spec": config.faults})
            step_ms = timeframe_ms(config.timeframe)
            ticked = time.perf_counter()
            last_ack_ms: list[float] = []
            settled_ms: list[float] = []
            for _ in range(config.ticks):
                started = time.monotonic()
                reports_before = len(service.reports)
                await admin.call("POST", "/clock/advance", {"ms": step_ms})
                await _trade_bar(service)
                acked = [r.sent_at for r in service.reports[reports_before:] if r.orders and r.sent_at]
                if acked:
                    last_ack_ms.append((max(acked) - started) * 1000)
                    settled_ms.append((time.monotonic() - started) * 1000)
                # Bars are a minute or more apart in real trading; here they come back to back. Keep
                # at least MIN_TICK_GAP_S between them so the IP weight budget for market data
                # refills as it would between real bars (50 klines need ~2 s at MEXC's 500 / 10 s).
                await asyncio.sleep(max(0.0, MIN_TICK_GAP_S - (time.monotonic() - started)))
            trading_s = time.perf_counter() - ticked
            faults = await admin.call("GET", "/faults") if config.faults else None
            await admin.call("POST", "/faults", {"spec": ""})
            await admin.call("POST", "/clock/advance", {"ms": step_ms})  # let partial fills complete
            unsettled = await _settle_open_orders(service)
            # Reconcile the users whose last word on an order was not final (a fault left it in
            # doubt, a partial fill); the audit below then checks every account, these included.
            final = {o.client_order_id: o for r in service.reports for o in r.orders}
            in_doubt = sorted({o.user_id for o in final.values() if not o.terminal})
            repaired = await service.reconcile(in_doubt)
            audited = time.perf_counter()
            result = await _audit_all(admin, service, keys)
            audit_s = time.perf_counter() - audited
            stats = await admin.call("GET", "/stats")
            placed = len({o.client_order_id for r in service.reports for o in r.orders})
            wire = await _wire(admin, base_url, symbols[0], placed, config)
        finally:
            await service.stop()
    latencies = np.asarray(service.latencies_s) * 1000
    orders = list({o.client_order_id: o for r in service.reports for o in r.orders}.values())
    execution_s = sum(r.execution_s for r in service.reports if r.orders)
    send_s = sum(r.send_s for r in service.reports if r.orders)
    return {
        "users": config.users, "symbols": config.symbols, "ticks": config.ticks,
        "duplicate_ids": config.duplicate_ids,
        "p50_ms": round(float(np.percentile(latencies, 50)), 2) if len(latencies) else None,
        "p99_ms": round(float(np.percentile(latencies, 99)), 2) if len(latencies) else None,
        "orders": len(orders),
        "rate_limit_violations": int(stats["rate_limit_violations"]),
        "duplicate_orders": result.duplicate_orders, "lost_fills": result.lost_fills,
        "state_mismatches": result.state_mismatches,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "fills": int(stats["fills"]), "rejected": sum(o.status.value == "rejected" for o in orders),
        "rejected_by_reason": rejections_by_reason(orders),
        "fault_429s": int(stats["responses_429"]["fault"]), "faults_fired": (faults or {}).get("fired"),
        "limiter_waits": int(parts.limiter.waits), "setup_s": round(setup_s, 1),
        "trading_s": round(trading_s, 1), "audit_s": round(audit_s, 1), "audit_details": result.details[:5],
        "reconciled_users": len(in_doubt), "reconcile_diffs": {k: v for k, v in repaired.items() if v},
        "unsettled_after_ticks": unsettled,
        "tick_decision_ms": [round(r.decision_s * 1000, 1) for r in service.reports],
        "tick_orders": [len(r.orders) for r in service.reports],
        "order_throughput": round(len(orders) / send_s, 1) if send_s > 0 else None,
        "last_ack_ms_p99": round(float(np.percentile(last_ack_ms, 99)), 1) if last_ack_ms else None,
        "settled_orders_per_s": round(len(orders) / execution_s, 1) if execution_s > 0 else None,
        "settled_ms_p99": round(float(np.percentile(settled_ms, 99)), 1) if settled_ms else None,
        "journal_writes_per_commit": round(parts.executor.batcher.writes
                                           / max(parts.executor.batcher.transactions, 1), 1),
        "wire_orders_per_s": wire.orders_per_s, "wire_orders": wire.acknowledged,
        "wire_refused": wire.refused,
    }


async def _wire(admin: EmulatorAdmin, base_url: str, symbol: str, orders: int,
                config: LoadTestConfig) -> Any:
    """`xray_sim.wire` on fresh funded keys of the same emulator (faults cleared), as many orders as
    the runtime placed (at least 500, at most 5,000)."""
    created = await admin.call("POST", "/accounts", {"count": min(config.users, WIRE_ACCOUNTS),
                                                     "funds": {"USDT": config.funds_usdt}})
    return await wire_orders_per_s(base_url, created["accounts"], symbol.replace("/", ""),
                                   min(max(orders, 500), 5_000))


def rejections_by_reason(orders: list[Any]) -> dict[str, int]:
    """Rejected orders counted by their reason, with ids and numbers blanked so that alike reasons
    group together."""
    counts: dict[str, int] = {}
    for order in orders:
        if order.status.value == "rejected":
            reason = _VARYING.sub("#", order.reason or "unknown")[:120]
            reason = f"{order.side.value} ({order.intent}): {reason}"
            counts[reason] = counts.get(reason, 0) + 1
    return dict(sorted(counts.items(), key=lambda item: -item[1]))


async def _trade_bar(service: TradingService, attempts: int = 30) -> None:
    """Step as the service's own loop does until the bar is done: a step that met a fault is
    retried, and a bar with orders in doubt is decided again (same ids, nothing doubled)."""
    for _ in range(attempts):
        await service.safe_step()
        if service.last_error is None and not service.in_doubt:
            return
        await asyncio.sleep(0.2)


async def _settle_open_orders(service: TradingService, rounds: int = 20, pause_s: float = 2.0) -> int:
    """After the last tick, settle what faults left open the way the service does before each bar
    (adopt what the exchange has; send again, same id, what it never got once its sends are dead),
    until nothing is open or `rounds` pass. Returns how many orders were open after the ticks."""
    journal = service.parts.journal
    opened = len(await asyncio.to_thread(journal.open_orders))
    for _ in range(rounds):
        if not await asyncio.to_thread(journal.open_orders):
            break
        await service.follow_open_orders()
        await asyncio.sleep(pause_s)
    return opened


def run_loadtest(config: LoadTestConfig) -> dict[str, Any]:
    with contextlib.ExitStack() as stack:
        scratch = tempfile.TemporaryDirectory(prefix="xray-load-")
        workdir = config.workdir or Path(stack.enter_context(scratch))
        base_url = stack.enter_context(emulator_process(config.seed, start_ms=config.market_start_ms,
                                                        duplicate_ids=config.duplicate_ids))
        if config.processes > 1 or config.chaos:
            from xray_sim.chaos import run_processes

            return asyncio.run(run_processes(config, base_url, workdir))
        return asyncio.run(_run(config, base_url, workdir))
