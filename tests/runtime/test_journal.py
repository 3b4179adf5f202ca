"""The order journal: the durable record of orders and fills, on SQLite and on Postgres."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from order_path_support import JOURNAL_KINDS, LINEAGE, journal_of

from xray_core.trading.orders import Fill, Order, OrderIntent, OrderStatus, Side
from xray_runtime.db import connect
from xray_runtime.journal import Journal, orders_table


@pytest.fixture(params=JOURNAL_KINDS)
def journal(request, tmp_path):
    yield from journal_of(request.param, tmp_path)


def _order(user: str = "u1", symbol: str = "BTC/USDT", intent: str = "enter", bar_ms: int = 60_000,
           side: Side = Side.BUY, amount: float = 0.5) -> Order:
    return Order.from_intent(OrderIntent(user, symbol, side, amount, bar_ms, intent, LINEAGE), now_ms=1_000)


def _fill(trade_id: str, user: str = "u1", side: Side = Side.BUY, amount: float = 1.0, fee: float = 0.0,
          fee_currency: str = "BTC", symbol: str = "BTC/USDT", timestamp_ms: int = 5_000) -> Fill:
    return Fill(trade_id, "cid", user, symbol, side, amount, 100.0, fee, fee_currency, timestamp_ms)


def test_an_order_comes_back_as_written_with_its_lineage(journal):
    order = _order().advance(OrderStatus.SUBMITTED, 2_000)
    journal.upsert_orders([order])
    assert journal.get(order.client_order_id) == order
    assert journal.get(order.client_order_id).lineage.model_version == "gbm@3"
    assert journal.get("x-unknown") is None


def test_upserts_move_an_order_forward_and_keep_when_it_was_created(journal):
    order = _order()
    journal.upsert_orders([order])
    filled = order.advance(OrderStatus.SUBMITTED, 2_000).advance(
        OrderStatus.FILLED, 3_000, filled=0.5, average=101.5, exchange_order_id="E1")
    journal.upsert_orders([filled])
    assert journal.get(order.client_order_id) == filled
    with journal.engine.connect() as conn:
        created = conn.execute(sa.select(orders_table.c.created_ms)).scalar_one()
    assert created == 1_000


def test_a_terminal_order_never_changes_and_filled_never_falls(journal):
    submitted = _order().advance(OrderStatus.SUBMITTED, 2_000)
    partial = submitted.advance(OrderStatus.PARTIALLY_FILLED, 3_000, filled=0.2)
    journal.upsert_orders([partial])
    journal.upsert_orders([submitted])  # a stale writer: would lower filled
    assert journal.get(partial.client_order_id) == partial
    done = partial.advance(OrderStatus.FILLED, 4_000, filled=0.5)
    journal.upsert_orders([done])
    journal.upsert_orders([partial.advance(OrderStatus.PARTIALLY_FILLED, 5_000, filled=0.4)])
    assert journal.get(done.client_order_id) == done


def test_open_orders_are_the_non_terminal_ones_by_user(journal):
    a = _order("u1", intent="a").advance(OrderStatus.SUBMITTED, 2_000)
    b = _order("u1", intent="b").advance(OrderStatus.REJECTED, 2_000, reason="no funds")
    c = _order("u2", intent="c")
    journal.upsert_orders([a, b, c])
    assert journal.open_orders("u1") == [a]
    assert {o.client_order_id for o in journal.open_orders()} == {a.client_order_id, c.client_order_id}
    assert {o.client_order_id for o in journal.orders("u1")} == {a.client_order_id, b.client_order_id}
    assert journal.orders("u1", symbol="ETH/USDT") == []


def test_fills_are_recorded_once_however_often_they_are_seen(journal):
    assert journal.add_fills([_fill("t1"), _fill("t2"), _fill("t1")]) == 2
    assert journal.add_fills([_fill("t2"), _fill("t3")]) == 1
    assert journal.add_fills([_fill("t1", user="u2")]) == 1  # trade ids are unique per user's key
    assert [f.trade_id for f in journal.fills("u1")] == ["t1", "t2", "t3"]
    assert journal.fills("u1")[0] == _fill("t1")
    assert journal.latest_fill_ms("u1", "BTC/USDT") == 5_000
    assert journal.latest_fill_ms("u1", "ETH/USDT") is None


def test_the_position_is_bought_less_sold_less_fees_paid_in_base(journal):
    journal.add_fills([
        _fill("t1", side=Side.BUY, amount=1.0, fee=0.001, fee_currency="BTC"),
        _fill("t2", side=Side.SELL, amount=0.4, fee=0.02, fee_currency="USDT"),
        _fill("t3", side=Side.BUY, amount=2.0, symbol="ETH/USDT", fee_currency="ETH"),
    ])
    assert abs(journal.position("u1", "BTC/USDT") - 0.599) < 1e-12
    assert journal.position("u1", "SOL/USDT") == 0.0


def test_large_batches_are_written_in_one_call(journal):
    orders = [_order(intent=f"i{i}") for i in range(1_200)]
    journal.upsert_orders(orders)
    assert len(journal.get_many(o.client_order_id for o in orders)) == 1_200
    assert journal.add_fills([_fill(f"t{i}") for i in range(1_200)]) == 1_200


def test_connect_creates_the_journal_tables(tmp_path):
    engine = connect(f"sqlite:///{tmp_path}/runtime.db")
    assert {"orders", "fills"} <= set(sa.inspect(engine).get_table_names())
    Journal(engine).upsert_orders([_order()])


def test_the_orders_table_is_indexed_by_user_and_status(journal):
    schema = (journal.engine.get_execution_options().get("schema_translate_map") or {}).get(None)
    indexes = sa.inspect(journal.engine).get_indexes("orders", schema=schema)
    assert any(index["column_names"] == ["user_id", "status"] for index in indexes)


def test_orders_in_doubt_and_every_users_positions_are_read_in_one_go(journal):
    a = _order("u1", intent="a").advance(OrderStatus.SUBMITTED, 2_000)
    b = _order("u1", intent="b").advance(OrderStatus.REJECTED, 2_000, reason="no funds")
    c = _order("u2", intent="c")
    journal.upsert_orders([a, b, c])
    assert {o.client_order_id for o in journal.in_doubt()} == {a.client_order_id, c.client_order_id}
    journal.add_fills([
        _fill("t1", side=Side.BUY, amount=1.0, fee=0.001, fee_currency="BTC"),
        _fill("t2", side=Side.SELL, amount=0.4, fee=0.02, fee_currency="USDT"),
        _fill("t3", side=Side.BUY, amount=2.0, symbol="ETH/USDT", fee_currency="ETH", fee=0.01),
        _fill("t4", user="u2", side=Side.BUY, amount=3.0, symbol="ETH/USDT", fee_currency="USDT"),
    ])
    held = journal.positions(["u1", "u2", "u3"])
    assert held.keys() == {"u1", "u2"}
    assert held["u1"] == {"BTC/USDT": pytest.approx(0.599), "ETH/USDT": pytest.approx(1.99)}
    assert held["u2"] == {"ETH/USDT": 3.0}
    assert held["u1"]["BTC/USDT"] == pytest.approx(journal.position("u1", "BTC/USDT"))


def test_connect_adds_an_index_declared_after_the_table_was_made(tmp_path):
    url = f"sqlite:///{tmp_path}/runtime.db"
    engine = connect(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP INDEX ix_orders_status"))  # as made by a version without it
    connect(url)
    assert any(index["name"] == "ix_orders_status" for index in sa.inspect(engine).get_indexes("orders"))
