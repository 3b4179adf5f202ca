"""Each user's risk state in SQL (`risk_state`), so limits survive a restart, a crash and a shard
hand-over: the day's opening equity, the peak equity and the kill flag (`SavedRisk`).

The runtime loads a user's row when the user becomes its own (start, sign-up, hand-over) and writes
the rows that changed after every tick. Writers can overlap (a process handing a user over, a stale
one), so a write never takes the state backwards: the kill flag is only ever set here (re-enabling a
user is `UserStore.enable`, which clears it and the peak), the peak only rises, and the day-open of a
day is the first one recorded for it. Works on SQLite and Postgres (`INSERT ... ON CONFLICT`).

`snapshot` and `risk_resets` are for audits (the chaos load test's `risk_resets`): two snapshots taken
across kills, restarts and hand-overs, and the users whose state went backwards between them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from xray_core.risk.limits.state import SavedRisk
from xray_runtime.db import METADATA

risk_table = sa.Table(
    "risk_state", METADATA,
    sa.Column("user_id", sa.String(128), primary_key=True),
    sa.Column("day", sa.BigInteger),  # UTC day (ms // 86,400,000) of `day_open`
    sa.Column("day_open", sa.Float(53)),  # NULL: not measured
    sa.Column("peak", sa.Float(53)),  # NULL: not measured (or re-enabled: measured from the next tick)
    sa.Column("killed", sa.Boolean, nullable=False),
    sa.Column("updated_ms", sa.BigInteger, nullable=False),
)

_CHUNK = 500  # rows per statement (SQLite's bound-parameter limit)


class RiskStore:
    """Batch access to `risk_state` through `engine`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        dialect = engine.dialect.name
        if dialect not in ("postgresql", "sqlite"):
            raise ValueError(f"the risk store needs SQLite or PostgreSQL, not {dialect}")
        self._insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert

    def load(self, user_ids: Iterable[str]) -> dict[str, SavedRisk]:
        """The stored state of each of `user_ids` that has one."""
        ids = list(dict.fromkeys(user_ids))
        found: dict[str, SavedRisk] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(ids), _CHUNK):
                query = sa.select(risk_table).where(risk_table.c.user_id.in_(ids[start:start + _CHUNK]))
                found.update((row.user_id, _saved(row)) for row in conn.execute(query))
        return found

    def snapshot(self) -> dict[str, SavedRisk]:
        """Every stored row, by user id."""
        with self.engine.connect() as conn:
            return {row.user_id: _saved(row) for row in conn.execute(sa.select(risk_table))}

    def save(self, rows: Mapping[str, SavedRisk], now_ms: int) -> None:
        """Upsert `rows` in one transaction, never taking a stored row backwards (module docstring)."""
        if not rows:
            return
        values = [{"user_id": user_id, "day": row.day, "day_open": _null(row.day_open),
                   "peak": _null(row.peak), "killed": row.killed, "updated_ms": now_ms}
                  for user_id, row in rows.items()]
        with self.engine.begin() as conn:
            conn.execute(self._upsert, values)  # one executemany: compiled once, sent in batches

    @property
    def _upsert(self) -> Any:
        stored = risk_table.c
        statement = self._insert(risk_table)
        new = statement.excluded
        newer_day = sa.or_(stored.day.is_(None), sa.and_(new.day.is_not(None), new.day > stored.day))
        same_day = stored.day == new.day
        return statement.on_conflict_do_update(
            index_elements=[stored.user_id],
            set_={
                "day": sa.case((newer_day, new.day), else_=stored.day),
                "day_open": sa.case((newer_day, new.day_open),
                                    (same_day, sa.func.coalesce(stored.day_open, new.day_open)),
                                    else_=stored.day_open),
                "peak": sa.case((stored.peak.is_(None), new.peak), (new.peak.is_(None), stored.peak),
                                (new.peak > stored.peak, new.peak), else_=stored.peak),
                "killed": sa.or_(stored.killed, new.killed),
                "updated_ms": new.updated_ms,
            },
        )


def clear_kill(conn: sa.Connection, user_id: str) -> None:
    """A person re-enabled the user: not killed, and the drawdown is measured from the next tick (the
    day-open stays: today's loss still counts)."""
    conn.execute(risk_table.update().where(risk_table.c.user_id == user_id).values(killed=False, peak=None))


def risk_resets(before: Mapping[str, SavedRisk], after: Mapping[str, SavedRisk],
                reenabled: Iterable[str] = ()) -> list[str]:
    """Users whose risk state was lost between two snapshots: the row vanished, the kill flag was
    cleared, the peak fell, or the same day's opening equity changed. `reenabled`: users a person
    re-enabled in between (their kill flag and peak were cleared on purpose)."""
    lost = []
    excused = set(reenabled)
    for user_id, old in sorted(before.items()):
        new = after.get(user_id)
        if new is None:
            lost.append(user_id)
            continue
        day_changed = (old.day == new.day and not math.isnan(old.day_open)
                       and not _same(old.day_open, new.day_open))
        unkilled = old.killed and not new.killed and user_id not in excused
        peak_fell = (not math.isnan(old.peak) and (math.isnan(new.peak) or new.peak < old.peak)
                     and user_id not in excused)
        if day_changed or unkilled or peak_fell:
            lost.append(user_id)
    return lost


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def _saved(row: sa.Row[Any]) -> SavedRisk:
    return SavedRisk(None if row.day is None else int(row.day),
                     math.nan if row.day_open is None else float(row.day_open),
                     math.nan if row.peak is None else float(row.peak), bool(row.killed))


def _null(value: float) -> float | None:
    return None if math.isnan(value) else float(value)
