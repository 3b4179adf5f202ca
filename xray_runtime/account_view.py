"""One user's account as the runtime's SQL records it: state, holdings, profit, trades.

What the Telegram bot and the web dashboard show a user. Everything is read from the runtime's own
tables (users, user_control, risk_state, the order journal), never from the exchange: a user asking
"/balance" a thousand times costs no exchange request and cannot trip its rate limits. So the numbers
are X-Ray's record of what it traded for the user, not the account's full balance (coins the user
holds beside X-Ray are not in it), valued at the last price X-Ray traded each symbol at.

Profit is by average cost: a buy adds its cost (and a fee paid in quote) to the symbol's basis; a sell
realises `proceeds - fee - average cost x amount`. A fee paid in the base currency reduces what is held;
a fee in a third currency (MEXC's MX discount) is not converted and is listed apart.

Every query names the user: no function here returns another user's rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from xray_core.trading.orders import TERMINAL, Lineage
from xray_runtime.journal import fills_table, orders_table
from xray_runtime.risk_store import risk_table
from xray_runtime.user_control import Control, UserControl
from xray_runtime.users import User, UserStore

__all__ = ["AccountView", "Holding", "Profit", "Status", "Trade"]

_TERMINAL = sorted(str(status) for status in TERMINAL)


@dataclass(frozen=True)
class Holding:
    symbol: str
    amount: float  # base units X-Ray holds for the user
    average_cost: float  # quote per base unit (NaN: nothing held)
    last_price: float  # the last price X-Ray traded the symbol at for this user

    @property
    def value(self) -> float:
        return self.amount * self.last_price


@dataclass(frozen=True)
class Profit:
    realised: float  # quote, after fees paid in quote
    unrealised: float  # held amounts at their last traded price, less their average cost
    fees_quote: float
    other_fees: dict[str, float] = field(default_factory=dict)  # currency -> amount
    per_symbol: dict[str, float] = field(default_factory=dict)  # realised per symbol
    trades: int = 0


@dataclass(frozen=True)
class Trade:
    symbol: str
    side: str
    amount: float
    price: float
    fee: float
    fee_currency: str
    timestamp_ms: int
    intent: str
    lineage: Lineage | None


@dataclass(frozen=True)
class Status:
    user: User
    control: Control
    killed: bool  # the risk kill switch (re-enabled by an operator, not by resume)
    day_open_equity: float  # the runtime's measure of today's opening equity (NaN: not measured)
    peak_equity: float
    open_orders: int
    holdings: int


class AccountView:
    """Read-only access to one user's records at a time through `engine`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def status(self, user_id: str) -> Status:
        user = UserStore(self.engine, None).get(user_id)  # UnknownUserError for an unknown id
        control = UserControl(self.engine).get(user_id)
        with self.engine.connect() as conn:
            risk = conn.execute(sa.select(risk_table).where(risk_table.c.user_id == user_id)).first()
            o = orders_table.c
            open_orders = conn.execute(sa.select(sa.func.count()).select_from(orders_table).where(
                o.user_id == user_id, o.status.not_in(_TERMINAL))).scalar_one()
        holdings = [h for h in self.holdings(user_id) if h.amount > 0]
        return Status(user, control, bool(risk.killed) if risk else False,
                      _float(risk.day_open if risk else None), _float(risk.peak if risk else None),
                      int(open_orders), len(holdings))

    def holdings(self, user_id: str) -> list[Holding]:
        """Per symbol X-Ray traded for the user: the amount still held (dust included), by symbol."""
        return _Ledger(self._fills(user_id)).holdings()

    def profit(self, user_id: str) -> Profit:
        return _Ledger(self._fills(user_id)).profit()

    def trades(self, user_id: str, limit: int = 10) -> list[Trade]:
        """The user's newest fills (newest first), each with the lineage of the order it filled."""
        f, o = fills_table.c, orders_table.c
        query = (sa.select(f.symbol, f.side, f.amount, f.price, f.fee, f.fee_currency, f.timestamp_ms,
                           o.intent, o.lineage)
                 .select_from(fills_table.outerjoin(orders_table, o.client_order_id == f.client_order_id))
                 .where(f.user_id == user_id)
                 .order_by(f.timestamp_ms.desc(), f.trade_id.desc()).limit(max(1, limit)))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [Trade(r.symbol, r.side, float(r.amount), float(r.price), float(r.fee), r.fee_currency,
                      int(r.timestamp_ms), r.intent or "", _lineage(r.lineage)) for r in rows]

    def _fills(self, user_id: str) -> list[Any]:
        f = fills_table.c
        query = (sa.select(f.symbol, f.side, f.amount, f.price, f.fee, f.fee_currency)
                 .where(f.user_id == user_id).order_by(f.timestamp_ms, f.trade_id))
        with self.engine.connect() as conn:
            return list(conn.execute(query).all())


class _Ledger:
    """Average-cost bookkeeping over one user's fills, in trade order."""

    def __init__(self, fills: list[Any]) -> None:
        self.amount: dict[str, float] = {}
        self.basis: dict[str, float] = {}
        self.last: dict[str, float] = {}
        self.realised: dict[str, float] = {}
        self.fees_quote = 0.0
        self.other_fees: dict[str, float] = {}
        self.count = len(fills)
        for fill in fills:
            self._apply(fill)

    def _apply(self, fill: Any) -> None:
        symbol, amount, price, fee = fill.symbol, float(fill.amount), float(fill.price), float(fill.fee)
        base, _, quote = symbol.partition("/")
        quote_fee = fee if fill.fee_currency == quote else 0.0
        base_fee = fee if fill.fee_currency == base else 0.0
        if fee and fill.fee_currency not in (base, quote):
            self.other_fees[fill.fee_currency] = self.other_fees.get(fill.fee_currency, 0.0) + fee
        self.fees_quote += quote_fee + base_fee * price  # a base fee valued at the fill's price
        held, basis = self.amount.get(symbol, 0.0), self.basis.get(symbol, 0.0)
        if fill.side == "buy":
            held, basis = held + amount - base_fee, basis + amount * price + quote_fee
        else:
            sold = min(amount, held) if held > 0 else 0.0
            cost = basis / held * sold if held > 0 else 0.0
            gain = amount * price - quote_fee - base_fee * price - cost
            self.realised[symbol] = self.realised.get(symbol, 0.0) + gain
            held, basis = max(held - amount - base_fee, 0.0), max(basis - cost, 0.0)
        self.amount[symbol], self.basis[symbol], self.last[symbol] = held, basis, price

    def holdings(self) -> list[Holding]:
        return [Holding(symbol, held, self.basis[symbol] / held if held > 0 else math.nan, self.last[symbol])
                for symbol, held in sorted(self.amount.items())]

    def profit(self) -> Profit:
        unrealised = sum(held * self.last[s] - self.basis[s] for s, held in self.amount.items() if held > 0)
        return Profit(sum(self.realised.values()), unrealised, self.fees_quote, dict(self.other_fees),
                      dict(sorted(self.realised.items())), self.count)


def _float(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _lineage(value: Any) -> Lineage | None:
    if not isinstance(value, dict):
        return None
    try:
        return Lineage.from_dict(value)
    except (KeyError, TypeError):
        return None
