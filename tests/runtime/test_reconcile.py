"""Reconciliation repairs what the journal missed and reports what it cannot explain; the audit
catches duplicates, lost fills and mismatches (so that its zeros elsewhere mean something)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from order_path_support import (
    LINEAGE,
    STATE_KINDS,
    bar_of,
    intents,
    make_order_path,
    sqlite_journal,
    state_of,
)

from xray_core.trading.orders import Fill, Order, OrderIntent, OrderStatus, Side
from xray_runtime.execution import wall_ms
from xray_runtime.journal import fills_table
from xray_runtime.reconcile import audit

BUY_BTC = [("BTC/USDT", "buy", 0.01)]
TEN_MINUTES = 600_000


@pytest.fixture(params=STATE_KINDS)
async def state(request):
    async for held in state_of(request.param):
        yield held


@pytest.fixture
async def path(emulator, admin, state, tmp_path):
    order_path = make_order_path(emulator, admin, sqlite_journal(tmp_path), state)
    yield order_path
    await order_path.pool.close()


async def test_a_lost_fill_is_found_and_recorded(path):
    account = path.add_user("amy")
    [order] = await path.executor.submit(account, intents("amy", bar_of(path.emulator), BUY_BTC))
    with path.journal.engine.begin() as conn:  # the fill never made it to the journal
        conn.execute(sa.delete(fills_table))
    assert path.audit("amy").lost_fills == 1
    report = await path.reconcile("amy")
    assert (report.fills_added, report.balance_diffs) == (1, 0)
    assert [f.client_order_id for f in path.journal.fills("amy")] == [order.client_order_id]
    assert path.audit("amy").clean


async def test_an_exchange_order_the_journal_never_saw_is_reported(path, mexc_at):
    account = path.add_user("bea")
    direct = mexc_at(path.emulator.base_url, account.api_key.get_secret_value(),
                     account.api_secret.get_secret_value())
    direct.create_order("ETH/USDT", "market", "buy", 0.1, None, {"clientOrderId": "by-hand-1"})
    report = await path.reconcile("bea")
    assert report.unknown_orders == 1 and "by-hand-1" in " ".join(report.details)
    assert report.fills_added == 1  # its trade is still recorded: the journal holds every exchange trade
    assert path.audit("bea").duplicate_orders == 1


async def test_an_order_that_never_reached_the_exchange_is_rejected_once_it_cannot_arrive(path):
    account = path.add_user("cid")
    path.admin.set_faults("error5xx:status=503:path=/api/v3/order:method=POST")
    [order] = await path.executor.submit(account, intents("cid", bar_of(path.emulator), BUY_BTC))
    path.admin.set_faults("")
    assert order.status is OrderStatus.SUBMITTED and "unresolved after 4 attempts" in order.reason
    assert path.executor.stats.unresolved == 1
    await path.reconcile("cid")
    assert path.journal.get(order.client_order_id).status is OrderStatus.SUBMITTED  # too early to say
    report = await path.reconcile("cid", now_ms=lambda: wall_ms() + TEN_MINUTES)
    settled = path.journal.get(order.client_order_id)
    assert report.orders_updated == 1
    assert settled.status is OrderStatus.REJECTED and "never reached the exchange" in settled.reason
    assert path.truth("cid")["orders"] == [] and path.audit("cid").clean
    assert await path.state_equals_journal("cid")


async def test_a_balance_the_fills_do_not_explain_is_reported(path):
    account = path.add_user("dan", {"USDT": "5000", "BTC": "1"})  # BTC the journal knows nothing of
    await path.executor.submit(account, intents("dan", bar_of(path.emulator), BUY_BTC))
    report = await path.reconcile("dan")
    assert report.balance_diffs == 1
    assert any(line.startswith("BTC: exchange holds 1.0") for line in report.details)


async def test_an_unreachable_exchange_leaves_orders_as_they_were(path):
    account = path.add_user("eve")
    [intent] = intents("eve", bar_of(path.emulator), BUY_BTC)
    submitted = Order.from_intent(intent, wall_ms()).advance(OrderStatus.SUBMITTED, wall_ms())
    path.journal.upsert_orders([submitted])
    await path.pool.client(account)  # markets loaded while the exchange still answered
    path.admin.set_faults("error5xx:status=503")
    report = await path.reconcile("eve", now_ms=lambda: wall_ms() + TEN_MINUTES)
    path.admin.set_faults("")
    assert report.unresolved >= 1 and report.orders_updated == 0
    assert path.journal.get(submitted.client_order_id) == submitted  # unknown is not a reason to guess


def test_the_audit_finds_duplicates_lost_fills_and_mismatches(tmp_path):
    journal = sqlite_journal(tmp_path)
    intent = OrderIntent("u", "BTC/USDT", Side.BUY, 0.01, 60_000, "enter", LINEAGE)
    cid = intent.client_order_id
    local = Order.from_intent(intent, 1).advance(OrderStatus.SUBMITTED, 2).advance(
        OrderStatus.PARTIALLY_FILLED, 3, filled=0.004)
    journal.upsert_orders([local])
    journal.add_fills([Fill("T1", cid, "u", "BTC/USDT", Side.BUY, 0.004, 100.0, 0.0, "BTC", 10),
                       Fill("T9", cid, "u", "BTC/USDT", Side.BUY, 0.001, 100.0, 0.0, "BTC", 11)])
    truth = {
        "orders": [
            {"clientOrderId": cid, "orderId": "O1", "status": "FILLED", "executedQty": "0.01"},
            {"clientOrderId": cid, "orderId": "O2", "status": "FILLED", "executedQty": "0.01"},
            {"clientOrderId": None, "orderId": "O3", "status": "NEW", "executedQty": "0"},
        ],
        "trades": [{"id": "T1", "orderId": "O1", "qty": "0.004"},
                   {"id": "T2", "orderId": "O1", "qty": "0.006"}],
    }
    result = audit(truth, journal, "u")
    assert result.duplicate_orders == 2  # O2 repeats the client id, O3 has no local record
    assert result.lost_fills == 1  # T2
    assert result.state_mismatches == 2  # partially filled vs FILLED, and T9 the exchange never made
    assert not result.clean
