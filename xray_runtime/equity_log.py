"""Each user's equity after every tick, in SQL (`equity_history`): the equity curve the dashboard
draws without asking the exchange. One row per user and decided bar; a tick repeated for the same
bar (a restart) keeps the first row."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from xray_runtime.db import METADATA

equity_table = sa.Table(
    "equity_history", METADATA,
    sa.Column("user_id", sa.String(128), primary_key=True),
    sa.Column("ts_ms", sa.BigInteger, primary_key=True),
    sa.Column("equity", sa.Float(53), nullable=False),
)

_CHUNK = 500  # rows per statement (SQLite's bound-parameter limit)


class EquityLog:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._insert: Any = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    def record(self, user_ids: Sequence[str], equity: Sequence[float], ts_ms: int) -> int:
        """Store each user's equity at `ts_ms`; unknown (NaN) equity is skipped, not stored as 0."""
        rows = [{"user_id": u, "ts_ms": ts_ms, "equity": float(e)}
                for u, e in zip(user_ids, equity, strict=True) if math.isfinite(e)]
        with self.engine.begin() as conn:
            for start in range(0, len(rows), _CHUNK):
                statement = self._insert(equity_table).values(rows[start:start + _CHUNK])
                conn.execute(statement.on_conflict_do_nothing())
        return len(rows)

    def curve(self, user_id: str, limit: int = 2000) -> list[tuple[int, float]]:
        """The user's newest `limit` points, oldest first."""
        c = equity_table.c
        query = sa.select(c.ts_ms, c.equity).where(c.user_id == user_id).order_by(c.ts_ms.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [(int(t), float(e)) for t, e in reversed(conn.execute(query).all())]
