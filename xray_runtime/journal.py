"""The order journal: the durable record of every order the runtime decided and every fill it saw.

Two tables on the shared `METADATA` (created by `xray_runtime.db.connect`), declared by
`xray_core.trading.journal_schema` (the pipelines read them too):

* `orders`, keyed by the deterministic client order id: written ahead (PENDING) before an order is
  sent, then on every state change. A terminal row never changes and `filled` never decreases, even
  when a slower writer (another process, a stale reconciliation) upserts an older version.
* `fills`, keyed by (user, exchange trade id): each exchange trade once, however often it is seen.

Methods take and return batches so the service writes once per tick. The engine is synchronous; the
async runtime calls the journal through `asyncio.to_thread`. Works on SQLite and Postgres: both speak
`INSERT ... ON CONFLICT`, and each dialect's insert construct is picked at run time.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from xray_core.trading.journal_schema import journal_tables
from xray_core.trading.orders import TERMINAL, Fill, Lineage, Order, OrderStatus, Side
from xray_runtime.db import METADATA

# The tables are the contract with the pipelines (`live_fills`), so they are declared in xray_core.
orders_table, fills_table = journal_tables(METADATA)

_TERMINAL_VALUES = sorted(str(status) for status in TERMINAL)
_OPEN_VALUES = sorted(str(status) for status in OrderStatus if status not in TERMINAL)
_UPDATED_COLUMNS = ("status", "filled", "average", "exchange_order_id", "reason", "updated_ms")
# SQLite caps bound parameters per statement (32766 on modern builds); 15 columns a row fits in 500.
_CHUNK = 500


class Journal:
    """Batch access to the `orders` and `fills` tables through `engine` (SQLite or Postgres)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # Fills recorded for the first time, in order, for the service to move its book with (a
        # deque: written from worker threads, drained on the event loop).
        self.new_fills: deque[Fill] = deque()
        dialect = engine.dialect.name
        if dialect == "postgresql":
            self._insert: Any = postgresql.insert
        elif dialect == "sqlite":
            self._insert = sqlite.insert
        else:  # the runtime's settings only produce these two
            raise ValueError(f"the order journal needs SQLite or PostgreSQL, not {dialect}")
        self._fill_insert = (self._insert(fills_table).on_conflict_do_nothing()
                             .returning(fills_table.c.user_id, fills_table.c.trade_id))
        statement = self._insert(orders_table)
        current = orders_table.c
        self._upsert = statement.on_conflict_do_update(
            index_elements=[current.client_order_id],
            set_={name: statement.excluded[name] for name in _UPDATED_COLUMNS},
            # Plain comparisons, not NOT IN: an expanding parameter cannot be used with executemany.
            where=sa.and_(*(current.status != value for value in _TERMINAL_VALUES),
                          statement.excluded.filled >= current.filled),
        )

    # ---- writes ------------------------------------------------------------------------------------
    def upsert_orders(self, orders: Sequence[Order]) -> None:
        """Insert new orders and update known ones, in one transaction. An update never touches a
        terminal row and never lowers `filled`, so an out-of-date writer cannot undo progress."""
        self.record([(orders, ())])

    def add_fills(self, fills: Sequence[Fill]) -> int:
        """Record fills not yet recorded; returns how many were new. `ON CONFLICT DO NOTHING ...
        RETURNING` reports exactly the rows this call inserted, even with concurrent writers."""
        return self.record([((), fills)])

    def record(self, writes: Sequence[tuple[Sequence[Order], Sequence[Fill]]]) -> int:
        """Several writers' (orders, fills) in ONE transaction (one commit, one fsync: the group
        commit of `xray_runtime.journal_batch`); every fill before any order, so no order claims a
        fill the journal lacks. The orders are upserted row by row in the order given (one cached
        statement, executemany), each writer's last version of an order winning, exactly as separate
        `upsert_orders` calls in that order would be. Returns how many fills were new."""
        fills = [fill for _, batch in writes for fill in batch]
        if not fills and not any(orders for orders, _ in writes):
            return 0
        rows = [_order_row(order) for orders, _ in writes
                for order in {order.client_order_id: order for order in orders}.values()]
        with self.engine.begin() as conn:
            added = self._insert_fills(conn, fills)
            if rows:  # one statement, executed per row in order (a later version after an earlier one)
                conn.execute(self._upsert, rows)
        self.new_fills.extend(added)  # for the book, once committed
        return len(added)

    def _insert_fills(self, conn: sa.Connection, fills: Sequence[Fill]) -> list[Fill]:
        """The fills this statement inserted (not recorded before), in the order given."""
        if not fills:
            return []
        unique = {(f.user_id, f.trade_id): f for f in fills}
        rows = [_fill_row(fill) for fill in unique.values()]
        # One cached statement, executemany: SQLAlchemy batches it ("insertmanyvalues") and still
        # returns exactly the rows inserted; a multi-VALUES statement built per call cost ~0.1 ms a row.
        added = {(row.user_id, row.trade_id) for row in conn.execute(self._fill_insert, rows)}
        return [fill for key, fill in unique.items() if key in added]

    def drain_new_fills(self, user_id: str | None = None) -> list[Fill]:
        """The fills recorded for the first time since the last drain, in the order recorded; only
        `user_id`'s when given (the others stay queued, behind any recorded meanwhile)."""
        drained = []
        if user_id is None:
            while self.new_fills:
                drained.append(self.new_fills.popleft())
            return drained
        kept: list[Fill] = []
        for _ in range(len(self.new_fills)):  # appends from worker threads land behind these
            fill = self.new_fills.popleft()
            (drained if fill.user_id == user_id else kept).append(fill)
        self.new_fills.extend(kept)
        return drained

    # ---- reads -------------------------------------------------------------------------------------
    def get(self, client_order_id: str) -> Order | None:
        return self.get_many([client_order_id]).get(client_order_id)

    def get_many(self, client_order_ids: Iterable[str]) -> dict[str, Order]:
        """The recorded orders among `client_order_ids`, by id."""
        ids = list(dict.fromkeys(client_order_ids))
        found: dict[str, Order] = {}
        with self.engine.connect() as conn:
            for chunk in _chunks(ids):
                query = sa.select(orders_table).where(orders_table.c.client_order_id.in_(chunk))
                found.update((row.client_order_id, _order_from_row(row)) for row in conn.execute(query))
        return found

    def open_orders(self, user_id: str | None = None) -> list[Order]:
        """Every non-terminal order (of one user, or of everyone), oldest first."""
        query = sa.select(orders_table).where(orders_table.c.status.not_in(_TERMINAL_VALUES))
        if user_id is not None:
            query = query.where(orders_table.c.user_id == user_id)
        return self._orders(query)

    def in_doubt(self) -> list[Order]:
        """Every user's non-terminal orders (`status IN` the open states, so the status index serves
        it however long the journal grows), oldest first."""
        return self._orders(sa.select(orders_table).where(orders_table.c.status.in_(_OPEN_VALUES)))

    def positions(self, user_ids: Iterable[str]) -> dict[str, dict[str, float]]:
        """`position` of every symbol each of `user_ids` has fills on (user -> symbol -> net base
        amount), summed in SQL per (user, symbol, side, fee currency): one query per chunk of users."""
        ids = list(dict.fromkeys(user_ids))
        c = fills_table.c
        held: dict[str, dict[str, float]] = {}
        with self.engine.connect() as conn:
            for chunk in _chunks(ids):
                query = (sa.select(c.user_id, c.symbol, c.side, c.fee_currency, sa.func.sum(c.amount),
                                   sa.func.sum(c.fee))
                         .where(c.user_id.in_(chunk)).group_by(c.user_id, c.symbol, c.side, c.fee_currency))
                for user_id, symbol, side, fee_currency, amount, fee in conn.execute(query):
                    change = float(amount) if side == str(Side.BUY) else -float(amount)
                    if fee_currency == symbol.split("/")[0]:
                        change -= float(fee)
                    per_symbol = held.setdefault(user_id, {})
                    per_symbol[symbol] = per_symbol.get(symbol, 0.0) + change
        return held

    def orders(self, user_id: str, symbol: str | None = None) -> list[Order]:
        """A user's orders (optionally on one symbol), oldest first."""
        query = sa.select(orders_table).where(orders_table.c.user_id == user_id)
        if symbol is not None:
            query = query.where(orders_table.c.symbol == symbol)
        return self._orders(query)

    def fills(self, user_id: str, symbol: str | None = None) -> list[Fill]:
        """A user's fills (optionally on one symbol), in trade time order."""
        query = sa.select(fills_table).where(fills_table.c.user_id == user_id)
        if symbol is not None:
            query = query.where(fills_table.c.symbol == symbol)
        query = query.order_by(fills_table.c.timestamp_ms, fills_table.c.trade_id)
        with self.engine.connect() as conn:
            return [_fill_from_row(row) for row in conn.execute(query)]

    def position(self, user_id: str, symbol: str) -> float:
        """The net base amount the user's fills on `symbol` hold: bought minus sold, less fees paid in
        the base currency (MEXC charges a buy's fee in the base it receives)."""
        base = symbol.split("/")[0]
        c = fills_table.c
        signed = sa.case((c.side == str(Side.BUY), c.amount), else_=-c.amount)
        base_fee = sa.case((c.fee_currency == base, c.fee), else_=0.0)
        query = sa.select(sa.func.coalesce(sa.func.sum(signed - base_fee), 0.0)).where(
            c.user_id == user_id, c.symbol == symbol)
        with self.engine.connect() as conn:
            return float(conn.execute(query).scalar_one())

    def latest_fill_ms(self, user_id: str, symbol: str) -> int | None:
        """The trade time of the user's newest recorded fill on `symbol` (None: no fills)."""
        c = fills_table.c
        query = sa.select(sa.func.max(c.timestamp_ms)).where(c.user_id == user_id, c.symbol == symbol)
        with self.engine.connect() as conn:
            value = conn.execute(query).scalar_one()
        return None if value is None else int(value)

    def _orders(self, query: sa.Select[Any]) -> list[Order]:
        query = query.order_by(orders_table.c.created_ms, orders_table.c.client_order_id)
        with self.engine.connect() as conn:
            return [_order_from_row(row) for row in conn.execute(query)]


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start:start + _CHUNK]


