"""The trading part of `xray demo`: the runtime trades a few paper users on the bundle the pipeline just
promoted, against the demo's emulator, for a few accelerated bars.

Each demo user gets a fresh emulator account (its own funds) and a row in a demo-only runtime database
(`$XRAY_HOME/demo/runtime.db`, recreated on every run, never the operator's own `runtime.db`), its API
key encrypted with a Fernet key made for this run and never shown. The market clock is stepped one bar
of the bundle's timeframe at a time and the service trades each new bar, exactly as it would live.
Afterwards the service reconciles, and every account is audited against the emulator's own record:
the numbers printed come from the runtime's journal and book, and the audit says whether the exchange
agrees with them.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xray_core.errors import XrayError

DEFAULT_BARS = 72  # three days of 1h bars: ~20-40 s against the in-process emulator


@dataclass(frozen=True)
class DemoUser:
    """A paper user of the demo: its risk profile, funds and own limits."""

    user_id: str
    account: str
    profile: str
    funds_usdt: float
    trade_percentage: float
    max_position_usd: float


DEMO_USERS: tuple[DemoUser, ...] = (
    DemoUser("ada", "Ada (demo)", "conservative", 2_000.0, 0.05, 250.0),
    DemoUser("ben", "Ben (demo)", "balanced", 10_000.0, 0.10, 1_500.0),
    DemoUser("cyd", "Cyd (demo)", "balanced", 5_000.0, 0.15, 1_000.0),
    DemoUser("dee", "Dee (demo)", "aggressive", 25_000.0, 0.25, 6_000.0),
)


@dataclass(frozen=True)
class UserResult:
    """One user after the run: the journal's orders and fills, the book's money at the last close."""

    user_id: str
    profile: str
    start_equity: float
    final_equity: float
    cash: float
    positions: dict[str, float]  # symbol -> base amount held
    orders: int
    buys: int
    sells: int
    rejected: int
    fills: int
    fees_quote: float  # every fee valued in the quote currency at its fill's price

    @property
    def pnl(self) -> float:
        return self.final_equity - self.start_equity

    @property
    def pnl_pct(self) -> float:
        return self.pnl / self.start_equity if self.start_equity else 0.0


@dataclass(frozen=True)
class AuditTotals:
    users: int
    duplicate_orders: int
    lost_fills: int
    state_mismatches: int
    details: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.duplicate_orders or self.lost_fills or self.state_mismatches)


@dataclass(frozen=True)
class TradingResult:
    bundle_version: str
    timeframe: str
    strategies: dict[str, str]  # symbol -> "strategy params"
    bars: int  # bars stepped
    ticks: int  # bars the service decided on
    signals: int  # symbol-bars decided (one signal per symbol per bar)
    intents: int
    skipped: dict[str, str]  # symbol -> why it was not decided on the last bar
    users: list[UserResult]
    orders: list[Any]  # the journal's orders (xray_core.trading.orders.Order), oldest first
    audit: AuditTotals
    setup_s: float
    trading_s: float
    step_s: list[float]
    problems: dict[str, str] = field(default_factory=dict)  # user -> why it did not trade
    # The shadow books (xray_core.learning.shadow_record.book_summary rows): models never ordered.
    shadow: list[dict[str, Any]] = field(default_factory=list)

    @property
    def total_orders(self) -> int:
        return len(self.orders)

    @property
    def total_fills(self) -> int:
        return sum(u.fills for u in self.users)


def run_demo_trading(emulator_url: str, bundle_dir: Path, home: Path, *, bars: int = DEFAULT_BARS,
                     users: Sequence[DemoUser] = DEMO_USERS, show: bool = True) -> TradingResult:
    """Trade `users` on the bundle in `bundle_dir` for `bars` bars; print the report when `show`."""
    result = asyncio.run(trade_demo_users(emulator_url, bundle_dir, home, bars=bars, users=users))
    if show:
        from xray_cli.demo_report import print_trading

        print_trading(result)
    return result


async def trade_demo_users(emulator_url: str, bundle_dir: Path, home: Path, *, bars: int = DEFAULT_BARS,
                           users: Sequence[DemoUser] = DEMO_USERS) -> TradingResult:
    import aiohttp
    from cryptography.fernet import Fernet

    from xray_core.settings import ExchangeSettings
    from xray_runtime.components import Components
    from xray_runtime.service import TradingService
    from xray_runtime.settings import RuntimeSettings, TelegramSettings

    if bars < 1:
        raise XrayError("the demo trades at least one bar", "pass bars >= 1")
    began = time.perf_counter()
    workdir = _fresh_workdir(home)
    settings = RuntimeSettings(
        database_url=f"sqlite:///{(workdir / 'runtime.db').resolve()}", redis_url=None,
        bundle_dir=bundle_dir, fernet_key=Fernet.generate_key().decode("ascii"), paper_url=emulator_url,
        http_port=0, reconcile_every_s=1e9,  # reconciled at start and once at the end
    )
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        admin = _Admin(http, emulator_url)
        keys = await _add_users(admin, settings, users)
        exchange = ExchangeSettings(id="mexc", url=emulator_url, timeout_s=30)
        parts = Components.build(settings, TelegramSettings(bot_token=None), exchange)
        service = TradingService(parts)
        await service.start()
        try:
            promoted = parts.watcher.current
            if promoted is None:
                raise XrayError(f"the runtime did not load a bundle: {parts.watcher.refused}",
                                "run the pipeline first (`make demo`)")
            from xray_core.timeframes import timeframe_ms

            step_ms = timeframe_ms(promoted.timeframe)
            setup_s = time.perf_counter() - began
            ticked = time.perf_counter()
            step_s = []
            for _ in range(bars):
                started = time.perf_counter()
                await admin.call("POST", "/clock/advance", {"ms": step_ms})
                await service.step()
                step_s.append(time.perf_counter() - started)
            trading_s = time.perf_counter() - ticked
            await service.reconcile()
            audit = await _audit(admin, service, keys)
            timings = {"setup_s": setup_s, "trading_s": trading_s, "step_s": step_s}
            return await _collect(service, users, keys, bars, audit, timings)
        finally:
            await service.stop()


async def _collect(service: Any, users: Sequence[DemoUser], keys: dict[str, str], bars: int,
                   audit: AuditTotals, timings: dict[str, Any]) -> TradingResult:
    parts = service.parts
    promoted = parts.watcher.current
    prices = await _last_closes(parts, promoted.timeframe)
    problems = {p.user_id: p.reason for p in parts.roster.problems}
    for user in await asyncio.to_thread(parts.users.list):
        if user.user_id in keys and user.disabled_reason:
            problems[user.user_id] = user.disabled_reason
    orders = sorted((o for u in users for o in parts.journal.orders(u.user_id)),
                    key=lambda o: (o.bar_ms, o.user_id, o.symbol))
    reports = service.reports
    from xray_core.learning.shadow_record import book_summary, shadow_frame

    shadow = book_summary(shadow_frame(await asyncio.to_thread(service.shadow.rows))).to_dicts()
    return TradingResult(
        bundle_version=promoted.version, timeframe=promoted.timeframe,
        strategies={s: f"{p.strategy.name} {p.params_json}" for s, p in promoted.plans.items()},
        bars=bars, ticks=len(reports), signals=sum(r.signals for r in reports),
        intents=sum(r.intents for r in reports), skipped=dict(reports[-1].skipped) if reports else {},
        users=[_summarise(service, u, prices) for u in users], orders=orders, audit=audit,
        problems=problems, shadow=shadow, **timings,
    )


class _Admin:
    """The emulator's /_emulator API."""

    def __init__(self, http: Any, base_url: str) -> None:
        self.http, self.url = http, base_url.rstrip("/") + "/_emulator"

    async def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        async with self.http.request(method, self.url + path, json=body) as response:
            response.raise_for_status()
            return await response.json()


