"""Orders still open from earlier bars, settled before the next decision, and the decisions held back
while one is not (the service calls these every tick).

A partial fill's rest trades on a later bar; an order a fault left unknown may have filled, or never
arrived. Deciding on a book that lacks those fills would sell coins already sold or buy twice, so
before each decision the open orders are asked about (lookups only, beside the candle fetch: quick),
and after the bar's orders went out the ones the venue never got are sent again once their earlier
sends are dead (`Executor.follow`). A (user, symbol) with an order still unsettled gets no new order
on that bar: when in doubt, don't send; the next bar decides it on a book that has those fills.

The lookups before a decision get `budget_s`: what they have not settled by then counts as unsettled
for this bar, and they finish in the background (what they record reaches the book with the next
fills), so a slow exchange delays no decision by more than the budget.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from xray_core.trading.orders import Order, OrderIntent

log = logging.getLogger(__name__)
_BACKGROUND: set[asyncio.Task[Any]] = set()  # lookups that outlived their budget, still finishing


async def follow_open_orders(parts: Any, resend: bool, skip_bar: int | None,
                             budget_s: float | None = None) -> set[tuple[str, str]]:
    """Settle the open orders of `parts`' users, but those of `skip_bar` (the bar being decided: its
    known ids are resolved by the executor's submit), as far as the venue answers now (within
    `budget_s`, when given); returns the (user, symbol) pairs still unsettled. `parts` is the
    runtime's `Components`."""
    orders = await asyncio.to_thread(parts.journal.open_orders)
    accounts = parts.roster.accounts
    mine = [o for o in orders if o.user_id in accounts and o.bar_ms != skip_bar]
    if not mine:
        return set()
    follow = _fenced(parts, mine) if resend else parts.executor.follow(accounts, mine, resend=False)
    task = asyncio.create_task(follow)
    try:
        settled = await asyncio.wait_for(asyncio.shield(task), budget_s)
    except TimeoutError:
        _BACKGROUND.add(task)
        task.add_done_callback(_finished)
        return {(o.user_id, o.symbol) for o in mine}
    return {(o.user_id, o.symbol) for o in settled if not o.terminal}


async def _fenced(parts: Any, orders: list[Order]) -> list[Order]:
    """`Executor.follow` with resends, each user's under `sharding.acting` as the bar's own orders are:
    a resend is a send, admitted by the fence (xray_runtime.fencing) only while this process acts for
    the user. A user this process is acting for already (a batch still running) is left as it is."""
    by_user: dict[str, list[Order]] = {}
    for order in orders:
        by_user.setdefault(order.user_id, []).append(order)

    async def one(user_id: str, batch: list[Order]) -> list[Order]:
        async with parts.sharding.acting(user_id) as mine:
            if not mine:
                return batch
            followed: list[Order] = await parts.executor.follow(parts.roster.accounts, batch, resend=True)
            return followed

    results = await asyncio.gather(*(one(user_id, batch) for user_id, batch in by_user.items()))
    return [order for batch in results for order in batch]


def _finished(task: asyncio.Task[Any]) -> None:
    _BACKGROUND.discard(task)
    if not task.cancelled() and task.exception() is not None:  # an outage: the next bar asks again
        log.warning("following open orders failed: %s", task.exception())


def without_unsettled(intents: dict[int, list[OrderIntent]], unsettled: set[tuple[str, str]],
                      user_ids: list[str], failures: dict[str, str]) -> dict[int, list[OrderIntent]]:
    """`intents` (by user index) less those on a (user, symbol) in `unsettled`, each held user's reason
    noted in `failures`."""
    if not unsettled:
        return intents
    kept: dict[int, list[OrderIntent]] = {}
    for i, batch in intents.items():
        held = [intent for intent in batch if (user_ids[i], intent.symbol) in unsettled]
        if held:
            failures[user_ids[i]] = f"held: an earlier order on {held[0].symbol} is not settled yet"
        if len(held) < len(batch):
            kept[i] = [intent for intent in batch if intent not in held]
    return kept
