"""The pure trading domain: deterministic client order ids, the order life cycle."""

import pytest

from xray_core.trading.orders import (
    IllegalTransitionError,
    Lineage,
    Order,
    OrderIntent,
    OrderStatus,
    Side,
    client_order_id,
    status_from_ccxt,
)

LINEAGE = Lineage("b1", "sma_cross", '{"fast": 10}', None, "v1@0")


def _order():
    intent = OrderIntent("alice", "BTC/USDT", Side.BUY, 0.01, 1_000, "enter", LINEAGE)
    return Order.from_intent(intent, now_ms=1)


def test_the_same_decision_always_gets_the_same_client_order_id_and_others_differ():
    first = client_order_id("alice", "BTC/USDT", 1_000, "enter")
    assert first == client_order_id("alice", "BTC/USDT", 1_000, "enter")
    assert len(first) == 32 and first.startswith("x")
    others = {client_order_id(u, s, b, i) for u, s, b, i in [
        ("bob", "BTC/USDT", 1_000, "enter"), ("alice", "ETH/USDT", 1_000, "enter"),
        ("alice", "BTC/USDT", 2_000, "enter"), ("alice", "BTC/USDT", 1_000, "exit")]}
    assert first not in others and len(others) == 4


def test_an_order_moves_forward_only():
    order = _order()
    sent = order.advance(OrderStatus.SUBMITTED, 2)
    part = sent.advance(OrderStatus.PARTIALLY_FILLED, 3, filled=0.004, average=100.0, exchange_order_id="E1")
    done = part.advance(OrderStatus.FILLED, 4, filled=0.01)
    assert (done.status, done.filled, done.average) == (OrderStatus.FILLED, 0.01, 100.0)
    assert done.exchange_order_id == "E1"
    assert done.terminal and not part.terminal
    with pytest.raises(IllegalTransitionError, match="filled -> open"):
        done.advance(OrderStatus.OPEN, 5)
    with pytest.raises(IllegalTransitionError, match="filled would fall"):
        part.advance(OrderStatus.PARTIALLY_FILLED, 5, filled=0.001)
    with pytest.raises(IllegalTransitionError):
        order.advance(OrderStatus.FILLED, 5)  # never sent, so never filled


@pytest.mark.parametrize(("ccxt_order", "status"), [
    ({"status": "closed", "filled": 1}, OrderStatus.FILLED),
    ({"status": "open", "filled": 0}, OrderStatus.OPEN),
    ({"status": "open", "filled": 0.5}, OrderStatus.PARTIALLY_FILLED),
    ({"status": "canceled"}, OrderStatus.CANCELED),
    ({"status": None}, OrderStatus.SUBMITTED),
])
def test_ccxt_statuses_map_to_ours(ccxt_order, status):
    assert status_from_ccxt(ccxt_order) == status
