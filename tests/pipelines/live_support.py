"""Shared by the live-fills and decay tests: synthetic candles in a lake, and a runtime journal written
through the runtime's own API (so the journal's tables are tested as the contract they are)."""

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import polars as pl

from xray_core.candles.store import SeriesKey
from xray_core.trading.orders import Fill, Lineage, Order, OrderStatus, Side, client_order_id
from xray_pipelines.resources import (
    ExchangeResource,
    LakeResource,
    MarketDataResource,
    MarketScope,
    RuntimeJournalResource,
)
from xray_runtime.db import connect
from xray_runtime.journal import Journal
from xray_sim.exchange.market import DAY_MS, SyntheticMarket

SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "ADA/USDT"]
HOUR_MS = 3_600_000
HELD_OUT = 400  # bars after a champion's trained_until (the decay and demotion tests)
HORIZON = 24


def synthetic_candles(days: int = 60) -> dict[str, pl.DataFrame]:
    market = SyntheticMarket(seed=11, history_days=days)
    end = market.listed_from_ms + days * DAY_MS
    out = {}
    for symbol in SYMBOLS:
        bars = market.bars(symbol, "1h", market.listed_from_ms, end, end)
        out[symbol] = pl.DataFrame({
            "timestamp": pl.Series(bars.timestamp).cast(pl.Datetime("ms")).dt.replace_time_zone("UTC"),
            "open": bars.open, "high": bars.high, "low": bars.low, "close": bars.close, "volume": bars.volume,
        })
    return out


def market_with(tmp_path: Path, candles: dict[str, pl.DataFrame]) -> MarketScope:
    """A lake holding `candles` as good 1h MEXC series."""
    lake = LakeResource(duckdb_path=str(tmp_path / "xray.duckdb"), lake_dir=str(tmp_path / "lake"))
    store = lake.candles()
    for symbol, frame in candles.items():
        store.upsert(SeriesKey("mexc", symbol, "1h"), frame)
    verdicts = pl.DataFrame({
        "symbol": list(candles), "bars": [c.height for c in candles.values()],
        "verdict": ["good"] * len(candles), "reason": ["all checks passed"] * len(candles),
    })
    store.save_quality("mexc", "1h", verdicts, 0)
    return MarketScope(
        exchange=ExchangeResource(exchange_id="mexc"),
        lake=lake,
        market_data=MarketDataResource(timeframe="1h", history_days=60),
    )


def journal_resource(tmp_path: Path) -> RuntimeJournalResource:
    return RuntimeJournalResource(database_url=f"sqlite:///{tmp_path / 'runtime.db'}")


def record_trades(
    resource: RuntimeJournalResource,
    trades: Iterable[tuple[str, int, Side, float]],
    model_version: str | None = "xray-gbm/1",
    user_id: str = "paper-1",
) -> int:
    """Journal one filled market order per (symbol, decision bar ms, side, price), as the runtime does:
    the order (written ahead, then filled) and its fill in the next bar. Returns the fills added."""
    journal = Journal(connect(resource.database_url))
    orders, fills = [], []
    for symbol, bar_ms, side, price in trades:
        intent = "enter" if side is Side.BUY else "exit"
        lineage = Lineage("bundle-1", "model" if model_version else "ema_cross", "{}", model_version,
                          f"data-1@{bar_ms}")
        cid = client_order_id(user_id, symbol, bar_ms, intent)
        filled_ms = bar_ms + HOUR_MS + 1_000
        orders.append(Order(cid, user_id, symbol, side, 1.0, bar_ms, intent, lineage, OrderStatus.FILLED,
                            filled=1.0, average=price, exchange_order_id=f"e{cid}", updated_ms=filled_ms))
        fills.append(Fill(f"t{cid}", cid, user_id, symbol, side, 1.0, price, 0.001 * price, "USDT",
                          filled_ms))
    journal.upsert_orders(orders)
    added = journal.add_fills(fills)
    journal.engine.dispose()
    return added


def bar_ms(frame: pl.DataFrame) -> np.ndarray:
    return frame["timestamp"].dt.epoch("ms").to_numpy()


def decided_trades(candles: dict[str, pl.DataFrame], symbols, good: bool):
    """Decisions from a bar before the held-out bars on: long over bar d+1 exactly when the open-to-open
    move it earns is up by more than the costs (good) or down (bad). Starts long, so every held-out bar
    is covered by a live decision."""
    trades = []
    for symbol in symbols:
        frame = candles[symbol]
        stamps, opens = bar_ms(frame), frame["open"].to_numpy()
        start = frame.height - HELD_OUT - 2
        held = True
        trades.append((symbol, int(stamps[start]), Side.BUY, float(opens[start + 1])))
        for d in range(start + 1, frame.height - 2):
            move = opens[d + 2] / opens[d + 1] - 1.0
            want = move > 0.004 if good else move < 0.0
            if want != held:
                side = Side.BUY if want else Side.SELL
                trades.append((symbol, int(stamps[d]), side, float(opens[d + 1])))
                held = want
    return trades
