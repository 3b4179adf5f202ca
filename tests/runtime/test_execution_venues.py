"""The order path reads the venue only through `VenueClient` and its traits: a venue that does not
deduplicate client order ids never gets an ambiguous order twice, and reconciliation works on the
typed reports of any venue client (here an in-memory one), malformed answers included."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import pytest
from order_path_support import bar_of, intents, make_order_path, sqlite_journal

from xray_core.exchange.protocol import MalformedReportError, VenueOrderNotFoundError
from xray_core.exchange.reports import BalanceReport, FillReport, MarketReport, OrderReport
from xray_core.exchange.venues import GENERIC, MEXC, VenueTraits
from xray_core.trading.orders import Order, OrderStatus, Side
from xray_runtime.exchange_pool import ExchangeAccount
from xray_runtime.execution import wall_ms
from xray_runtime.order_state import LocalOrderState
from xray_runtime.reconcile import reconcile

BUY_BTC = [("BTC/USDT", "buy", 0.01)]
TEN_MINUTES = 600_000


@pytest.fixture
async def path(emulator, admin, tmp_path):
    order_path = make_order_path(emulator, admin, sqlite_journal(tmp_path), LocalOrderState())
    yield order_path
    await order_path.pool.close()


async def test_an_ambiguous_send_is_not_repeated_to_a_venue_that_does_not_deduplicate(path):
    path.pool.traits = lambda _id: dataclasses.replace(MEXC, deduplicates_client_order_ids=False)
    account = path.add_user("ida")
    bar = bar_of(path.emulator)  # one bar for both submits, even if a minute turns in between
    path.admin.set_faults("drop:when=before:path=/api/v3/order:method=POST:count=1")
    [order] = await path.executor.submit(account, intents("ida", bar, BUY_BTC))
    path.admin.set_faults("")
    assert order.status is OrderStatus.SUBMITTED and "not sent again" in order.reason
    assert path.executor.stats.sent == 1 and path.truth("ida")["orders"] == []
    [again] = await path.executor.submit(account, intents("ida", bar, BUY_BTC))
    assert again.status is OrderStatus.SUBMITTED and path.executor.stats.sent == 1  # resolved, not resent
    report = await path.reconcile("ida", now_ms=lambda: wall_ms() + TEN_MINUTES)
    settled = path.journal.get(order.client_order_id)
    assert report.orders_updated == 1 and settled.status is OrderStatus.REJECTED
    assert path.audit("ida").clean


async def test_the_same_fault_on_mexc_is_sent_again_with_the_same_id(path):
    account = path.add_user("jon")
    path.admin.set_faults("drop:when=before:path=/api/v3/order:method=POST:count=1")
    [order] = await path.executor.submit(account, intents("jon", bar_of(path.emulator), BUY_BTC))
    path.admin.set_faults("")
    assert order.status is OrderStatus.FILLED and path.executor.stats.sent == 2
    assert path.audit("jon").clean


class MemoryVenue:
    """A `VenueClient` holding one filled order and its trade, or answering trades malformed."""

    def __init__(self, order: OrderReport, trades: list[FillReport], garbled_trades: bool = False) -> None:
        self.order, self.trades, self.garbled_trades = order, trades, garbled_trades
        self.traits: VenueTraits = dataclasses.replace(GENERIC, exchange_id="memory")
        self.request_ttl_ms = 0

    async def markets(self) -> Mapping[str, MarketReport]:
        return {}

    async def create_order(self, symbol, side, amount, client_order_id, *, limit_price=None) -> OrderReport:
        raise AssertionError("reconciliation never sends an order")

    async def fetch_order(self, exchange_order_id: str, symbol: str) -> OrderReport:
        return self.order

    async def fetch_order_by_client_id(self, client_order_id: str, symbol: str) -> OrderReport:
        if client_order_id != self.order.client_order_id:
            raise VenueOrderNotFoundError("no such order")
        return self.order

    async def fetch_orders(self, symbol: str, since_ms: int | None = None) -> list[OrderReport]:
        return [self.order] if symbol == self.order.symbol else []

    async def fetch_open_orders(self, symbol: str) -> list[OrderReport]:
        return []

    async def cancel_order(self, exchange_order_id: str, symbol: str) -> OrderReport:
        raise VenueOrderNotFoundError("no open order")

    async def fetch_my_trades(self, symbol: str, since_ms: int | None) -> list[FillReport]:
        if self.garbled_trades:
            raise MalformedReportError("memory fetch_my_trades BTC/USDT: 'price' is missing")
        return [t for t in self.trades if t.symbol == symbol]

    async def fetch_order_trades(self, symbol: str, exchange_order_id: str) -> list[FillReport]:
        return [t for t in self.trades if t.exchange_order_id == exchange_order_id]

    async def fetch_balance(self) -> BalanceReport:
        held = sum(t.amount for t in self.trades)
        return BalanceReport(free={"BTC": held}, used={"BTC": 0.0}, total={"BTC": held})


def _submitted_and_its_venue(garbled_trades: bool = False) -> tuple[Order, MemoryVenue]:
    [intent] = intents("kay", 60_000, BUY_BTC)
    order = Order.from_intent(intent, 1).advance(OrderStatus.SUBMITTED, 2)
    report = OrderReport("E1", order.client_order_id, "BTC/USDT", Side.BUY, OrderStatus.FILLED, 0.01, 0.01,
                         100.0, 3)
    trade = FillReport("T1", "E1", None, "BTC/USDT", Side.BUY, 0.01, 100.0, 0.0, "", 3)
    return order, MemoryVenue(report, [trade], garbled_trades)


async def test_reconciliation_adopts_the_typed_reports_of_any_venue_client(tmp_path):
    journal, state = sqlite_journal(tmp_path), LocalOrderState()
    order, venue = _submitted_and_its_venue()
    journal.upsert_orders([order])
    account = ExchangeAccount.of("kay", "memory", None, "key", "secret")
    report = await reconcile(account, venue, journal, state, ["BTC/USDT"])
    settled = journal.get(order.client_order_id)
    assert (settled.status, settled.filled, settled.average, settled.exchange_order_id) == (
        OrderStatus.FILLED, 0.01, 100.0, "E1")
    assert [(f.trade_id, f.client_order_id) for f in journal.fills("kay")] == [("T1", order.client_order_id)]
    assert report.counts() == {"orders_updated": 1, "fills_added": 0, "unknown_orders": 0, "balance_diffs": 0,
                               "unresolved": 0}  # the fill came with the adopted order, not the sweep
    assert report.balance is not None and report.balance.total_of("BTC") == 0.01


async def test_a_malformed_answer_leaves_the_symbol_unresolved_with_the_reason(tmp_path):
    journal, state = sqlite_journal(tmp_path), LocalOrderState()
    order, venue = _submitted_and_its_venue(garbled_trades=True)
    journal.upsert_orders([order])
    account = ExchangeAccount.of("kay", "memory", None, "key", "secret")
    report = await reconcile(account, venue, journal, state, ["BTC/USDT"])
    assert report.unresolved == 1
    assert any("BTC/USDT: exchange not asked (MalformedReportError: memory fetch_my_trades" in line
               for line in report.details)
    assert journal.get(order.client_order_id).status is OrderStatus.FILLED  # the order itself was read
