"""One bar's orders for every user: all sent first, then all read back.

After a bar closes, what matters most is that every user's order reaches the venue soon: a tick whose
orders trickle out for minutes trades stale bars. An acknowledgement carries no fills on MEXC, so an
order also needs reading back (its trades, or its state), and reading back right after each send
would make every order after the first few wait behind other users' reads. So each user's orders
are sent (`Executor.submit` without read-back) and the user waits at `SendPhase` until every user's
sends of the bar are done; only then are the acknowledged orders read back (`Executor.read_back`).

A user's whole turn (sends, the wait, the read-back) holds the user's gate and `sharding.acting`,
so reconciliation and another process never see the user half done: the book still moves only by
the fills recorded under the gate (see `xray_runtime.upkeep`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from xray_core.errors import XrayError
from xray_core.trading.orders import Order, OrderIntent
from xray_runtime.execution import AccountError
from xray_runtime.upkeep import UserGates, key_worked

log = logging.getLogger(__name__)


class SendPhase:
    """Counts the users still sending; opens (`wait` returns) once none is. `sent_at` is when
    (time.monotonic) the bar's last order was acknowledged (or refused)."""

    def __init__(self, users: int) -> None:
        self._left = users
        self._open = asyncio.Event()
        self.sent_at: float | None = None
        if users <= 0:
            self._opened()

    def done(self) -> None:
        self._left -= 1
        if self._left == 0:
            self._opened()

    async def wait(self) -> None:
        await self._open.wait()

    def _opened(self) -> None:
        self.sent_at = time.monotonic()
        self._open.set()


async def execute(parts: Any, gates: UserGates, intents: dict[str, list[OrderIntent]], report: Any,
                  orders_today: dict[str, int]) -> SendPhase:
    """Every user's `intents` (by user id) sent, then read back; the orders, refusals and failures
    land on `report` (a `TickReport`). Returns the send phase (when it ended)."""
    phase = SendPhase(len(intents))
    await asyncio.gather(*(_user(parts, gates, user_id, batch, report, phase, orders_today)
                           for user_id, batch in intents.items()))
    return phase


async def _user(parts: Any, gates: UserGates, user_id: str, intents: list[OrderIntent], report: Any,
                phase: SendPhase, orders_today: dict[str, int]) -> None:
    sending = True
    try:
        account = parts.roster.accounts.get(user_id)
        if account is None:
            return
        gate = gates.get(user_id)
        if gate.locked():  # reconciliation is at this user: the bar is decided again on the next step
            report.unsettled.add(user_id)
            return
        # The user's lock is taken by the first order that holds an order slot, checked again before
        # every send (xray_runtime.fencing); an order refused there stays unsettled, decided again.
        async with gate, parts.sharding.acting(user_id) as mine:
            if not mine:  # this process is acting for the user already (an overlapping step)
                report.failures[user_id] = "held by another task of this process"
                report.unsettled.add(user_id)
                return
            try:
                orders = await parts.executor.submit(account, intents, read_back=False)
            except AccountError as exc:  # disabled after the tick, unless every key was refused
                report.orders.extend(exc.orders)
                report.refused[user_id] = exc.problem
                return
            except XrayError as exc:
                report.failures[user_id] = str(exc)
                parts.notifier.error(parts.roster.users[user_id], str(exc))
                return
            sending = False
            phase.done()
            await phase.wait()
            try:
                orders = await parts.executor.read_back(account, orders)
            except XrayError as exc:  # read on the next bar (follow) or by reconciliation
                log.warning("reading back user %s's orders failed: %s", user_id, exc)
    finally:
        if sending:
            phase.done()
    _account(parts, user_id, orders, report, orders_today)


def _account(parts: Any, user_id: str, orders: list[Order], report: Any,
             orders_today: dict[str, int]) -> None:
    """The user's orders of the bar on the report and the metrics."""
    report.keys_worked += key_worked(orders)
    report.orders.extend(orders)
    orders_today[user_id] = orders_today.get(user_id, 0) + len(orders)
    for order in orders:
        parts.metrics.orders.labels(status=order.status.value).inc()
        if order.status.value == "rejected":
            parts.metrics.rejects.labels(reason=order.reason[:60] or "unknown").inc()
            report.failures[user_id] = order.reason
