"""Deposits and withdrawals in the journal, so money moved in or out of an account is never taken for
a profit or a loss.

Each reconciliation asks the venue for the account's transfers (`VenueClient.fetch_transfers`) around
its balance read and records them here, one row per transfer id: recording is idempotent (a transfer
seen again, after a restart or by another process, is not applied twice; only its status follows the
venue's). A row's `value` is what the transfer moved the user's equity by, in the quote currency, fixed
when it is first recorded: the amount for the quote currency; for a coin, its last known close times
the change it made to what X-Ray counts of that coin (`Book.position`: the journal's fills capped by
the balance), so a coin deposit beside X-Ray's own is worth nothing, and a withdrawal of coins X-Ray
bought is worth what they were. The user's net transfers are the values of the rows whose transfer the
balance reflects (`Transfer.moves_balance`): the risk limits subtract them from equity before
comparing it with the day's opening and the peak (`RiskKeeper`).

Only transfers the runtime did not find at its first look at a user count (`transfer_watch`): what
was there already is in the balances the baselines were measured on, so it is recorded with value 0.
Each look asks from `LOOKBACK_MS` before the newest recorded transfer (`TransferStore.since`), so a
pending withdrawal keeps the status last seen once it is older than that.

A transfer landing between the balance read and the transfer list would make one of them stale: the
list is read before and after the balance (`read_around`), and when the two differ the balance is
not used this time (the next reconciliation reads both again).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from xray_core.exchange.protocol import VenueClient
from xray_core.exchange.reports import BalanceReport, Transfer
from xray_runtime.db import METADATA

LOOKBACK_MS = 7 * 86_400_000  # how far back each reconciliation asks (status changes of older ones)

transfers_table = sa.Table(
    "transfers", METADATA,
    sa.Column("user_id", sa.String(128), primary_key=True),
    sa.Column("transfer_id", sa.String(200), primary_key=True),
    sa.Column("asset", sa.String(32), nullable=False),
    sa.Column("amount", sa.Float(53), nullable=False),  # > 0 deposit, < 0 withdrawal (fee included)
    sa.Column("timestamp_ms", sa.BigInteger, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("value", sa.Float(53), nullable=False),  # its effect on equity, quote currency
    sa.Column("counted", sa.Boolean, nullable=False),  # the balance reflects it: in the net transfers
    sa.Column("recorded_ms", sa.BigInteger, nullable=False),
)

watch_table = sa.Table(
    "transfer_watch", METADATA,
    sa.Column("user_id", sa.String(128), primary_key=True),
    sa.Column("since_ms", sa.BigInteger, nullable=False),  # wall ms of the first look (for people)
)


class TransferStore:
    """The journal's transfers through `engine` (SQLite or Postgres)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._insert: Any = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    def since(self, user_id: str, now_ms: int) -> int | None:
        """Where the next look at `user_id`'s transfers starts: `LOOKBACK_MS` before the newest one
        recorded (venue ms), or None, the venue's default window (MEXC: the last 7 days), when none is
        recorded or that start lies more than `LOOKBACK_MS` before `now_ms` (venues refuse wide ranges)."""
        with self.engine.connect() as conn:
            newest = conn.execute(sa.select(sa.func.max(transfers_table.c.timestamp_ms))
                                  .where(transfers_table.c.user_id == user_id)).scalar()
        if newest is None:
            return None
        start = int(newest) - LOOKBACK_MS
        return start if start >= now_ms - LOOKBACK_MS else None

    def known(self, user_id: str) -> dict[str, bool]:
        """Transfer id -> counted, for every recorded transfer of `user_id`."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(transfers_table.c.transfer_id, transfers_table.c.counted)
                                .where(transfers_table.c.user_id == user_id))
            return {row.transfer_id: bool(row.counted) for row in rows}

    def record(self, user_id: str, transfers: Sequence[Transfer], values: Mapping[str, float],
               now_ms: int) -> int:
        """Insert the transfers not recorded yet (valued by `values`, by transfer id; at the first look
        at the user, 0: they are in the baselines already) and follow the status of those that are;
        returns how many rows were new. One transaction."""
        table = transfers_table
        with self.engine.begin() as conn:
            # RETURNING, not rowcount: a driver may not report rows of an ON CONFLICT insert.
            first = conn.execute(self._insert(watch_table).values(user_id=user_id, since_ms=now_ms)
                                 .on_conflict_do_nothing(index_elements=["user_id"])
                                 .returning(watch_table.c.user_id)).first() is not None
            new_rows = [{"user_id": user_id, "transfer_id": t.transfer_id, "asset": t.asset,
                         "amount": t.amount, "timestamp_ms": t.timestamp_ms, "status": t.status,
                         "value": 0.0 if first else float(values.get(t.transfer_id, 0.0)),
                         "counted": t.moves_balance, "recorded_ms": now_ms} for t in transfers]
            inserted = 0
            for row in new_rows:
                result = conn.execute(self._insert(table).values(**row)
                                      .on_conflict_do_nothing(index_elements=["user_id", "transfer_id"])
                                      .returning(table.c.transfer_id))
                inserted += result.first() is not None
                conn.execute(table.update().where(table.c.user_id == user_id,
                                                  table.c.transfer_id == row["transfer_id"])
                             .values(status=row["status"], counted=row["counted"]))
        return inserted

    def net(self, user_ids: Iterable[str]) -> dict[str, float]:
        """Each user's net transfers: the values of the transfers their balance reflects."""
        ids = list(dict.fromkeys(user_ids))
        found: dict[str, float] = {}
        table = transfers_table
        with self.engine.connect() as conn:
            for start in range(0, len(ids), 500):
                query = (sa.select(table.c.user_id, sa.func.sum(table.c.value))
                         .where(table.c.user_id.in_(ids[start:start + 500]), table.c.counted)
                         .group_by(table.c.user_id))
                found.update((user_id, float(total or 0.0)) for user_id, total in conn.execute(query))
        return {user_id: found.get(user_id, 0.0) for user_id in ids}