def _fresh_workdir(home: Path) -> Path:
    """`home/demo`, emptied: each demo run starts with no users and an empty journal."""
    workdir = home / "demo"
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    return workdir


async def _add_users(admin: _Admin, settings: Any, users: Sequence[DemoUser]) -> dict[str, str]:
    """An emulator account per user, funded with its USDT; the users stored in paper mode. Returns
    user id -> API key (the emulator's name for the account)."""
    from xray_runtime import db
    from xray_runtime.crypto import KeyVault
    from xray_runtime.users import RiskSettings, UserStore

    body = {"accounts": [{"funds": {"USDT": str(u.funds_usdt)}} for u in users]}
    created = (await admin.call("POST", "/accounts", body))["accounts"]
    store = UserStore(db.connect(settings.database_url), KeyVault(settings.fernet_key))
    try:
        for user, account in zip(users, created, strict=True):
            risk = RiskSettings(profile=user.profile, trade_percentage=user.trade_percentage,
                                max_position_usd=user.max_position_usd)
            await asyncio.to_thread(store.add, user.user_id, user.account, account["key"], account["secret"],
                                    mode="paper", risk=risk)
    finally:
        store.engine.dispose()
    return {u.user_id: a["key"] for u, a in zip(users, created, strict=True)}


async def _audit(admin: _Admin, service: Any, keys: dict[str, str]) -> AuditTotals:
    """Every user's journal against the emulator's own record of the account."""
    from xray_runtime.reconcile import audit

    duplicates = lost = mismatches = 0
    details: list[str] = []
    for user_id, key in keys.items():
        truth = await admin.call("GET", f"/accounts/{key}")
        result = await asyncio.to_thread(audit, truth, service.parts.journal, user_id)
        duplicates += result.duplicate_orders
        lost += result.lost_fills
        mismatches += result.state_mismatches
        details += [f"{user_id}: {d}" for d in result.details[:3]]
    return AuditTotals(len(keys), duplicates, lost, mismatches, details)


