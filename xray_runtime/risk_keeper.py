"""The runtime's risk limits for this process's users, kept beyond the process.

`xray_core.risk.limits.RiskBook` evaluates the rules over arrays of users; this keeps its state where
a restart, a crash or a shard hand-over finds it again:

* a user new to this process (start, sign-up, hand-over) gets their stored state back (`RiskStore`):
  today's opening equity, the peak, the kill flag;
* after every tick the rows that changed are written back, before any order of the tick is sent, so a
  kill switch that fired is on record even if the process dies right after;
* the global daily loss is judged on every process's users (`risk_totals`: Redis when configured);
* deposits and withdrawals are neither profits nor losses: the state's day-open and peak are kept net
  of each user's transfers (`Book.transfers`, from the journal's `transfers`), and the limits, the
  global totals and the daily PnL read them moved by the transfers since (`baselines`).

`flat` says when a killed user holds nothing sellable and has no order in doubt: the service then
disables them (until then they are flattened on every tick).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import numpy as np

from xray_core.risk.limits.book import RiskBook, RiskCheck
from xray_core.risk.limits.rule import RiskLimits
from xray_core.risk.limits.state import DAY_MS, SavedRisk
from xray_runtime.book import Book
from xray_runtime.decide import MarketRules
from xray_runtime.risk_store import RiskStore, risk_resets
from xray_runtime.risk_totals import LocalTotals, RedisTotals, SharedTotals

log = logging.getLogger(__name__)


class RiskKeeper:
    def __init__(self, store: RiskStore, totals: SharedTotals, global_max_daily_loss: float) -> None:
        self.store = store
        self.totals = totals
        self.global_max_daily_loss = global_max_daily_loss
        self.book = RiskBook(RiskLimits(np.zeros(0), np.zeros(0), global_max_daily_loss))
        self._stored: dict[str, SavedRisk] = {}  # what the store holds for each user here, as last seen
        self._user_ids: list[str] = []
        self.global_on = False  # the global switch as last announced
        # Users whose state here was found behind the stored one (a same-day opening changed, a peak
        # fell, a kill lost): state lost somewhere. Always empty unless something is broken; /health.
        self.resets: set[str] = set()

    @classmethod
    def build(cls, engine: Any, redis: Any, redis_prefix: str, global_max_daily_loss: float) -> RiskKeeper:
        totals: SharedTotals = RedisTotals(redis, redis_prefix) if redis is not None else LocalTotals()
        return cls(RiskStore(engine), totals, global_max_daily_loss)

    async def users_changed(self, book: Book, old_index: dict[str, int]) -> None:
        """The book's rows changed: each user keeps their state; users new here get the stored one."""
        new_ids = [user_id for user_id in book.user_ids if user_id not in old_index]
        loaded = await asyncio.to_thread(self.store.load, new_ids) if new_ids else {}
        old = np.array([old_index.get(user_id, -1) for user_id in book.user_ids], dtype=np.int64)
        limits = RiskLimits(book.column("max_daily_loss"), book.column("max_drawdown"),
                            self.global_max_daily_loss)
        self.book.reindex(old, limits, {book.user_index[user_id]: row for user_id, row in loaded.items()})
        kept = {user_id: self._stored[user_id] for user_id in book.user_ids if user_id in self._stored}
        self._stored = kept | loaded
        self._user_ids = list(book.user_ids)

    async def check(self, book: Book, now_ms: int) -> RiskCheck:
        """This tick's limits on the book's equity (last known closes), the global switch on every
        process's users."""
        equity = book.equity()
        transfers = book.transfers.copy()
        preview = self.book.preview(equity - transfers, now_ms)
        combined = await self.totals.combine(preview.day, book.user_ids, preview.day_open + transfers, equity)
        return self.book.update(equity, now_ms, combined, transfers)

    async def save(self, now_ms: int) -> int:
        """Write the rows that changed since they were last stored; returns how many."""
        state = self.book.state
        changed = {}
        for i, user_id in enumerate(self._user_ids):
            row = state.saved(i)
            if not row.same(self._stored.get(user_id)):
                changed[user_id] = row
        if changed:
            behind = risk_resets({u: self._stored[u] for u in changed if u in self._stored}, changed)
            if behind:
                self.resets.update(behind)
                log.error("risk state behind the stored one", extra={"event": "risk_reset",
                                                                     "users": behind[:20]})
            await asyncio.to_thread(self.store.save, changed, now_ms)
            self._stored.update(changed)
        return len(changed)

    def state_of(self, user_id: str) -> SavedRisk | None:
        """A user's risk state as this process holds it now (None: not this process's user)."""
        if user_id not in self._user_ids:
            return None
        return self.book.state.saved(self._user_ids.index(user_id))

    def baselines(self, user_id: str, book: Book) -> tuple[float, float] | None:
        """A user's day-open and peak equity as the limits read them now: the stored ones moved by the
        user's net transfers (None: not this process's user)."""
        saved = self.state_of(user_id)
        if saved is None or user_id not in book.user_index:
            return None
        net = float(book.transfers[book.user_index[user_id]])
        return saved.day_open + net, saved.peak + net

    def reason(self, code: int) -> str:
        return self.book.reason(code)

    def announce(self, risk: RiskCheck, book: Book, users: Mapping[str, Any], notifier: Any,
                 metrics: Any) -> None:
        """The global switch when it turns on or off; each user's kill switch once, when it fires."""
        if risk.global_on != self.global_on:
            self.global_on = risk.global_on
            metrics.kill_switch.set(int(risk.global_on))
            if risk.global_on:
                notifier.kill_switch(None, "; ".join(rule.reason for rule in risk.switches))
                log.error("global kill switch", extra={"event": "global_kill_switch",
                                                       "rules": [rule.name for rule in risk.switches]})
        for i in np.flatnonzero(risk.newly_killed):
            user = users.get(book.user_ids[i])
            if user is not None:
                notifier.kill_switch(user, self.reason(risk.block[i]))

    def daily_summaries(self, book: Book, users: Mapping[str, Any], notifier: Any,
                        orders_today: dict[str, int], now_ms: int) -> None:
        """On the first bar of a UTC day (before the day rolls), each user's summary of the day
        before; `orders_today` is cleared for the new day."""
        risk = self.book.state
        if risk.day is None or now_ms // DAY_MS == risk.day:
            return
        equity = book.equity()
        for i, user_id in enumerate(book.user_ids):
            user = users.get(user_id)
            if i >= len(risk.day_open):
                continue
            pnl = equity[i] - (risk.day_open[i] + book.transfers[i])  # money moved in or out is no PnL
            if user is None or not np.isfinite(pnl):
                continue
            notifier.daily_summary(user, {
                "orders": orders_today.get(user_id, 0), "pnl": round(float(pnl), 2),
                "equity": round(float(equity[i]), 2),
            })
        orders_today.clear()


def flat(book: Book, i: int, rules: dict[str, MarketRules]) -> bool:
    """Whether user row `i` holds nothing that can be sold (dust under the market's minimum order or
    amount step stays) and has no order in doubt."""
    for symbol, j in book.symbol_index.items():
        if book.in_doubt(symbol)[i]:
            return False
        rule = rules.get(symbol)
        if book.position[i, j] > 0 and (rule is None or book.sellable(symbol, rule.amount_step,
                                                                      rule.min_cost)[i]):
            return False  # sellable, or no market rules to tell it is dust
    return True
