"""Reconciliation: make the journal agree with the exchange, and say how far apart they were.

`reconcile` runs for a user at start and periodically, reading the venue's typed reports through
its `VenueClient`. It never sends an order; it asks:

1. every non-terminal local order, by client order id: adopt its status, filled and average, and
   record its trades (an order that filled on a later bar, or whose answer was lost, is settled
   here). An order the exchange still does not have long after it was handed over
   (`never_placed_after_ms`, by default twice the venue's longest recvWindow) never reached it:
   REJECTED with that reason. Why the wait is safe: a signed request is refused once its recvWindow
   has passed (the venue's traits say how long that can be), so a request held somewhere cannot
   create the order after that.
2. the account's trades on each symbol since the newest recorded fill: every trade missing locally
   is recorded (a lost fill found and repaired).
3. the account's orders on each symbol: one whose client order id the journal does not know is
   reported (write-ahead means it should not happen).
4. balances: each base currency's exchange total against the journal's position.

The report counts each kind of difference for metrics. `audit` is the strict check tests and the
load test use against the emulator's own record of an account (GET /_emulator/accounts/{key}).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from xray_core.exchange.protocol import VenueClient, VenueError
from xray_core.exchange.reports import BalanceReport
from xray_core.exchange.venues.mexc import NATIVE_ORDER_STATUS
from xray_core.trading.orders import Fill, Order, OrderStatus
from xray_runtime.exchange_orders import adopt, lookup, rejected
from xray_runtime.exchange_pool import ExchangeAccount
from xray_runtime.execution import wall_ms
from xray_runtime.journal import Journal
from xray_runtime.order_state import OrderState, OrderStateUnavailableError, rebuild_from

log = logging.getLogger(__name__)

RECONCILE_LOOKUPS = 8  # order lookups in flight per reconciled user


@dataclass
class ReconcileReport:
    user_id: str
    orders_updated: int = 0  # local orders whose state changed to the exchange's
    fills_added: int = 0  # exchange trades that were missing locally
    unknown_orders: int = 0  # exchange orders the journal has no record of
    balance_diffs: int = 0  # currencies whose exchange total differs from the journal's position
    unresolved: int = 0  # non-terminal orders the exchange could not be asked about this time
    details: list[str] = field(default_factory=list)
    balance: BalanceReport | None = None  # the exchange's balance as read for the comparison

    def counts(self) -> dict[str, int]:
        return {"orders_updated": self.orders_updated, "fills_added": self.fills_added,
                "unknown_orders": self.unknown_orders, "balance_diffs": self.balance_diffs,
                "unresolved": self.unresolved}


async def reconcile(account: ExchangeAccount, venue: VenueClient, journal: Journal, state: OrderState,
                    symbols: Iterable[str], *, now_ms: Callable[[], int] = wall_ms,
                    since_ms: int | None = None, never_placed_after_ms: int | None = None) -> ReconcileReport:
    """Reconcile `account`'s orders, fills and balances on `symbols` (plus the symbols of its open
    orders) against the exchange through `venue`, and write the repairs to journal and state."""
    user_id = account.user_id
    report = ReconcileReport(user_id)
    if never_placed_after_ms is None:
        never_placed_after_ms = 2 * venue.traits.max_recv_window_ms
    open_orders = await asyncio.to_thread(journal.open_orders, user_id)
    wanted = sorted(set(symbols) | {order.symbol for order in open_orders})
    updated, fills = await _resolve_open(venue, open_orders, report, now_ms, never_placed_after_ms)
    await asyncio.to_thread(journal.add_fills, fills)  # fills first: no order claims a fill not kept
    await asyncio.to_thread(journal.upsert_orders, updated)
    report.orders_updated = len(updated)
    for symbol in wanted:
        since = since_ms if since_ms is not None else await _since(journal, user_id, symbol, open_orders)
        try:
            report.fills_added += await _sweep_trades(venue, journal, user_id, symbol, since)
            await _find_unknown_orders(venue, journal, user_id, symbol, since, report)
        except VenueError as error:
            report.unresolved += 1
            report.details.append(f"{symbol}: exchange not asked ({error.reason})")
    await _compare_balances(venue, journal, user_id, wanted, report)
    await _refresh_state(journal, state, user_id, updated, report)
    if any(report.counts().values()):
        log.info("reconciled user %s", user_id, extra={"user_id": user_id, **report.counts()})
    return report


async def _resolve_open(
    venue: VenueClient, orders: Sequence[Order], report: ReconcileReport, now_ms: Callable[[], int],
    never_placed_after_ms: int,
) -> tuple[list[Order], list[Fill]]:
    slots = asyncio.Semaphore(RECONCILE_LOOKUPS)

    async def one(order: Order) -> tuple[Order, list[Fill]]:
        async with slots:
            found = await lookup(venue, order)
        if found.order is not None:
            adoption = await adopt(venue, order, found.order, now_ms())
            if adoption.note:
                report.details.append(f"{order.client_order_id}: {adoption.note}")
            return adoption.order, adoption.fills
        age = now_ms() - order.updated_ms
        never_sent = order.status in (OrderStatus.PENDING, OrderStatus.SUBMITTED)
        if found.missing and never_sent and age >= never_placed_after_ms:
            return rejected(order, now_ms(), f"never reached the exchange ({age} ms after submission)"), []
        if not found.missing:
            report.unresolved += 1
            report.details.append(f"{order.client_order_id}: exchange not asked ({found.error})")
        return order, []

    results = await asyncio.gather(*(one(order) for order in orders))
    updated = [new for old, (new, _) in zip(orders, results, strict=True) if new != old]
    return updated, [fill for _, fills in results for fill in fills]


async def _since(journal: Journal, user_id: str, symbol: str, open_orders: Sequence[Order]) -> int | None:
    """Where the trade sweep starts: the newest recorded fill, or the earliest open order's bar on
    the symbol if that is earlier; None (the latest page) when neither exists."""
    latest = await asyncio.to_thread(journal.latest_fill_ms, user_id, symbol)
    bars = [order.bar_ms for order in open_orders if order.symbol == symbol]
    candidates = [t for t in (latest, min(bars, default=None)) if t is not None]
    return min(candidates) if candidates else None


async def _sweep_trades(venue: VenueClient, journal: Journal, user_id: str, symbol: str,
                        since: int | None) -> int:
    """Record every trade on `symbol` from `since` that the journal lacks; returns how many."""
    recorded = await asyncio.to_thread(journal.orders, user_id, symbol)
    by_exchange_id = {o.exchange_order_id: o.client_order_id for o in recorded if o.exchange_order_id}
    trades = await venue.fetch_my_trades(symbol, since)  # paged by the venue client
    fills = [trade.to_fill(user_id, by_exchange_id.get(trade.exchange_order_id or "")) for trade in trades]
    return await asyncio.to_thread(journal.add_fills, fills)


async def _find_unknown_orders(venue: VenueClient, journal: Journal, user_id: str, symbol: str,
                               since: int | None, report: ReconcileReport) -> None:
    exchange_orders = await venue.fetch_orders(symbol, since)
    ids = [o.client_order_id or "" for o in exchange_orders]
    known = await asyncio.to_thread(journal.get_many, [cid for cid in ids if cid])
    for order, cid in zip(exchange_orders, ids, strict=True):
        if cid not in known:
            report.unknown_orders += 1
            report.details.append(f"{symbol}: exchange order {order.exchange_order_id} "
                                  f"(client id {cid or 'none'}) is not in the journal")


async def _compare_balances(venue: VenueClient, journal: Journal, user_id: str, symbols: Sequence[str],
                            report: ReconcileReport) -> None:
    """Each base currency's exchange total against the journal's position (the quote currency is
    not compared: its starting balance is not the journal's to know)."""
    if not symbols:
        return
    try:
        balance = report.balance = await venue.fetch_balance()
    except VenueError as error:
        report.unresolved += 1
        report.details.append(f"balances not read ({error.reason})")
        return
    held: dict[str, float] = defaultdict(float)
    for symbol in symbols:
        held[symbol.split("/")[0]] += await asyncio.to_thread(journal.position, user_id, symbol)
    for asset, expected in sorted(held.items()):
        actual = balance.total_of(asset)
        if abs(actual - expected) > max(1e-9, 1e-6 * max(abs(actual), abs(expected))):
            report.balance_diffs += 1
            report.details.append(f"{asset}: exchange holds {actual}, the journal's fills say {expected}")


async def _refresh_state(journal: Journal, state: OrderState, user_id: str, updated: Sequence[Order],
                         report: ReconcileReport) -> None:
    try:
        await state.put(updated)
        await rebuild_from(journal, state, [user_id])
    except OrderStateUnavailableError as error:
        report.details.append(f"order state not refreshed: {error.problem}")


# ---- audit ---------------------------------------------------------------------------------------


@dataclass
class AuditResult:
    duplicate_orders: int = 0  # exchange orders beyond one per client id, or with no local record
    lost_fills: int = 0  # exchange trades missing from the journal's fills
    state_mismatches: int = 0  # local orders (or fills) that disagree with the exchange
    details: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.duplicate_orders or self.lost_fills or self.state_mismatches)