def values_of(transfers: Sequence[Transfer], known: Mapping[str, bool], quote: str,
              position_change: Mapping[str, float], price: Mapping[str, float]) -> dict[str, float]:
    """The equity effect of each transfer not recorded yet (module docstring). `position_change`: per
    coin, how much X-Ray's counted holding moved between the balance read before and this one;
    `price`: per coin, its last known close (absent: never priced, valued 0)."""
    values: dict[str, float] = {}
    by_coin: dict[str, list[Transfer]] = {}
    for transfer in transfers:
        if transfer.transfer_id in known:
            continue
        if transfer.asset == quote:
            values[transfer.transfer_id] = transfer.amount
        else:
            by_coin.setdefault(transfer.asset, []).append(transfer)
    for coin, moved in by_coin.items():
        counted = [t for t in moved if t.moves_balance]
        total = sum(t.amount for t in counted)
        coin_price = price.get(coin)
        if not total or coin_price is None or coin_price != coin_price:
            continue
        # What the coins moved of X-Ray's holding, never more than the transfers themselves moved.
        effect = min(max(position_change.get(coin, 0.0), min(total, 0.0)), max(total, 0.0))
        for t in counted:
            values[t.transfer_id] = coin_price * effect * t.amount / total
    return values


async def read_around(venue: VenueClient, store: TransferStore, user_id: str,
                      read_balance: Callable[[], Awaitable[BalanceReport]]
                      ) -> tuple[BalanceReport, list[Transfer]] | None:
    """The balance and the transfers it reflects, or None when a transfer moved while the balance was
    read (module docstring)."""
    since = await asyncio.to_thread(store.since, user_id, int(time.time() * 1000))
    before = await venue.fetch_transfers(since)
    balance = await read_balance()
    after = await venue.fetch_transfers(since)
    if _moving(before) != _moving(after):
        return None
    return balance, after


def _moving(transfers: Sequence[Transfer]) -> set[str]:
    return {t.transfer_id for t in transfers if t.moves_balance}
