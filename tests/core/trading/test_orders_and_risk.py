"""The pure trading domain: deterministic client order ids, the order life cycle, risk limits."""

import numpy as np
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
from xray_core.trading.risk import Block, RiskBook, entry_notional

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


def _risk_book():
    return RiskBook(max_daily_loss=np.array([0.05, 0.05, 0.5]), max_drawdown=np.array([0.2, 0.1, 0.9]),
                    global_max_daily_loss=0.2)


def test_daily_loss_blocks_entries_until_the_next_day_and_drawdown_kills():
    book = _risk_book()
    day = 86_400_000
    block, killed, global_on = book.update(np.array([100.0, 100.0, 100.0]), now_ms=day)
    assert list(block) == [Block.NONE] * 3 and not killed.any() and not global_on
    block, killed, _ = book.update(np.array([94.0, 89.0, 100.0]), now_ms=day + 1)
    assert list(block) == [Block.DAILY_LOSS, Block.KILLED, Block.NONE]
    assert list(killed) == [False, True, False]
    block, killed, _ = book.update(np.array([94.0, 95.0, 100.0]), now_ms=2 * day)  # a new day
    assert list(block) == [Block.NONE, Block.KILLED, Block.NONE] and not killed.any()  # killed stays killed
    book.revive(1, 95.0)
    block, _, _ = book.update(np.array([94.0, 95.0, 100.0]), now_ms=2 * day + 1)
    assert block[1] == Block.NONE


def test_the_global_kill_switch_blocks_everyone():
    book = RiskBook(np.full(2, 0.9), np.full(2, 0.95), global_max_daily_loss=0.2)
    book.update(np.array([100.0, 100.0]), now_ms=0)
    block, _, global_on = book.update(np.array([100.0, 50.0]), now_ms=1)  # 25% combined loss
    assert global_on and list(block) == [Block.GLOBAL, Block.GLOBAL]


def test_entry_size_respects_equity_share_max_position_and_free_cash():
    notional = entry_notional(
        equity=np.array([10_000.0, 10_000.0, 10_000.0]), free_quote=np.array([10_000.0, 10_000.0, 50.0]),
        trade_percentage=np.array([0.1, 0.5, 0.1]), leverage=np.array([1.0, 1.0, 1.0]),
        margin_multiplier=np.array([1.0, 1.0, 1.0]), max_position_usd=np.array([5_000.0, 2_000.0, 5_000.0]),
    )
    assert notional.tolist() == pytest.approx([1_000.0, 2_000.0, 50 * 0.995])


def test_users_joining_and_leaving_keep_their_own_risk_history():
    book = _risk_book()
    book.update(np.array([100.0, 100.0, 100.0]), now_ms=0)
    book.update(np.array([100.0, 85.0, 100.0]), now_ms=1)  # the second user is killed
    # The first user leaves, a new one arrives last: rows are now (old 1, old 2, new).
    book.reindex(np.array([1, 2, -1]), np.full(3, 0.05), np.full(3, 0.2))
    block, killed, _ = book.update(np.array([85.0, 100.0, 50.0]), now_ms=2)
    assert list(block) == [Block.KILLED, Block.NONE, Block.NONE]  # the newcomer starts from its equity
    assert not killed.any()