def audit(account_truth: dict[str, Any], journal: Journal, user_id: str) -> AuditResult:
    """Compare the journal's orders and fills of `user_id` with the emulator's record of the account
    (GET /_emulator/accounts/{key}: MEXC-shaped orders and trades)."""
    result = AuditResult()
    local = {order.client_order_id: order for order in journal.orders(user_id)}
    exchange: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
    for order in account_truth["orders"]:
        exchange[order.get("clientOrderId")].append(order)
    for cid, group in exchange.items():
        extra = len(group) if cid is None or cid not in local else len(group) - 1
        if extra:
            result.duplicate_orders += extra
            result.details.append(f"client id {cid}: {len(group)} exchange orders, recorded: {cid in local}")
    for cid, order in local.items():
        _audit_order(order, exchange.get(cid), result)
    _audit_fills(account_truth["trades"], journal.fills(user_id), result)
    return result


def _audit_order(order: Order, group: list[dict[str, Any]] | None, result: AuditResult) -> None:
    if not group:
        if order.status is not OrderStatus.REJECTED:  # only a rejected order may be absent
            result.state_mismatches += 1
            result.details.append(f"{order.client_order_id}: {order.status} locally, not on the exchange")
        return
    truth = group[0]
    status, filled = NATIVE_ORDER_STATUS.get(truth["status"]), float(truth["executedQty"])
    if status != order.status or abs(filled - order.filled) > 1e-9:
        result.state_mismatches += 1
        result.details.append(f"{order.client_order_id}: local {order.status}/{order.filled}, "
                              f"exchange {truth['status']}/{filled}")


def _audit_fills(trades: Sequence[dict[str, Any]], fills: Sequence[Fill], result: AuditResult) -> None:
    local = {fill.trade_id: fill for fill in fills}
    exchange_ids = {str(trade["id"]) for trade in trades}
    for trade in trades:
        if str(trade["id"]) not in local:
            result.lost_fills += 1
            result.details.append(f"trade {trade['id']} of order {trade['orderId']} is not in the journal")
        elif abs(local[str(trade["id"])].amount - float(trade["qty"])) > 1e-12:
            result.state_mismatches += 1
            result.details.append(f"trade {trade['id']}: local amount differs from {trade['qty']}")
    for trade_id in local.keys() - exchange_ids:
        result.state_mismatches += 1
        result.details.append(f"fill {trade_id} is in the journal but not on the exchange")
