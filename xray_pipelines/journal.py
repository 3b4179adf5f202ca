"""Reading the runtime's order journal: every fill with the lineage of the order it filled.

The runtime writes its journal (`xray_runtime.journal`) on the tables declared in
`xray_core.trading.journal_schema`; this module reads the same tables, so the two sides share one
definition and never import each other. Reads only: a journal that does not exist yet (the runtime
never ran) is an empty record, never a file or a table created here.

A journal belongs to one runtime, which trades one exchange on the promoted bundle's timeframe, so its
fills are the fills of the market the pipelines work on (the journal has no exchange column to check).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from xray_core.errors import ConfigError
from xray_core.learning.shadow_record import SHADOW_SCHEMA, empty_shadow
from xray_core.trading.journal_schema import journal_tables, shadow_table

_METADATA = sa.MetaData()
ORDERS, FILLS = journal_tables(_METADATA)
SHADOW = shadow_table(_METADATA)
_UTC_MS = pl.Datetime("ms", "UTC")

# One row per fill; `bar` is the bar the order was decided on (its close), `timestamp` the trade time.
LIVE_FILLS_SCHEMA: dict[str, pl.DataType] = {
    "timestamp": _UTC_MS,
    "bar": _UTC_MS,
    "symbol": pl.String(),
    "user_id": pl.String(),
    "side": pl.String(),
    "amount": pl.Float64(),
    "price": pl.Float64(),
    "fee": pl.Float64(),
    "fee_currency": pl.String(),
    "trade_id": pl.String(),
    "client_order_id": pl.String(),
    "intent": pl.String(),
    "strategy": pl.String(),
    "model_version": pl.String(),
    "bundle_version": pl.String(),
    "data_version": pl.String(),
}
LINEAGE_KEYS = ("strategy", "model_version", "bundle_version", "data_version")


def read_live_fills(database_url: str) -> pl.DataFrame:
    """Every fill in the journal at `database_url`, oldest first, as LIVE_FILLS_SCHEMA. A fill whose
    order is not in the journal keeps null lineage and bar (the runtime writes orders first, so this
    is a fill someone else's order made on the same account)."""
    url = _url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
        return empty_live_fills()
    engine = sa.create_engine(url, pool_pre_ping=True)
    try:
        if not sa.inspect(engine).has_table(FILLS.name):
            return empty_live_fills()
        f, o = FILLS.c, ORDERS.c
        query = (
            sa.select(f.timestamp_ms, o.bar_ms, f.symbol, f.user_id, f.side, f.amount, f.price, f.fee,
                      f.fee_currency, f.trade_id, f.client_order_id, o.intent, o.lineage)
            .select_from(FILLS.outerjoin(ORDERS, o.client_order_id == f.client_order_id))
            .order_by(f.timestamp_ms, f.user_id, f.trade_id)
        )
        with engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
    finally:
        engine.dispose()
    records = []
    for row in rows:
        lineage = row["lineage"] or {}
        record = {name: row[name] for name in LIVE_FILLS_SCHEMA if name in row}
        record["timestamp"], record["bar"] = row["timestamp_ms"], row["bar_ms"]
        records.append(record | {key: _text(lineage.get(key)) for key in LINEAGE_KEYS})
    if not records:
        return empty_live_fills()
    frame = pl.DataFrame(records, schema={**LIVE_FILLS_SCHEMA, "timestamp": pl.Int64, "bar": pl.Int64})
    return frame.with_columns(pl.col("timestamp", "bar").cast(_UTC_MS))


def read_shadow_bars(database_url: str) -> pl.DataFrame:
    """Every bar of the runtime's shadow books (`shadow_bars`), as SHADOW_SCHEMA in (model, version,
    symbol, bar) order; empty when the runtime has recorded none (or never ran)."""
    url = _url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
        return empty_shadow()
    engine = sa.create_engine(url, pool_pre_ping=True)
    try:
        if not sa.inspect(engine).has_table(SHADOW.name):
            return empty_shadow()
        c = SHADOW.c
        query = (sa.select(c.bar_ms.label("bar"), c.model, c.version, c.symbol, c.role, c.position, c.close,
                           c.ret, c.bundle_version)
                 .order_by(c.model, c.version, c.symbol, c.bar_ms))
        with engine.connect() as conn:
            rows = [dict(row) for row in conn.execute(query).mappings()]
    finally:
        engine.dispose()
    if not rows:
        return empty_shadow()
    frame = pl.DataFrame(rows, schema={**SHADOW_SCHEMA, "bar": pl.Int64})
    return frame.with_columns(pl.col("bar").cast(_UTC_MS))


def empty_live_fills() -> pl.DataFrame:
    return pl.DataFrame(schema=LIVE_FILLS_SCHEMA)


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _url(database_url: str) -> sa.URL:
    try:
        url = make_url(database_url)
    except sa.exc.ArgumentError:
        raise ConfigError(
            f"XRAY_RUNTIME_DATABASE_URL {database_url!r} is not a database URL",
            "use sqlite:///path/runtime.db or postgresql+psycopg://user@host:5432/db",
        ) from None
    # The runtime's convention: a bare postgresql URL means psycopg 3, the driver X-Ray ships.
    return url.set(drivername="postgresql+psycopg") if url.drivername == "postgresql" else url