def _order_row(order: Order) -> dict[str, Any]:
    row = order.as_dict()
    row["created_ms"] = order.updated_ms  # only used on insert: an update keeps the first value
    return row


def _order_from_row(row: sa.Row[Any]) -> Order:
    return Order(
        client_order_id=row.client_order_id, user_id=row.user_id, symbol=row.symbol, side=Side(row.side),
        amount=row.amount, bar_ms=row.bar_ms, intent=row.intent, lineage=Lineage.from_dict(row.lineage),
        status=OrderStatus(row.status), filled=row.filled, average=row.average,
        exchange_order_id=row.exchange_order_id, reason=row.reason or "", updated_ms=row.updated_ms,
    )


def _fill_row(fill: Fill) -> dict[str, Any]:
    return {
        "user_id": fill.user_id, "trade_id": fill.trade_id, "client_order_id": fill.client_order_id,
        "symbol": fill.symbol, "side": str(fill.side), "amount": fill.amount, "price": fill.price,
        "fee": fill.fee, "fee_currency": fill.fee_currency, "timestamp_ms": fill.timestamp_ms,
    }


def _fill_from_row(row: sa.Row[Any]) -> Fill:
    return Fill(
        trade_id=row.trade_id, client_order_id=row.client_order_id, user_id=row.user_id, symbol=row.symbol,
        side=Side(row.side), amount=row.amount, price=row.price, fee=row.fee, fee_currency=row.fee_currency,
        timestamp_ms=row.timestamp_ms,
    )
