"""What the API and the pages show, read from the runtime's SQL and the lake; plain JSON-ready dicts.

Every user read takes the user id from the caller's token (never from the request), so one user's
token has no way to name another user's rows."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from xray_core.trading.orders import Order
from xray_runtime.equity_log import EquityLog
from xray_runtime.journal import Journal
from xray_runtime.risk_store import RiskStore
from xray_runtime.user_control import UserControl
from xray_runtime.users import UserStore


@dataclass(frozen=True)
class Sources:
    """Where the dashboard reads from."""

    engine: Engine
    duckdb_file: Path
    lake_dir: Path
    bundle_dir: Path
    exchange: str
    timeframe: str
    tracking_uri: str
    runtime_settings: Any  # xray_runtime.settings.RuntimeSettings: processes, health, rate limits


def iso(ms: int | None) -> str | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")


def _num(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), 8)


# ---- one user's account ------------------------------------------------------------------------

def account(src: Sources, user_id: str) -> dict[str, Any]:
    """The user, their mode, latest equity and risk state (`GET /api/me`)."""
    user = UserStore(src.engine, None).get(user_id)
    curve = EquityLog(src.engine).curve(user_id, limit=1)
    saved = RiskStore(src.engine).load([user_id]).get(user_id)
    control = UserControl(src.engine).get(user_id)
    return {
        "user_id": user.user_id, "account": user.account, "exchange": user.exchange, "mode": user.mode,
        "status": user.status, "disabled_reason": user.disabled_reason,
        "control": control.state,
        "equity": curve[-1][1] if curve else None, "equity_at": iso(curve[-1][0]) if curve else None,
        "risk": {
            "profile": user.risk.profile, "trade_percentage": user.risk.trade_percentage,
            "max_position_usd": user.risk.max_position_usd, "max_daily_loss": user.risk.max_daily_loss,
            "max_drawdown": user.risk.max_drawdown,
            "killed": bool(saved.killed) if saved else False,
            "day_open_equity": _num(saved.day_open) if saved else None,
            "peak_equity": _num(saved.peak) if saved else None,
        },
    }


def trade(order: Order, fills: int = 0) -> dict[str, Any]:
    lineage = order.lineage
    return {
        "client_order_id": order.client_order_id, "symbol": order.symbol, "side": str(order.side),
        "amount": order.amount, "filled": order.filled, "average": order.average, "fills": fills,
        "status": str(order.status), "reason": order.reason, "bar": iso(order.bar_ms), "bar_ms": order.bar_ms,
        "lineage": {
            "model_version": lineage.model_version, "parameter_set": f"{lineage.strategy} {lineage.params}",
            "strategy": lineage.strategy, "params": json.loads(lineage.params or "{}"),
            "data_version": lineage.data_version, "bundle_version": lineage.bundle_version,
        },
    }


def trades(src: Sources, user_id: str) -> list[dict[str, Any]]:
    """The user's orders with their lineage, newest first."""
    journal = Journal(src.engine)
    counts: dict[str, int] = {}
    for fill in journal.fills(user_id):
        counts[fill.client_order_id] = counts.get(fill.client_order_id, 0) + 1
    orders = journal.orders(user_id)
    return [trade(o, counts.get(o.client_order_id, 0)) for o in reversed(orders)]


def one_trade(src: Sources, user_id: str, client_order_id: str) -> dict[str, Any] | None:
    """The user's order `client_order_id`; None when there is none or it is someone else's."""
    order = Journal(src.engine).get(client_order_id)
    return None if order is None or order.user_id != user_id else trade(order)


def open_orders(src: Sources, user_id: str) -> list[dict[str, Any]]:
    return [trade(o) for o in Journal(src.engine).open_orders(user_id)]


def positions(src: Sources, user_id: str) -> list[dict[str, Any]]:
    """What the user's fills hold per symbol, valued at the last fill price seen on the symbol (the
    dashboard does not ask the exchange for a price)."""
    journal = Journal(src.engine)
    held = journal.positions([user_id]).get(user_id, {})
    last: dict[str, float] = {}
    for fill in journal.fills(user_id):
        last[fill.symbol] = fill.price
    return [{"symbol": s, "amount": round(a, 10), "last_fill_price": last.get(s),
             "value": round(a * last[s], 4) if s in last else None}
            for s, a in sorted(held.items()) if abs(a) > 1e-12]


def equity_curve(src: Sources, user_id: str) -> list[dict[str, Any]]:
    curve = EquityLog(src.engine).curve(user_id)
    return [{"ts_ms": t, "at": iso(t), "equity": round(e, 4)} for t, e in curve]