async def _last_closes(parts: Any, timeframe: str) -> dict[str, float]:
    """The newest closed bar's close of every symbol in the book (what equity is valued at)."""
    windows = await parts.candle_windows(timeframe)
    data = await windows.refresh(list(parts.book.symbols), await windows.now_ms())
    return {s: float(b.bars.close[-1]) for s, b in data.items() if len(b.bars)}


def _summarise(service: Any, user: DemoUser, prices: dict[str, float]) -> UserResult:
    parts = service.parts
    book, journal = parts.book, parts.journal
    orders = journal.orders(user.user_id)
    fills = journal.fills(user.user_id)
    fees = 0.0
    for fill in fills:
        if fill.fee_currency == book.quote:
            fees += fill.fee
        elif fill.fee_currency == fill.symbol.split("/")[0]:
            fees += fill.fee * fill.price
    i = book.user_index.get(user.user_id)
    if i is None:  # disabled before the end: not in the book, nothing valued
        cash, positions = 0.0, {}
    else:
        cash = float(book.cash[i])
        positions = {s: float(book.position[i, j]) for s, j in book.symbol_index.items()
                     if book.position[i, j] > 0}
    final = cash + sum(amount * prices.get(s, 0.0) for s, amount in positions.items())
    return UserResult(
        user_id=user.user_id, profile=user.profile, start_equity=user.funds_usdt,
        final_equity=final if i is not None else float("nan"), cash=cash, positions=positions,
        orders=len(orders), buys=sum(o.side.value == "buy" for o in orders),
        sells=sum(o.side.value == "sell" for o in orders),
        rejected=sum(o.status.value == "rejected" for o in orders), fills=len(fills), fees_quote=fees,
    )
