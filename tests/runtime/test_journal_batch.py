"""Group commit of journal writes: `Journal.record` puts several writers' orders and fills in one
transaction with the semantics of separate writes in that order (on SQLite and on Postgres), and
`JournalBatcher` gathers concurrent writers and readers into few transactions, each caller getting
its own outcome."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
import sqlalchemy as sa
from order_path_support import JOURNAL_KINDS, LINEAGE, journal_of

from xray_core.trading.orders import Fill, Order, OrderIntent, OrderStatus, Side
from xray_runtime.journal import Journal, orders_table
from xray_runtime.journal_batch import JournalBatcher


@pytest.fixture(params=JOURNAL_KINDS)
def journal(request, tmp_path):
    yield from journal_of(request.param, tmp_path)


def _order(intent: str = "enter", user: str = "u1", amount: float = 0.5) -> Order:
    return Order.from_intent(OrderIntent(user, "BTC/USDT", Side.BUY, amount, 60_000, intent, LINEAGE),
                             now_ms=1_000)


def _fill(trade_id: str, order: Order, amount: float = 0.5) -> Fill:
    return Fill(trade_id, order.client_order_id, order.user_id, order.symbol, order.side, amount, 100.0,
                0.0, "USDT", 5_000)


def _commits(journal: Journal) -> list[int]:
    """Appends, at each commit on the journal's engine, how many new fills the journal had announced
    by then (so a test sees both how many transactions there were and what was announced before)."""
    seen: list[int] = []
    sa.event.listen(journal.engine, "commit", lambda _conn: seen.append(len(journal.new_fills)))
    return seen


# ---- Journal.record ---------------------------------------------------------------------------------
def test_one_order_moved_on_by_several_writers_in_one_transaction_ends_as_the_last_wrote_it(journal):
    pending = _order()
    submitted = pending.advance(OrderStatus.SUBMITTED, 2_000)
    filled = submitted.advance(OrderStatus.FILLED, 3_000, filled=0.5, average=101.0, exchange_order_id="E1")
    commits = _commits(journal)
    journal.record([([pending], ()), ([submitted], ()), ([filled], [_fill("t1", filled)])])
    assert journal.get(pending.client_order_id) == filled
    assert len(commits) == 1  # three writers, one transaction
    with journal.engine.connect() as conn:  # the first writer's insert dates the order
        assert conn.execute(sa.select(orders_table.c.created_ms)).scalar_one() == 1_000


def test_a_writers_last_version_of_an_order_wins_within_its_batch(journal):
    pending = _order()
    submitted = pending.advance(OrderStatus.SUBMITTED, 2_000)
    journal.record([([pending, submitted], ()), ([_order("other")], ())])
    assert journal.get(pending.client_order_id) == submitted


def test_a_later_stale_version_does_not_undo_progress(journal):
    submitted = _order().advance(OrderStatus.SUBMITTED, 2_000)
    partial = submitted.advance(OrderStatus.PARTIALLY_FILLED, 3_000, filled=0.2)
    done = partial.advance(OrderStatus.FILLED, 4_000, filled=0.5, average=100.0)
    other = _order("other").advance(OrderStatus.SUBMITTED, 2_000)
    other_partial = other.advance(OrderStatus.PARTIALLY_FILLED, 3_000, filled=0.3)
    # A terminal row is never touched again; an open one never sees `filled` fall.
    journal.record([([done, other_partial], ()), ([submitted, other], ()), ([partial], ())])
    assert journal.get(done.client_order_id) == done
    assert journal.get(other.client_order_id) == other_partial


def test_fills_go_in_before_the_orders_in_the_same_transaction(journal):
    order = _order().advance(OrderStatus.SUBMITTED, 2_000)
    done = order.advance(OrderStatus.FILLED, 3_000, filled=0.5, average=100.0)
    tables: list[str] = []

    def statement(_conn, _cursor, sql, _params, _context, _many) -> None:
        if sql.lstrip().upper().startswith("INSERT"):
            tables.append("fills" if "fills" in sql.split("(")[0] else "orders")

    sa.event.listen(journal.engine, "before_cursor_execute", statement)
    commits = _commits(journal)
    added = journal.record([([order], ()), ([done], [_fill("t1", done)]), ([], [_fill("t2", done, 0.0)])])
    assert added == 2
    assert tables[0] == "fills" and set(tables[1:]) == {"orders"}
    assert len(commits) == 1
    assert [f.trade_id for f in journal.fills("u1")] == ["t1", "t2"]


def test_new_fills_are_announced_only_once_committed(journal):
    order = _order()
    commits = _commits(journal)
    assert journal.record([([order], [_fill("t1", order), _fill("t2", order)])]) == 2
    assert commits == [0]  # nothing announced before the commit ...
    assert [f.trade_id for f in journal.drain_new_fills()] == ["t1", "t2"]  # ... all of it after
    assert journal.record([([], [_fill("t1", order)])]) == 0  # seen before: not new
    assert list(journal.new_fills) == []


def test_a_transaction_that_fails_records_nothing_and_announces_nothing(journal):
    order = _order()
    broken = _order("broken").advance(OrderStatus.SUBMITTED, 2_000)
    object.__setattr__(broken, "symbol", None)  # the orders table requires a symbol: the upsert fails
    with pytest.raises(sa.exc.IntegrityError):
        journal.record([([], [_fill("t1", order)]), ([order, broken], ())])
    assert journal.fills("u1") == [] and journal.get(order.client_order_id) is None
    assert list(journal.new_fills) == []


# ---- JournalBatcher ---------------------------------------------------------------------------------
class _FailingOnce(Journal):
    """A journal whose first transaction fails after its fills went in (so the rollback matters)."""

    def __init__(self, journal: Journal) -> None:
        super().__init__(journal.engine)
        self.failures_left = 1

    def _insert_fills(self, conn: sa.Connection, fills: Sequence[Fill]) -> list[Fill]:
        added = super()._insert_fills(conn, fills)
        if self.failures_left:
            self.failures_left -= 1
            raise RuntimeError("the database went away mid-transaction")
        return added


class _CountingReads(Journal):
    def __init__(self, journal: Journal) -> None:
        super().__init__(journal.engine)
        self.reads: list[list[str]] = []

    def get_many(self, client_order_ids):
        ids = list(client_order_ids)
        self.reads.append(ids)
        return super().get_many(ids)


async def test_concurrent_writers_share_few_transactions_and_each_returns_once_committed(journal):
    batcher = JournalBatcher(journal)
    orders = [_order(f"i{i}", user=f"u{i % 7}") for i in range(200)]
    unseen: list[str] = []

    async def writer(order: Order) -> None:
        await batcher.write([order], [_fill(f"t-{order.intent}", order)])
        if journal.get(order.client_order_id) is None:  # returned before its rows were committed
            unseen.append(order.client_order_id)

    await asyncio.gather(*(writer(order) for order in orders))
    assert unseen == []
    assert batcher.writes == 200 and batcher.transactions < 20
    assert journal.get_many(o.client_order_id for o in orders).keys() == {o.client_order_id for o in orders}
    assert sum(len(journal.fills(f"u{u}")) for u in range(7)) == 200
    assert len(journal.drain_new_fills()) == 200


async def test_writes_of_one_writer_land_in_the_order_made(journal):
    batcher = JournalBatcher(journal)
    pending = _order()
    submitted = pending.advance(OrderStatus.SUBMITTED, 2_000)
    filled = submitted.advance(OrderStatus.FILLED, 3_000, filled=0.5, average=100.0)
    # Queued together, behind nothing: one transaction, upserted in the order the writes were made.
    await asyncio.gather(batcher.write([pending]), batcher.write([submitted]), batcher.write([filled]))
    assert journal.get(pending.client_order_id) == filled


async def test_a_failed_commit_raises_to_every_writer_of_it_and_a_later_write_works(journal):
    failing = _FailingOnce(journal)
    batcher = JournalBatcher(failing)
    orders = [_order(f"i{i}") for i in range(5)]
    results = await asyncio.gather(*(batcher.write([o], [_fill(f"t{i}", o)]) for i, o in enumerate(orders)),
                                   return_exceptions=True)
    assert all(isinstance(result, RuntimeError) for result in results), results
    assert journal.get_many(o.client_order_id for o in orders) == {} and journal.fills("u1") == []
    assert list(failing.new_fills) == [] and batcher.transactions == 0
    await batcher.write([orders[0]], [_fill("t0", orders[0])])
    assert journal.get(orders[0].client_order_id) == orders[0]
    assert [f.trade_id for f in failing.drain_new_fills()] == ["t0"]
    assert batcher.transactions == 1 and batcher.writes == 1


async def test_batched_reads_give_each_caller_only_its_own_orders(journal):
    reading = _CountingReads(journal)
    batcher = JournalBatcher(reading)
    orders = [_order(f"i{i}") for i in range(6)]
    journal.record([(orders, ())])
    ids = [o.client_order_id for o in orders]
    asked = [ids[0:2], [*ids[2:4], "x-unknown"], ids[1:5], ["x-missing"], []]
    found = await asyncio.gather(*(batcher.get_many(list(wanted)) for wanted in asked))
    by_id = {o.client_order_id: o for o in orders}
    for wanted, answer in zip(asked, found, strict=True):
        assert answer == {cid: by_id[cid] for cid in wanted if cid in by_id}
    assert len(reading.reads) < 4  # the callers' ids asked together, not one query each
