"""The paper broker's books: virtual balances, orders and trades per paper user, in the runtime's SQL
database (beside the order journal, so they survive restarts and are shared by every runtime process).

Tables on the shared `METADATA`:

* `paper_balances` (user, asset) -> free amount. A user's rows are created once, with the starting
  funds, when their paper account is first used; `paper_accounts` records that it was.
* `paper_orders`, unique per (user, client order id): a second order under an id returns the first,
  so the broker deduplicates client order ids as MEXC does.
* `paper_trades`, one per fill.

`fill` is one transaction: the order, its trade and both balance changes commit together or not at
all, so an order the broker does not have was never placed. Balances only move through conditional
updates (`free >= amount`), so two processes filling for one user can never overdraw it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from xray_core.exchange.reports import BalanceReport, FillReport, OrderReport
from xray_core.trading.orders import OrderStatus, Side
from xray_runtime.db import METADATA

# Float tolerance when a balance is spent whole (cost computed as amount x price).
_DUST = 1e-9

paper_accounts = sa.Table(
    "paper_accounts", METADATA,
    sa.Column("user_id", sa.String(128), primary_key=True),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
)

paper_balances = sa.Table(
    "paper_balances", METADATA,
    sa.Column("user_id", sa.String(128), primary_key=True),
    sa.Column("asset", sa.String(32), primary_key=True),
    sa.Column("free", sa.Float(53), nullable=False),
)

paper_orders = sa.Table(
    "paper_orders", METADATA,
    sa.Column("order_id", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.String(128), nullable=False),
    sa.Column("client_order_id", sa.String(64), nullable=False),
    sa.Column("symbol", sa.String(64), nullable=False),
    sa.Column("side", sa.String(8), nullable=False),
    sa.Column("amount", sa.Float(53), nullable=False),
    sa.Column("price", sa.Float(53), nullable=False),
    sa.Column("timestamp_ms", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("user_id", "client_order_id", name="uq_paper_orders_client_id"),
    sa.Index("ix_paper_orders_user_symbol", "user_id", "symbol"),
)

paper_trades = sa.Table(
    "paper_trades", METADATA,
    sa.Column("trade_id", sa.String(64), primary_key=True),
    sa.Column("order_id", sa.String(64), nullable=False),
    sa.Column("user_id", sa.String(128), nullable=False),
    sa.Column("client_order_id", sa.String(64), nullable=False),
    sa.Column("symbol", sa.String(64), nullable=False),
    sa.Column("side", sa.String(8), nullable=False),
    sa.Column("amount", sa.Float(53), nullable=False),
    sa.Column("price", sa.Float(53), nullable=False),
    sa.Column("fee", sa.Float(53), nullable=False),
    sa.Column("fee_currency", sa.String(32), nullable=False),
    sa.Column("timestamp_ms", sa.BigInteger, nullable=False),
    sa.Index("ix_paper_trades_user_symbol_time", "user_id", "symbol", "timestamp_ms"),
)


class PaperFundsError(Exception):
    """The paper account lacks the free amount an order needs (nothing was changed)."""


@dataclass(frozen=True, slots=True)
class PaperFill:
    """One market order to fill completely: `amount` of base at `price`, paying `fee_rate` of what the
    user receives (MEXC charges the fee in the asset received)."""

    user_id: str
    client_order_id: str
    symbol: str
    base: str
    quote: str
    side: Side
    amount: float
    price: float
    fee_rate: float
    timestamp_ms: int


class PaperStore:
    """Synchronous access to the paper tables (the broker calls it through `asyncio.to_thread`)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        dialect = engine.dialect.name
        self._insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert

    def open_account(self, user_id: str, funds: Mapping[str, float], now_ms: int) -> bool:
        """Fund a new paper account once; False when it existed already (its balances are kept)."""
        with self.engine.begin() as conn:
            statement = (self._insert(paper_accounts).values(user_id=user_id, created_ms=now_ms)
                         .on_conflict_do_nothing().returning(paper_accounts.c.user_id))
            if conn.execute(statement).first() is None:  # funded already (rowcount is unreliable here)
                return False
            for asset, amount in funds.items():
                self._credit(conn, user_id, asset, amount)
        return True

    def fill(self, order: PaperFill) -> tuple[OrderReport, bool]:
        """Place and fill `order` in one transaction; returns its report and whether it is new (False:
        the client order id was taken, and the existing order is returned unchanged). Raises
        PaperFundsError when the account cannot pay."""
        existing = self.order_by_client_id(order.user_id, order.client_order_id)
        if existing is not None:
            return existing, False
        order_id = "P" + uuid.uuid4().hex[:23]
        cost = order.amount * order.price
        if order.side is Side.BUY:
            fee, fee_currency = order.amount * order.fee_rate, order.base
            pay, pay_amount, get, get_amount = order.quote, cost, order.base, order.amount - fee
        else:
            fee, fee_currency = cost * order.fee_rate, order.quote
            pay, pay_amount, get, get_amount = order.base, order.amount, order.quote, cost - fee
        try:
            with self.engine.begin() as conn:
                self._debit(conn, order.user_id, pay, pay_amount)
                self._credit(conn, order.user_id, get, get_amount)
                conn.execute(paper_orders.insert().values(
                    order_id=order_id, user_id=order.user_id, client_order_id=order.client_order_id,
                    symbol=order.symbol, side=str(order.side), amount=order.amount, price=order.price,
                    timestamp_ms=order.timestamp_ms))
                conn.execute(paper_trades.insert().values(
                    trade_id="T" + order_id[1:], order_id=order_id, user_id=order.user_id,
                    client_order_id=order.client_order_id, symbol=order.symbol, side=str(order.side),
                    amount=order.amount, price=order.price, fee=fee, fee_currency=fee_currency,
                    timestamp_ms=order.timestamp_ms))
        except sa.exc.IntegrityError:  # another process placed this client order id meanwhile
            raced = self.order_by_client_id(order.user_id, order.client_order_id)
            if raced is None:
                raise
            return raced, False
        report = self.order_by_client_id(order.user_id, order.client_order_id)
        assert report is not None
        return report, True

    # ---- reads -------------------------------------------------------------------------------------
    def order_by_client_id(self, user_id: str, client_order_id: str) -> OrderReport | None:
        query = sa.select(paper_orders).where(paper_orders.c.user_id == user_id,
                                              paper_orders.c.client_order_id == client_order_id)
        return self._one_order(query)

    def order(self, user_id: str, order_id: str) -> OrderReport | None:
        query = sa.select(paper_orders).where(paper_orders.c.user_id == user_id,
                                              paper_orders.c.order_id == order_id)
        return self._one_order(query)

    def orders(self, user_id: str, symbol: str, since_ms: int | None) -> list[OrderReport]:
        c = paper_orders.c
        query = sa.select(paper_orders).where(c.user_id == user_id, c.symbol == symbol)
        if since_ms is not None:
            query = query.where(c.timestamp_ms >= since_ms)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(c.timestamp_ms, c.order_id)).all()
        return [_order_report(row) for row in rows]

    def trades(self, user_id: str, symbol: str, since_ms: int | None = None,
               order_id: str | None = None) -> list[FillReport]:
        c = paper_trades.c
        query = sa.select(paper_trades).where(c.user_id == user_id, c.symbol == symbol)
        if since_ms is not None:
            query = query.where(c.timestamp_ms >= since_ms)
        if order_id is not None:
            query = query.where(c.order_id == order_id)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(c.timestamp_ms, c.trade_id)).all()
        return [FillReport(trade_id=row.trade_id, exchange_order_id=row.order_id,
                           client_order_id=row.client_order_id, symbol=row.symbol, side=Side(row.side),
                           amount=row.amount, price=row.price, fee=row.fee, fee_currency=row.fee_currency,
                           timestamp_ms=row.timestamp_ms) for row in rows]

    def balance(self, user_id: str) -> BalanceReport:
        c = paper_balances.c
        query = sa.select(c.asset, c.free).where(c.user_id == user_id)
        with self.engine.connect() as conn:
            free = {asset: amount for asset, amount in conn.execute(query) if amount > 0}
        return BalanceReport(free=free, used={asset: 0.0 for asset in free}, total=dict(free))

    # ---- internals ---------------------------------------------------------------------------------
    def _one_order(self, query: sa.Select[Any]) -> OrderReport | None:
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else _order_report(row)

    def _debit(self, conn: Connection, user_id: str, asset: str, amount: float) -> None:
        c = paper_balances.c
        # Spending the whole balance may differ from it by float rounding: within dust it is all of it.
        remaining = sa.case((c.free - amount < 0, 0.0), else_=c.free - amount)
        spent = conn.execute(paper_balances.update()
                             .where(c.user_id == user_id, c.asset == asset, c.free >= amount * (1 - _DUST))
                             .values(free=remaining)).rowcount
        if not spent:
            raise PaperFundsError(f"{asset} free is below {amount:.10g}")

    def _credit(self, conn: Connection, user_id: str, asset: str, amount: float) -> None:
        statement = self._insert(paper_balances).values(user_id=user_id, asset=asset, free=amount)
        conn.execute(statement.on_conflict_do_update(
            index_elements=[paper_balances.c.user_id, paper_balances.c.asset],
            set_={"free": paper_balances.c.free + statement.excluded.free}))


def _order_report(row: sa.Row[Any]) -> OrderReport:
    """A paper order fills completely when it is placed: always FILLED."""
    return OrderReport(exchange_order_id=row.order_id, client_order_id=row.client_order_id, symbol=row.symbol,
                       side=Side(row.side), status=OrderStatus.FILLED, amount=row.amount, filled=row.amount,
                       average=row.price, timestamp_ms=row.timestamp_ms)
