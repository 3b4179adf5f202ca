"""The record of every order send the fence admitted: the table `order_sends`, one row per admitted
send, written before the venue call (`xray_runtime.fencing`), and what it proves.

A row: client order id, user, bar, the process (member id, and member|incarnation as `holder`), the
fencing token it held, and the Redis time of admission (µs). Fencing admits a send only to the
holder of the user's lock under the newest token, so no send is admitted under a token after a newer
one was taken; `double_acting_users` lists where one was (two processes acting for one user at
once), which the load test reports and a test proves empty.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from xray_core.trading.orders import Order
from xray_runtime.db import METADATA

sends_table = sa.Table(
    "order_sends", METADATA,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("client_order_id", sa.String(64), nullable=False),
    sa.Column("user_id", sa.String(128), nullable=False),
    sa.Column("bar_ms", sa.BigInteger, nullable=False),
    sa.Column("member", sa.String(200), nullable=False),
    sa.Column("holder", sa.String(240), nullable=False),  # member|incarnation
    sa.Column("token", sa.BigInteger, nullable=False),
    sa.Column("admitted_us", sa.BigInteger, nullable=False),  # the Redis server's clock, µs
    sa.Index("ix_order_sends_user_bar", "user_id", "bar_ms"),
)


class SendLog:
    """The `order_sends` table: one row per admitted send, written before the venue call."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def record(self, order: Order, holder: str, token: int, admitted_us: int) -> None:
        row = {"client_order_id": order.client_order_id, "user_id": order.user_id, "bar_ms": order.bar_ms,
               "member": holder.rsplit("|", 1)[0], "holder": holder, "token": token,
               "admitted_us": admitted_us}
        with self.engine.begin() as conn:
            conn.execute(sa.insert(sends_table).values(row))

    def others_sent(self, user_id: str, bar_ms: int, holder: str) -> bool:
        """Whether a holder other than `holder` was admitted to send for the user on the bar."""
        c = sends_table.c
        query = sa.select(c.id).where(c.user_id == user_id, c.bar_ms == bar_ms, c.holder != holder).limit(1)
        with self.engine.connect() as conn:
            return conn.execute(query).first() is not None


# ---- reading the record ------------------------------------------------------------------------------
def double_acting_users(engine: sa.Engine) -> dict[str, list[int]]:
    """Users for whom two processes acted for one bar at once, with those bars: a send admitted under
    one holder's token after another holder had taken a newer token for the user. A token is taken
    at the Redis time of its first admission (in µs, `max(last + 1, now)`), and an admission needs
    the lock to hold that very token, so under fencing every send of an older token is admitted
    before any newer token exists. Hand-overs (one holder, then another, then maybe the first again,
    each under a newer token) are not double acting; fencing makes the other case impossible, and
    this is how a test proves it. (A process's own concurrent sends are one holder: not counted.)"""
    query = sa.select(sends_table.c.user_id, sends_table.c.bar_ms, sends_table.c.holder, sends_table.c.token,
                      sends_table.c.admitted_us)
    query = query.order_by(sends_table.c.user_id, sends_table.c.bar_ms, sends_table.c.token)
    found: dict[str, list[int]] = {}
    with engine.connect() as conn:
        rows = list(conn.execute(query))
    for (user_id, bar_ms), group in _grouped(rows):
        taken: dict[int, str] = {}  # token -> holder: when each token was taken, its holder
        for row in group:
            taken.setdefault(row.token, row.holder)
        for row in group:
            if any(token > row.token and holder != row.holder and row.admitted_us > token
                   for token, holder in taken.items()):
                found.setdefault(user_id, []).append(bar_ms)
                break
    return found


def _grouped(rows: list[Any]) -> Iterable[tuple[tuple[str, int], list[Any]]]:
    group: list[Any] = []
    for row in rows:
        if group and (group[0].user_id, group[0].bar_ms) != (row.user_id, row.bar_ms):
            yield (group[0].user_id, group[0].bar_ms), group
            group = []
        group.append(row)
    if group:
        yield (group[0].user_id, group[0].bar_ms), group
