"""A runtime database with two users who both traded (orders, fills, equity), their tokens and an
operator's, and the dashboard app on it; a running server for the browser and fuzz tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
import uvicorn
from cryptography.fernet import Fernet

from xray_core.bundle import Bundle, publish
from xray_core.research.store import LakeTable, ResearchStore
from xray_core.trading.orders import Fill, Lineage, Order, OrderStatus, Side, client_order_id
from xray_runtime import db
from xray_runtime.api_tokens import issue
from xray_runtime.crypto import KeyVault
from xray_runtime.equity_log import EquityLog
from xray_runtime.journal import Journal
from xray_runtime.settings import RuntimeSettings
from xray_runtime.users import UserStore
from xray_web.app import create_app
from xray_web.reads import Sources

HOUR = 3_600_000
T0 = 1_760_000_000_000 - 1_760_000_000_000 % HOUR


@dataclass
class World:
    sources: Sources
    tokens: dict[str, str]  # "ada", "ben", "operator" -> token
    orders: dict[str, list[str]]  # user -> client order ids


def _trade(journal: Journal, user: str, symbol: str, bar: int, side: Side, price: float, amount: float,
           model: str | None) -> str:
    lineage = Lineage(f"bundle-{user}", "rsi_reversion", '{"period": 14}', model, f"data-{user}-{bar}")
    cid = client_order_id(user, symbol, T0 + bar * HOUR, side.value)
    order = Order(cid, user, symbol, side, amount, T0 + bar * HOUR, side.value, lineage,
                  status=OrderStatus.FILLED, filled=amount, average=price, updated_ms=T0 + bar * HOUR)
    journal.upsert_orders([order])
    journal.add_fills([Fill(f"t-{cid}", cid, user, symbol, side, amount, price, 0.0, "USDT",
                            T0 + bar * HOUR + 1000)])
    return cid


def build_world(tmp: Path) -> World:
    engine = db.connect(f"sqlite:///{tmp / 'runtime.db'}")
    users = UserStore(engine, KeyVault(Fernet.generate_key().decode()))
    journal, equity = Journal(engine), EquityLog(engine)
    orders: dict[str, list[str]] = {}
    for n, (user, symbol) in enumerate((("ada", "BTC/USDT"), ("ben", "ETH/USDT"))):
        users.add(user, f"{user.title()} (test)", f"key-{user}-0001", f"secret-{user}-0001")
        orders[user] = [
            _trade(journal, user, symbol, 1, Side.BUY, 100.0 + n, 1.0 + n, "7" if user == "ada" else None),
            _trade(journal, user, symbol, 5, Side.SELL, 110.0 + n, 0.5, "7" if user == "ada" else None),
        ]
        for bar in range(12):
            equity.record([user], [1000.0 * (n + 1) + 10 * bar], T0 + bar * HOUR)
    _seed_lake(tmp)
    tokens = {user: issue(engine, user) for user in orders} | {"operator": issue(engine, None, operator=True)}
    runtime = RuntimeSettings(database_url=str(engine.url), bundle_dir=tmp / "bundles",
                              http_port=_free_port())
    sources = Sources(engine=engine, duckdb_file=tmp / "xray.duckdb", lake_dir=tmp / "lake",
                      bundle_dir=tmp / "bundles", exchange="mexc", timeframe="1h",
                      tracking_uri=f"sqlite:///{tmp / 'mlflow.db'}", runtime_settings=runtime)
    return World(sources, tokens, orders)


LAKE_SYMBOLS = ("BTC/USDT", "ETH/USDT", "TGT/USDT")


def _seed_lake(tmp: Path) -> None:
    """Research tables as the pipeline writes them (two kept, one dropped with its reason), news
    sentiment, and a promoted bundle."""
    scope = {"exchange": "mexc", "timeframe": "1h"}
    store = ResearchStore(tmp / "xray.duckdb", tmp / "lake")
    store.write(LakeTable.FILTERED_SYMBOLS, pl.DataFrame({
        "symbol": list(LAKE_SYMBOLS), "kept": [True, True, False],
        "reason": ["sma_cross clears every threshold"] * 2 + ["data quality: gaps and zero prices"],
        "best_strategy": ["sma_cross", "sma_cross", None]}), scope)
    store.write(LakeTable.CORRELATION_CLUSTERS, pl.DataFrame(
        {"symbol": ["BTC/USDT", "ETH/USDT"], "cluster": [1, 1], "position": [0, 1]}), scope)
    pairs = [(a, b, 1.0 if a == b else 0.8) for a in LAKE_SYMBOLS[:2] for b in LAKE_SYMBOLS[:2]]
    store.write(LakeTable.CORRELATION_PAIRS, pl.DataFrame(
        {"sample": ["full"] * 4, "symbol_a": [p[0] for p in pairs], "symbol_b": [p[1] for p in pairs],
         "corr": [p[2] for p in pairs], "n_obs": [100] * 4}), scope)
    store.write(LakeTable.NEWS_SENTIMENT, pl.DataFrame({
        "symbol": ["BTC/USDT", "BTC/USDT"], "hour": [T0, T0 + HOUR], "n_headlines": [3, 2],
        "sentiment_mean": [0.1, -0.2], "sentiment_decayed": [0.1, -0.05], "positive": [2, 0],
        "negative": [1, 2]}), {"exchange": "mexc"})
    publish(Bundle(exchange="mexc", timeframe="1h",
                   symbols=[{"symbol": s, "strategy": "sma_cross", "params": {"fast": 10, "slow": 30},
                             "group": 1} for s in LAKE_SYMBOLS[:2]],
                   risk_profiles={}, models={}, feature_version="f", code_version="c", data_versions={}),
            tmp / "bundles")


@pytest.fixture
def world(tmp_path: Path) -> World:
    return build_world(tmp_path)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(world: World) -> Iterator[tuple[str, World]]:
    """The app served by uvicorn on a free loopback port, in a thread."""
    port = _free_port()
    config = uvicorn.Config(create_app(world.sources), host="127.0.0.1", port=port, log_level="warning")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    while not running.started:  # no wall-clock limit: the thread either starts or raises
        if not thread.is_alive():
            raise RuntimeError("the dashboard server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", world
    finally:
        running.should_exit = True
        thread.join()
