"""The book: positions are what X-Ray bought (the journal's fills) capped by what the exchange holds,
prices are the last known closes, and an equity that cannot be known is NaN, never zero."""

import math

import numpy as np
import pytest

from xray_core.trading.orders import Fill, Side
from xray_runtime.book import Book, Sizing

SIZING = Sizing("balanced", 0.1, 1.0, 1.0, 1_000.0, 0.05, 0.2)


def _book(*users):
    book = Book()
    book.set_symbols(["BTC/USDT", "ETH/USDT"])
    book.set_users([(u, SIZING) for u in users])
    return book


def _fill(user, side, amount, price=100.0, fee=0.0, fee_currency="USDT", symbol="ETH/USDT", trade="t"):
    return Fill(trade, "cid", user, symbol, side, amount, price, fee, fee_currency, 0)


def test_a_position_is_what_x_ray_bought_capped_by_what_the_exchange_holds():
    book = _book("held_before", "withdrew", "oversold")
    book.set_held("held_before", {"ETH/USDT": 1.0})
    book.set_held("withdrew", {"ETH/USDT": 2.0})
    book.set_held("oversold", {"ETH/USDT": -0.5})  # sold coins it held before X-Ray
    book.set_balances("held_before", {"USDT": 10.0, "ETH": 6.0, "BTC": 0.3})  # 5 ETH and BTC held before
    book.set_balances("withdrew", {"USDT": 10.0, "ETH": 0.5})  # 1.5 of X-Ray's 2 ETH withdrawn
    book.set_balances("oversold", {"USDT": 10.0, "ETH": 4.0})
    eth = book.symbol_index["ETH/USDT"]
    assert list(book.position[:, eth]) == [1.0, 0.5, 0.0]
    assert list(book.position[:, book.symbol_index["BTC/USDT"]]) == [0.0, 0.0, 0.0]


def test_fills_move_both_sides_and_fills_found_by_reconciliation_only_the_journals():
    book = _book("u")
    book.set_held("u", {})
    book.set_balances("u", {"USDT": 1_000.0, "ETH": 3.0})  # 3 ETH of the user's own
    book.apply_fill(_fill("u", Side.BUY, 2.0, fee=0.002, fee_currency="ETH"))
    eth = book.symbol_index["ETH/USDT"]
    assert book.position[0, eth] == pytest.approx(1.998) and book.cash[0] == pytest.approx(800.0)
    book.apply_fill(_fill("u", Side.SELL, 1.0, fee=0.1, trade="t2"))
    assert book.position[0, eth] == pytest.approx(0.998) and book.cash[0] == pytest.approx(899.9)
    # Reconciliation read balances that already include a buy it found: only the journal's side moves.
    book.set_balances("u", {"USDT": 799.9, "ETH": 5.0 - 0.002})
    assert book.position[0, eth] == pytest.approx(0.998)
    book.record_fills([_fill("u", Side.BUY, 1.0, trade="t3")])
    assert book.position[0, eth] == pytest.approx(1.998) and book.cash[0] == pytest.approx(799.9)


def test_prices_are_the_last_known_closes_and_unknown_equity_is_nan():
    book = _book("u", "v")
    book.set_held("u", {"ETH/USDT": 1.0})
    book.set_held("v", {})
    assert np.isnan(book.equity()).all()  # balances not read yet
    book.set_balances("u", {"USDT": 100.0, "ETH": 1.0})
    book.set_balances("v", {"USDT": 50.0})
    assert math.isnan(book.equity()[0]) and book.equity()[1] == 50.0  # ETH never priced: unknown
    book.mark({"ETH/USDT": 200.0, "BTC/USDT": float("nan")})
    assert list(book.equity()) == [300.0, 50.0]
    book.mark({"ETH/USDT": float("nan")})  # a null close
    assert list(book.equity()) == [300.0, 50.0]
    book.set_symbols(["BTC/USDT"])  # a reload drops ETH: held, so it stays, priced
    assert book.symbols == ["BTC/USDT", "ETH/USDT"] and list(book.equity()) == [300.0, 50.0]
    book.set_users([("v", SIZING), ("u", SIZING)])  # rows move with their users
    assert list(book.equity()) == [50.0, 300.0]


def test_a_symbol_held_only_in_the_journal_gets_a_column():
    book = _book("u")
    book.set_held("u", {"SOL/USDT": 4.0, "XRP/USDT": 0.0})
    assert book.symbols == ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
    book.set_balances("u", {"USDT": 0.0, "SOL": 4.0})
    assert book.position[0, book.symbol_index["SOL/USDT"]] == 4.0 and book.held_symbols() == ["SOL/USDT"]


def test_a_fill_on_a_symbol_without_a_column_adds_it_priced_and_capped_by_the_last_balances():
    book = _book("u")
    book.set_held("u", {})
    book.set_balances("u", {"USDT": 90.0, "SOL": 1.0})  # reconciliation read SOL: not a column yet
    book.record_fills([_fill("u", Side.BUY, 1.0, price=10.0, symbol="SOL/USDT")])  # a lost fill found
    sol = book.symbol_index["SOL/USDT"]
    assert book.position[0, sol] == 1.0 and book.held_symbols() == ["SOL/USDT"]
    book.mark({"SOL/USDT": 10.0})
    assert book.equity()[0] == 100.0
