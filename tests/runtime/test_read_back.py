"""Sending apart from reading back, against the emulator through real ccxt: `submit(read_back=False)`
returns an acknowledged order after one create request; `read_back` settles it with one trades
request where the venue filters trades by order (MEXC), else (a partial fill, a failed trades
request, no such filter) by reading the order; and a service tick sends every user's orders of the
bar before it reads any back."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import pytest
from order_path_support import bar_of, intents, make_order_path, sqlite_journal
from service_support import add_users, run_bars, start_service

from xray_core.exchange.ccxt_venue import CcxtVenueClient
from xray_core.exchange.venues import MEXC
from xray_core.trading.orders import OrderStatus
from xray_runtime.order_state import LocalOrderState

BUY_BTC = [("BTC/USDT", "buy", 0.01)]
CREATE, ORDER_QUERY, TRADES = "POST /api/v3/order", "GET /api/v3/order", "GET /api/v3/myTrades"


@pytest.fixture
async def path(emulator, admin, tmp_path):
    order_path = make_order_path(emulator, admin, sqlite_journal(tmp_path), LocalOrderState())
    yield order_path
    await order_path.pool.close()


class Requests:
    """How many requests of each endpoint the emulator processed since the last `since()`."""

    def __init__(self, admin: Any) -> None:
        self.admin = admin
        self.seen = self._counts()

    def _counts(self) -> dict[str, int]:
        return dict(self.admin.stats()["by_endpoint"])

    def since(self) -> dict[str, int]:
        now = self._counts()
        new = {name: n - self.seen.get(name, 0) for name, n in now.items() if n != self.seen.get(name, 0)}
        self.seen = now
        return new


async def _acknowledged(path, user: str, requests: Requests):
    account = path.add_user(user)
    await path.pool.venue(account)  # markets loaded before counting
    requests.since()
    [order] = await path.executor.submit(account, intents(user, bar_of(path.emulator), BUY_BTC),
                                         read_back=False)
    return account, order


async def test_an_order_sent_without_read_back_is_acknowledged_after_one_create_request(path, admin):
    requests = Requests(admin)
    _account, order = await _acknowledged(path, "amy", requests)
    assert order.status is OrderStatus.SUBMITTED and order.filled == 0.0
    [venue_order] = path.truth("amy")["orders"]
    assert order.exchange_order_id == venue_order["orderId"]
    assert requests.since() == {CREATE: 1}
    # The journal keeps the write-ahead record (the acknowledgement is the read-back's to record
    # with its fills): a crash now would find the order by its client id, never send it again.
    recorded = path.journal.get(order.client_order_id)
    assert recorded is not None and path.journal.fills("amy") == []
    assert (recorded.status, recorded.exchange_order_id) == (OrderStatus.SUBMITTED, None)


async def test_read_back_fills_an_acknowledged_order_with_one_trades_request(path, admin):
    requests = Requests(admin)
    account, order = await _acknowledged(path, "ben", requests)
    requests.since()
    [settled] = await path.executor.read_back(account, [order])
    assert requests.since() == {TRADES: 1}  # no order query
    assert path.executor.stats.read_back_by_trades == 1
    trades = path.truth("ben")["trades"]
    amount = sum(float(t["qty"]) for t in trades)
    average = sum(float(t["qty"]) * float(t["price"]) for t in trades) / amount
    assert settled.status is OrderStatus.FILLED and settled.exchange_order_id == order.exchange_order_id
    assert settled.filled == pytest.approx(0.01) and settled.average == pytest.approx(average)
    assert path.journal.get(order.client_order_id) == settled
    assert sorted(f.trade_id for f in path.journal.fills("ben")) == sorted(t["id"] for t in trades)
    assert path.audit("ben").clean


async def test_a_partial_fill_is_read_from_the_order_and_ends_as_the_venue_says(path, admin):
    requests = Requests(admin)
    admin.set_faults("partial_fill:path=/api/v3/order:method=POST:ratio=0.4")
    account, order = await _acknowledged(path, "cat", requests)
    admin.set_faults("")
    requests.since()
    [settled] = await path.executor.read_back(account, [order])
    assert requests.since().get(ORDER_QUERY) == 1  # the trades fell short: the order itself was read
    [venue_order] = path.truth("cat")["orders"]
    assert settled.status.value == venue_order["status"].lower() == "partially_filled"
    assert settled.filled == pytest.approx(float(venue_order["executedQty"]))
    assert path.executor.stats.read_back_by_trades == 0
    assert path.journal.get(order.client_order_id) == settled
    assert sum(f.amount for f in path.journal.fills("cat")) == pytest.approx(settled.filled)
    assert path.audit("cat").clean


async def test_a_failed_trades_request_falls_back_to_the_order_query(path, admin):
    requests = Requests(admin)
    account, order = await _acknowledged(path, "dan", requests)
    admin.set_faults("error5xx:path=/api/v3/myTrades:count=1")
    requests.since()
    [settled] = await path.executor.read_back(account, [order])
    admin.set_faults("")
    assert requests.since().get(ORDER_QUERY) == 1
    assert settled.status is OrderStatus.FILLED and settled.filled == pytest.approx(0.01)
    assert path.executor.stats.read_back_by_trades == 0
    assert len(path.journal.fills("dan")) == len(path.truth("dan")["trades"]) > 0
    assert path.audit("dan").clean


async def test_without_a_trades_filter_the_order_is_read_back_by_its_state(path, admin):
    path.pool.traits = lambda _id: dataclasses.replace(MEXC, trades_order_filter_param=None)
    requests = Requests(admin)
    account, order = await _acknowledged(path, "eve", requests)
    requests.since()
    [settled] = await path.executor.read_back(account, [order])
    assert requests.since().get(ORDER_QUERY) == 1
    assert settled.status is OrderStatus.FILLED and path.executor.stats.read_back_by_trades == 0
    assert path.audit("eve").clean


async def test_a_tick_sends_every_users_orders_before_reading_any_back(runtime_env, monkeypatch):
    settings, emulator, admin = runtime_env
    add_users(settings, admin, 3)
    # (what, exchange order id, time.monotonic()): a create when acknowledged, a read when asked.
    events: list[tuple[str, str, float]] = []

    def recording(name: str, what: str, id_of):
        method = getattr(CcxtVenueClient, name)

        async def call(self, *args: Any, **kwargs: Any) -> Any:
            if what == "read":
                events.append((what, id_of(args), time.monotonic()))
            result = await method(self, *args, **kwargs)
            if what == "create":
                events.append((what, result.exchange_order_id, time.monotonic()))
            return result

        monkeypatch.setattr(CcxtVenueClient, name, call)

    recording("create_order", "create", None)
    recording("fetch_order", "read", lambda args: args[0])
    recording("fetch_order_trades", "read", lambda args: args[1])
    # Some creates answered late: a read-back started after an early acknowledgement would overtake them.
    admin.set_faults("latency:path=/api/v3/order:method=POST:p=0.5:ms=300;seed=3")
    service = await start_service(settings, emulator.base_url)
    try:
        reports = await run_bars(service, admin, 8)
    finally:
        await service.stop()
    ticks = [r for r in reports if r.orders]
    assert any(len({o.user_id for o in r.orders}) >= 2 for r in ticks), "several users traded on a bar"
    for report in ticks:
        ids = {o.exchange_order_id for o in report.orders}
        mine = [(i, what, at) for i, (what, eid, at) in enumerate(events) if eid in ids]
        creates = [(i, at) for i, what, at in mine if what == "create"]
        reads = [(i, at) for i, what, at in mine if what == "read"]
        assert len(creates) == len(report.orders) and reads, "each order was sent, then read back"
        assert max(creates)[0] < min(reads)[0], "a read-back overtook an order of the same bar"
        assert report.sent_at is not None and report.send_s > 0
        assert max(creates)[1] <= report.sent_at <= min(reads)[1]  # the send phase ends at the last ack
        assert all(o.status is OrderStatus.FILLED for o in report.orders)
