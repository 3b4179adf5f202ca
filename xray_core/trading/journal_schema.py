"""The order journal's tables: the contract between the runtime, which writes them, and the pipelines,
which read them (`live_fills`). Pipelines and runtime never import each other, so the one definition
of the journal's columns lives here, in the pure core both depend on.

* `orders`, keyed by the deterministic client order id, with the lineage of the decision (bundle,
  strategy, parameters, model version, data version) as JSON.
* `fills`, keyed by (user, exchange trade id): each exchange trade once, however often it is seen.

* `shadow_bars`, keyed by (model, version, symbol, bar): the shadow paper book of every model the
  bundle names (challengers, and champions for the pairing), one row per closed bar — the position the
  model took on that bar and the book's return over it net of the research costs. No order is ever
  made from these rows; the gate reads them as each model's live out-of-sample record.

`journal_tables` declares the first two, `shadow_table` the third, on the `MetaData` the caller owns:
the runtime's (created with its other tables by `xray_runtime.db.connect`) or a reader's own.
"""

from __future__ import annotations

from typing import NamedTuple

import sqlalchemy as sa


class JournalTables(NamedTuple):
    orders: sa.Table
    fills: sa.Table


def journal_tables(metadata: sa.MetaData) -> JournalTables:
    """The `orders` and `fills` tables declared on `metadata` (once per MetaData)."""
    orders = sa.Table(
        "orders", metadata,
        sa.Column("client_order_id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("side", sa.String(8), nullable=False),
        sa.Column("amount", sa.Float(53), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("filled", sa.Float(53), nullable=False, default=0.0),
        sa.Column("average", sa.Float(53)),
        sa.Column("exchange_order_id", sa.String(64)),
        sa.Column("bar_ms", sa.BigInteger, nullable=False),
        sa.Column("intent", sa.String(64), nullable=False),
        sa.Column("lineage", sa.JSON, nullable=False),
        sa.Column("reason", sa.Text, nullable=False, default=""),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
        sa.Index("ix_orders_user_status", "user_id", "status"),
        sa.Index("ix_orders_status", "status"),  # the runtime's orders in doubt, read every tick
    )
    fills = sa.Table(
        "fills", metadata,
        sa.Column("user_id", sa.String(128), primary_key=True),
        sa.Column("trade_id", sa.String(64), primary_key=True),
        sa.Column("client_order_id", sa.String(64), nullable=False),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("side", sa.String(8), nullable=False),
        sa.Column("amount", sa.Float(53), nullable=False),
        sa.Column("price", sa.Float(53), nullable=False),
        sa.Column("fee", sa.Float(53), nullable=False),
        sa.Column("fee_currency", sa.String(32), nullable=False),
        sa.Column("timestamp_ms", sa.BigInteger, nullable=False),
        sa.Index("ix_fills_user_symbol", "user_id", "symbol"),
    )
    return JournalTables(orders, fills)


def shadow_table(metadata: sa.MetaData) -> sa.Table:
    """The `shadow_bars` table declared on `metadata` (once per MetaData). `bar_ms` is the open time of
    the closed bar; `position` the target the model took at its close (1 long, 0 flat), held over the
    next bar; `ret` the book's return over this bar (the previous bar's position times the close to
    close change, less fee + slippage on the position change made at this bar's close)."""
    return sa.Table(
        "shadow_bars", metadata,
        sa.Column("model", sa.String(128), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("symbol", sa.String(64), primary_key=True),
        sa.Column("bar_ms", sa.BigInteger, primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),  # challenger | champion (when recorded)
        sa.Column("position", sa.Float(53), nullable=False),
        sa.Column("close", sa.Float(53), nullable=False),
        sa.Column("ret", sa.Float(53), nullable=False),
        sa.Column("bundle_version", sa.String(64), nullable=False),
        sa.Column("recorded_ms", sa.BigInteger, nullable=False),
    )
