"""Shared pieces of the end-to-end service tests: a fast-crossing bundle, funded emulator users in the
runtime's user store, a started `TradingService`, and bars advanced one minute at a time.

`admin` below is the emulator's admin client (tests/conftest.py's `fixed_admin` fixture)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.engine import Engine

from xray_core.bundle import Bundle
from xray_core.settings import ExchangeSettings
from xray_runtime import db
from xray_runtime.components import Components
from xray_runtime.crypto import KeyVault
from xray_runtime.service import TickReport, TradingService
from xray_runtime.settings import RuntimeSettings, TelegramSettings
from xray_runtime.users import RiskSettings, UserStore

MINUTE = 60_000
SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]


def fast_bundle(symbols: Sequence[str] = SYMBOLS, fast: int = 2, slow: int = 3) -> Bundle:
    """sma_cross on 1m bars with short windows: it crosses every few bars, so a test sees orders."""
    return Bundle(
        exchange="mexc", timeframe="1m",
        symbols=[{"symbol": s, "strategy": "sma_cross", "params": {"fast": fast, "slow": slow}, "group": 0}
                 for s in symbols],
        risk_profiles={}, models={}, feature_version="f", code_version="c",
        data_versions={s: f"data-{s}" for s in symbols},
    )


async def start_service(settings: RuntimeSettings, emulator_url: str,
                        model_loader: Callable[[str], Any] | None = None) -> TradingService:
    """A started service on `settings`, trading against the emulator at `emulator_url` (models loaded
    by `model_loader`, default the MLflow registry's)."""
    parts = Components.build(settings, TelegramSettings(), ExchangeSettings(url=emulator_url),
                             model_loader=model_loader)
    service = TradingService(parts)
    parts.health = service.health
    await service.start()
    return service


def add_users(
    settings: RuntimeSettings, admin: Any, n: int, funds: str = "1000"
) -> tuple[UserStore, dict[str, str]]:
    """Users user0..user{n-1}, each with a fresh funded emulator account, in the runtime's store;
    returns the store and each user's API key."""
    store = UserStore(*store_args(settings))
    keys = {}
    for i in range(n):
        key, secret = admin.create_account({"USDT": funds})
        store.add(f"user{i}", f"User {i}", key, secret, risk=RiskSettings(trade_percentage=0.2))
        keys[f"user{i}"] = key
    return store, keys


def store_args(settings: RuntimeSettings) -> tuple[Engine, KeyVault]:
    """The (engine, key vault) a `UserStore` on `settings` is built from."""
    return db.connect(settings.database_url), KeyVault(settings.fernet_key)


async def run_bars(service: TradingService, admin: Any, bars: int, bar_ms: int = MINUTE) -> list[TickReport]:
    """Advance the emulator's clock a bar (`bar_ms`) and step the service, `bars` times; the tick
    reports."""
    reports = []
    for _ in range(bars):
        await asyncio.to_thread(admin.advance, bar_ms)
        report = await service.step()
        if report is not None:
            reports.append(report)
    return reports
