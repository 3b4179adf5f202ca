"""What a user (or an operator on their behalf) asked of the trading loop: pause, resume, stop.

The one place these mean something, shared by the Telegram bot, the web dashboard and the CLI:

* `pause`: no new entries. Exits still happen (a target of 0, a symbol leaving the bundle, the kill
  switch): a paused user is never left holding a position the strategy wants out of.
* `stop`: flatten and pause. Every position X-Ray holds for the user is sold on every bar until flat
  (like a kill switch, but the user is not disabled: `resume` trades again).
* `resume`: back to active (entries allowed; a stop's flattening ends).

The request is a row in the runtime's SQL (`user_control`), so it survives a restart and every runtime
process sees it: the service reads the non-active rows once per tick (`not_active`, one query however
many users) before deciding. A user without a row is active. Risk kills and disabling are separate
(`risk_state`, `users.status`): `resume` never undoes a kill switch.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from xray_runtime.db import METADATA
from xray_runtime.users import UserStore

__all__ = ["STATES", "Control", "ControlState", "UserControl", "control_table"]

ControlState = Literal["active", "paused", "stopped"]
STATES: tuple[ControlState, ...] = ("active", "paused", "stopped")

control_table = sa.Table(
    "user_control", METADATA,
    sa.Column("user_id", sa.String(64), primary_key=True),
    sa.Column("state", sa.String(8), nullable=False),
    sa.Column("changed_by", sa.String(64), nullable=False),  # "telegram", "web", "cli", ...
    sa.Column("changed_ms", sa.BigInteger, nullable=False),
    sa.CheckConstraint("state IN ('active', 'paused', 'stopped')", name="ck_user_control_state"),
    sa.Index("ix_user_control_state", "state"),
)


@dataclass(frozen=True)
class Control:
    """A user's requested state; `changed_ms` 0 and `changed_by` "" for a user never paused."""

    user_id: str
    state: ControlState
    changed_by: str = ""
    changed_ms: int = 0

    @property
    def entries_allowed(self) -> bool:
        return self.state == "active"

    @property
    def flatten(self) -> bool:
        return self.state == "stopped"


class UserControl:
    """Reads and writes `user_control` through `engine`; changes are for known users only."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def get(self, user_id: str) -> Control:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(control_table).where(control_table.c.user_id == user_id)).first()
        return Control(user_id, "active") if row is None else _control(row)

    def not_active(self) -> dict[str, Control]:
        """Every paused or stopped user (the state index serves it: one small query per tick)."""
        query = sa.select(control_table).where(control_table.c.state != "active")
        with self.engine.connect() as conn:
            return {row.user_id: _control(row) for row in conn.execute(query)}

    def pause(self, user_id: str, by: str) -> Control:
        """No new entries for the user from the next bar on; exits go on."""
        return self._set(user_id, "paused", by)

    def stop(self, user_id: str, by: str) -> Control:
        """Sell what X-Ray holds for the user on every bar until flat, and enter nothing."""
        return self._set(user_id, "stopped", by)

    def resume(self, user_id: str, by: str) -> Control:
        """Trade again (a risk kill switch stays: that is `xray users enable`)."""
        return self._set(user_id, "active", by)

    def _set(self, user_id: str, state: ControlState, by: str) -> Control:
        UserStore(self.engine, None).get(user_id)  # UnknownUserError names the id and what to do
        now_ms = int(time.time() * 1000)
        values: dict[str, Any] = {"state": state, "changed_by": by[:64], "changed_ms": now_ms}
        with self.engine.begin() as conn:  # update, else insert: both dialects, no upsert needed
            updated = conn.execute(control_table.update().where(control_table.c.user_id == user_id)
                                   .values(**values)).rowcount
            if not updated:
                try:
                    with conn.begin_nested():
                        conn.execute(control_table.insert().values(user_id=user_id, **values))
                except sa.exc.IntegrityError:  # another writer inserted it first: ours is newer
                    conn.execute(control_table.update().where(control_table.c.user_id == user_id)
                                 .values(**values))
        return Control(user_id, state, by[:64], now_ms)


def masks(user_ids: Iterable[str], controls: dict[str, Control]) -> tuple[np.ndarray, np.ndarray]:
    """(no entries, flatten) per user, in `user_ids` order, for the vectorised decision."""
    states = [controls[user_id].state if user_id in controls else "active" for user_id in user_ids]
    paused = np.array([state != "active" for state in states], dtype=bool)
    flatten = np.array([state == "stopped" for state in states], dtype=bool)
    return paused, flatten


def _control(row: sa.Row[Any]) -> Control:
    state: ControlState = row.state if row.state in STATES else "paused"  # unknown: the safe side
    return Control(str(row.user_id), state, str(row.changed_by), int(row.changed_ms))
