"""The trading service: one loop that turns each new closed bar into every user's orders.

    poll the bundle (hot reload) ─► new bar on the exchange clock? ─► candles once per symbol ─►
    one signal per symbol ─► risk (per user, global) ─► every user's intents (vectorised) ─►
    orders per user, concurrently (idempotent client ids, write-ahead journal) ─► book, notifications
    ─► shadow books of the challengers on the same bars (recorded, never ordered: `shadow`)

Reconciliation runs at start (before the first order) and every `reconcile_every_s` in the background,
as market reloads do (xray_runtime.upkeep): neither holds up a bar. State that must survive a crash
lives in the journal (and Redis), users' risk state in SQL (`risk_keeper`); the rest (candles, the
book) is rebuilt from the journal and the exchange at start. A killed user is flattened on every tick
until flat, then disabled. One user's failure — a refused key, no funds, a bad symbol — is that user's
recorded reason; an outage of Redis or the database skips a tick and the loop carries on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import ccxt
import numpy as np
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from xray_core.errors import XrayError
from xray_core.redaction import describe
from xray_core.risk.limits.book import RiskCheck
from xray_core.trading.orders import Fill, Order, OrderStatus
from xray_runtime.artefacts import Promoted
from xray_runtime.components import Components
from xray_runtime.decide import MarketRules, decide
from xray_runtime.equity_log import EquityLog
from xray_runtime.follow import follow_open_orders, without_unsettled
from xray_runtime.market import STALE, UNAVAILABLE, SymbolBars
from xray_runtime.risk_keeper import RiskKeeper, flat
from xray_runtime.sentiment import news_for
from xray_runtime.shadow import ShadowBooks
from xray_runtime.signals import Signal, compute_signals
from xray_runtime.tick_orders import execute
from xray_runtime.upkeep import KeyRefusals, Periodic, UserGates, settle_heap
from xray_runtime.user_control import UserControl, masks

log = logging.getLogger(__name__)
# What an outage looks like from here; anything else is a bug and is not swallowed.
DEPENDENCY_ERRORS = (XrayError, OSError, RedisError, SQLAlchemyError, ccxt.BaseError)
FOLLOW_BUDGET_S = 1.0  # the longest the open orders' lookups may delay a decision


@dataclass
class TickReport:
    bar_ms: int
    users: int
    signals: int
    skipped: dict[str, str]
    intents: int
    orders: list[Order] = field(default_factory=list)
    decision_s: float = 0.0  # new bar -> every user's decision
    execution_s: float = 0.0  # sends, read-backs, stragglers, book: the whole order phase
    send_s: float = 0.0  # from the first send to the last order acknowledged (or refused)
    sent_at: float | None = None  # time.monotonic() when the last order was acknowledged
    failures: dict[str, str] = field(default_factory=dict)  # user -> reason
    shadow_rows: int = 0  # shadow-book bars recorded on this tick
    unsettled: set[str] = field(default_factory=set)  # users not acted for: the bar is decided again
    refused: dict[str, str] = field(default_factory=dict)  # user -> why the exchange refused their key
    keys_worked: int = 0  # users whose orders the exchange answered with their key


class TradingService:
    def __init__(self, parts: Components, model_kind: str = "gbm") -> None:
        self.parts = parts
        self.model_kind = model_kind
        settings = parts.settings
        self.shadow = ShadowBooks(parts.engine)
        self.risk = RiskKeeper.build(parts.engine, parts.redis, settings.redis_prefix,
                                     settings.global_max_daily_loss)
        self.control = UserControl(parts.engine)  # pause / resume / stop, asked by users (bot, web)
        self.rules: dict[str, MarketRules] = {}
        self.last_bar_ms: int | None = None
        self.in_doubt: dict[str, Order] = {}  # orders of the bar being decided that no attempt settled
        self.last_tick_wall: float | None = None
        self.last_reconcile_wall = 0.0
        self.reports: list[TickReport] = []
        self.latencies_s: list[float] = []  # per user per tick, for the load test
        self.last_error: str | None = None  # why the last step failed (None: it did not)
        self.orders_today: dict[str, int] = {}
        self.equity_log = EquityLog(parts.engine)  # the dashboard's equity curves
        # Off the trading loop's critical path (xray_runtime.upkeep): reconciliation and market reloads
        # run as background tasks; gates keep a user's reconciliation and execution apart.
        self.gates = UserGates()
        self.reconciling = Periodic("reconcile", parts.settings.reconcile_every_s)
        self.markets = Periodic("markets_refresh", parts.settings.markets_refresh_s)
        self.markets.ran()  # loaded with the first clients
        self.key_refusals = KeyRefusals()

    # ---- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        await self.parts.start()
        self.reload_bundle()
        await self.refresh_users(reconcile_new=False)
        await self.reconcile()
        try:
            await self.warm_up()
        except Exception as exc:  # a head start only: the first tick fetches and decides as usual
            log.warning("warm-up failed; the first tick starts cold", extra={
                "event": "warm_up_failed", "reason": describe(exc)})
        settle_heap()

    async def warm_up(self) -> None:
        """Fill the candle windows and run every strategy once, so the first bar is decided as fast as
        any other (history fetched, kernels compiled) — nothing is traded here."""
        promoted = self.parts.watcher.current
        if promoted is None:
            return
        windows = await self.parts.candle_windows(promoted.timeframe)
        data = await windows.refresh(self._wanted(promoted), await windows.now_ms())
        sentiment = await news_for(self.parts.sentiment, promoted, self.model_kind)
        signals, _ = compute_signals(promoted, data, self.model_kind, sentiment=sentiment)
        await self._ensure_rules(promoted.exchange, list(signals))

    async def stop(self) -> None:
        await self.reconciling.stop()
        await self.markets.stop()
        await self.parts.stop()

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop` is set: step every `poll_s` seconds."""
        await self.start()
        try:
            while not stop.is_set():
                await self.safe_step()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.parts.settings.poll_s)
        finally:
            await self.stop()

    # ---- one step --------------------------------------------------------------------------------

    def reload_bundle(self) -> bool:
        changed = self.parts.watcher.poll()
        promoted = self.parts.watcher.current
        self.parts.metrics.bundle_refused.set(1 if self.parts.watcher.refused else 0)
        if changed and promoted is not None:
            self.parts.book.set_symbols(promoted.plans)
            self.parts.metrics.bundle.clear()
            self.parts.metrics.bundle.labels(version=promoted.version).set(1)
        return changed

    async def refresh_users(self, reconcile_new: bool = True) -> set[str]:
        """Reload this process's users; returns those new to it (sign-ups, users handed over by a
        process that left or died), reconciled first: their balances, positions and orders in doubt
        come from the exchange before any decision for them."""
        parts = self.parts
        change = await parts.roster.refresh()
        if change is None:
            return set()
        added, removed = change
        if removed:  # their unsettled orders are their new process's (it decides the bar again)
            self.in_doubt = {cid: o for cid, o in self.in_doubt.items() if o.user_id not in removed}
        book, old_index = parts.book, parts.book.user_index
        book.set_users(parts.roster.sizing())
        # A user new here holds what the journal's fills say (capped by the balances reconciliation
        # reads next), and has the risk state the last process left.
        new_ids = [user_id for user_id in book.user_ids if user_id not in old_index]
        held = await asyncio.to_thread(parts.journal.positions, new_ids) if new_ids else {}
        for user_id in new_ids:
            book.set_held(user_id, held.get(user_id, {}))
        await self.risk.users_changed(book, old_index)
        parts.log_redactor.add(parts.roster.secrets)
        parts.metrics.users.labels(state="active").set(len(parts.roster.users))
        parts.metrics.users.labels(state="unloadable").set(len(parts.roster.problems))
        self.gates.forget(removed)
        if added and reconcile_new:
            await self.reconcile(sorted(added))
        return added

    async def safe_step(self) -> TickReport | None:
        """`step`, but an outage of a dependency (exchange, Redis, database) is logged and kept for
        /health, and the next step tries again: the bar that failed is decided again then, with the
        same client order ids, so whatever did reach the exchange is found, not repeated."""
        try:
            report = await self.step()
        except DEPENDENCY_ERRORS as exc:
            self.last_error = describe(exc)  # one line, no signed URL or password (it reaches /health)
            log.error("step failed", extra={"event": "step_failed", "reason": self.last_error})
            return None
        self.last_error = None
        return report

    async def step(self) -> TickReport | None:
        """Reload what changed; trade the newest bar if it is new. Returns the tick's report."""
        self.reload_bundle()
        promoted = self.parts.watcher.current
        if promoted is None:
            return None
        await self.refresh_users()
        windows = await self.parts.candle_windows(promoted.timeframe)
        now_ms = await windows.now_ms()
        newest_bar = now_ms - now_ms % windows.step - windows.step
        report = None
        if self.last_bar_ms is None or newest_bar > self.last_bar_ms:
            report = await self.tick(now_ms)
            if await self._settled(newest_bar, report):
                self.last_bar_ms = newest_bar
        self.reconciling.start(self.reconcile, DEPENDENCY_ERRORS)  # when due, in the background
        self.markets.start(self.refresh_markets, DEPENDENCY_ERRORS)
        return report

    async def refresh_markets(self) -> None:
        """Listings and precisions read again (new listings, changed steps and minimums)."""
        await self.parts.refresh_markets()
        self.rules.clear()  # read again from the new markets on the next bar

    async def _settled(self, bar_ms: int, report: TickReport) -> bool:
        """Whether the bar is done: every order decided on `bar_ms` so far is settled and no symbol's
        candles were unavailable. Else the next step decides the bar again: a symbol missed for a
        transient fetch error is decided then, and an order no attempt could settle (still PENDING or
        SUBMITTED) is resolved by its client order id (found: adopted; missing: sent again), never
        sent as a second order."""
        if any(order.bar_ms != bar_ms for order in self.in_doubt.values()):
            self.in_doubt.clear()  # a new bar: the old bar's orders are reconciliation's now
        for order in report.orders:
            if order.status in (OrderStatus.PENDING, OrderStatus.SUBMITTED):
                self.in_doubt[order.client_order_id] = order
            else:
                self.in_doubt.pop(order.client_order_id, None)
        if self.in_doubt:  # following open orders may have settled one since: the journal knows
            recorded = await asyncio.to_thread(self.parts.journal.get_many, list(self.in_doubt))
            for cid, order in recorded.items():
                if order.terminal:
                    self.in_doubt.pop(cid, None)
        unavailable = any(reason.startswith(UNAVAILABLE) for reason in report.skipped.values())
        return not self.in_doubt and not unavailable and not report.unsettled

    async def tick(self, now_ms: int) -> TickReport:
        parts = self.parts
        promoted = parts.watcher.current
        assert promoted is not None
        started = time.perf_counter()
        windows = await parts.candle_windows(promoted.timeframe)
        # While the candles come: earlier bars' open orders are asked about, their fills move the book.
        candles = windows.refresh(self._wanted(promoted), now_ms)
        bar = now_ms - now_ms % windows.step - windows.step  # this bar's own orders: resolved by submit
        follow = self.follow_open_orders(resend=False, skip_bar=bar, budget_s=FOLLOW_BUDGET_S)
        data, unsettled = await asyncio.gather(candles, follow)
        sentiment = await news_for(self.parts.sentiment, promoted, self.model_kind)
        signals, skipped = compute_signals(promoted, data, self.model_kind, sentiment=sentiment)
        book = parts.book
        await self._ensure_rules(promoted.exchange, list(dict.fromkeys([*signals, *book.symbols])))
        book.mark({symbol: _last_close(bars) for symbol, bars in data.items()})
        bar_ms = now_ms - now_ms % windows.step - windows.step  # the newest closed bar
        await self._count_in_doubt(signals, bar_ms)
        self.risk.daily_summaries(book, parts.roster.users, parts.notifier, self.orders_today, now_ms)
        risk = await self.risk.check(book, now_ms)
        paused, flatten = masks(book.user_ids, await asyncio.to_thread(self.control.not_active))
        decisions = decide(book, signals, promoted, self.rules, risk.block, risk.killed, bar_ms,
                           paused=paused, flatten=flatten)
        decision_s = time.perf_counter() - started
        self._observe_latency(decision_s, len(book.user_ids))
        self.risk.announce(risk, book, parts.roster.users, parts.notifier, parts.metrics)
        await self.risk.save(now_ms)  # a kill is on record before any order of this tick is sent
        report = TickReport(
            bar_ms=max((s.bar_ms for s in signals.values()), default=now_ms), users=len(book.user_ids),
            signals=len(signals), skipped={s.symbol: s.reason for s in skipped}, intents=decisions.count,
            decision_s=decision_s,
        )
        begun, sending = time.perf_counter(), time.monotonic()
        intents = without_unsettled(decisions.intents, unsettled, book.user_ids, report.failures)
        phase = await execute(parts, self.gates, {book.user_ids[i]: batch for i, batch in intents.items()},
                              report, self.orders_today)
        report.sent_at = phase.sent_at
        report.send_s = (phase.sent_at or sending) - sending
        await self._retire_refused(report.refused, report.keys_worked)
        await self.follow_open_orders(resend=True, skip_bar=bar_ms)  # earlier bars' stragglers
        self.apply_fills(parts.journal.drain_new_fills())
        await asyncio.to_thread(self.equity_log.record, list(book.user_ids), book.equity().tolist(), bar_ms)
        report.execution_s = time.perf_counter() - begun
        # After the orders: the challengers' books never delay a real decision.
        report.shadow_rows = (await asyncio.to_thread(self.shadow.record, promoted, data)).rows
        await self._retire_flattened(risk, report)
        parts.metrics.ticks.inc()
        parts.metrics.skipped_symbols.set(len(skipped))
        parts.metrics.stale_symbols.set(sum(1 for s in skipped if s.reason.startswith(STALE)))
        parts.metrics.follow(waits=parts.limiter.waits, rate_limited=parts.pool.stats.rate_limited,
                             ip_banned=parts.pool.stats.ip_banned, lease_lost=parts.sharding.lease_losses)
        self.last_tick_wall = time.time()
        parts.metrics.last_tick.set(self.last_tick_wall)
        self.reports.append(report)
        log.info("tick", extra={"event": "tick", "bar_ms": report.bar_ms, "users": report.users,
                                "signals": report.signals, "intents": report.intents,
                                "skipped": report.skipped, "decision_ms": round(decision_s * 1000, 2)})
        return report

    # ---- pieces ----------------------------------------------------------------------------------

    def _wanted(self, promoted: Promoted) -> list[str]:
        """The bundle's symbols, the model's benchmark, and every symbol a user still holds (priced
        and sold even after it left the bundle)."""
        wanted = list(promoted.plans)
        if (promoted.predictors or promoted.shadow) and "BTC/USDT" not in wanted:
            wanted.append("BTC/USDT")  # the models' benchmark features (traded or shadowed)
        held = [s for s in self.parts.book.held_symbols() if s not in wanted and not self._dust(s)]
        return [*wanted, *held]

    def _dust(self, symbol: str) -> bool:
        """Whether every user's holding of `symbol` is too small to sell and none has an order in
        doubt on it (then its candles are not fetched any more; it stays valued at its last close)."""
        book, rule = self.parts.book, self.rules.get(symbol)
        if rule is None:
            return False
        return not (book.sellable(symbol, rule.amount_step, rule.min_cost) | book.in_doubt(symbol)).any()

    async def _count_in_doubt(self, signals: dict[str, Signal], bar_ms: int) -> None:
        """Orders sent on earlier bars and not settled count against the limits. This bar's own are
        left out: deciding the bar again must yield them again (same ids), to be resolved, not
        replaced."""
        in_doubt = await asyncio.to_thread(self.parts.journal.in_doubt)
        current = {symbol: signal.bar_ms for symbol, signal in signals.items()}
        self.parts.book.set_pending([o for o in in_doubt if o.bar_ms < current.get(o.symbol, bar_ms)])

    def _observe_latency(self, seconds: float, users: int) -> None:
        """Every user's decision is ready when the vectorised pass ends: one sample per user."""
        histogram = self.parts.metrics.decision_latency
        for _ in range(users):
            histogram.observe(seconds)
        self.latencies_s.extend([seconds] * users)

    async def _ensure_rules(self, exchange_id: str, symbols: list[str]) -> None:
        missing = [s for s in symbols if s not in self.rules]
        if not missing:
            return
        markets = await self.parts.pool.markets(exchange_id, self.parts.market_url)
        for symbol in missing:
            market = markets.get(symbol)
            if market is None:
                self.markets.hurry(60.0)  # a listing newer than the markets read: read them again soon
                continue
            self.rules[symbol] = MarketRules(market.amount_step or 1e-8, market.min_cost or 0.0)

    async def follow_open_orders(self, resend: bool = True, skip_bar: int | None = None,
                                 budget_s: float | None = None) -> set[tuple[str, str]]:
        """`follow.follow_open_orders` for this process's users; their fills move the book."""
        unsettled = await follow_open_orders(self.parts, resend, skip_bar, budget_s)
        self.apply_fills(self.parts.journal.drain_new_fills())
        return unsettled

    def apply_fills(self, fills: list[Fill]) -> None:
        """The executor's and reconciliation's new fills move the book and notify the user."""
        users = self.parts.roster.users
        for fill in fills:
            self.parts.book.apply_fill(fill)
            user = users.get(fill.user_id)
            if user is not None:
                self.parts.notifier.fill(user, fill.symbol, fill.side.value, fill.amount, fill.price)

    async def _disable(self, user_id: str, reason: str) -> None:
        parts = self.parts
        user = parts.roster.users.get(user_id)
        await asyncio.to_thread(parts.users.disable, user_id, reason)
        parts.roster.drop(user_id)
        log.warning("user disabled", extra={"event": "user_disabled", "user_id": user_id, "reason": reason})
        parts.metrics.users.labels(state="disabled_now").inc()
        if user is not None:
            parts.notifier.error(user, f"trading stopped: {reason}")
        index = parts.book.user_index.get(user_id)
        if index is not None:
            parts.book.active[index] = False

    async def _retire_flattened(self, risk: RiskCheck, report: TickReport) -> None:
        """Disable each killed user that is flat now (nothing sellable, no order in doubt); the others
        are flattened again on the next tick (a failed or rejected sell is not the end of it)."""
        book = self.parts.book
        unsettled = {o.user_id for o in report.orders if not o.terminal}
        for i in np.flatnonzero(risk.killed & book.active):
            user_id = book.user_ids[i]
            if user_id not in unsettled and flat(book, int(i), self.rules):
                await self._disable(user_id, self.risk.reason(risk.block[i]))

    async def reconcile(self, user_ids: list[str] | None = None) -> dict[str, int]:
        """Exchange vs local for this process's users (default: all): orders, fills, and balances,
        which the book is then set from, user by user under each one's gate (xray_runtime.upkeep).
        In the background when periodic; awaited at start and for users handed over."""
        wanted = list(self.parts.roster.accounts) if user_ids is None else user_ids
        # Each user's book row is set from the exchange's balances (which include every fill recorded
        # so far) under the user's gate, there (Components.reconcile_users).
        result = await self.parts.reconcile_users(wanted, gate=self.gates.get)
        await self._retire_refused(result.refused, result.worked)
        for kind, count in result.totals.items():
            if count:
                self.parts.metrics.reconcile_diffs.labels(kind=kind).inc(count)
        if user_ids is None:  # some users only: the periodic pass over everyone is still due
            self.last_reconcile_wall = time.monotonic()
            if not self.reconciling.running:
                self.reconciling.ran()
        return result.totals

    async def _retire_refused(self, refused: dict[str, str], worked: int) -> None:
        """Disable the users whose API key the exchange refused, unless it refused every key at once
        (its own outage: nobody is disabled, /health says so)."""
        for user_id in self.key_refusals.to_disable(refused, worked):
            await self._disable(user_id, refused[user_id])

    def health(self) -> dict[str, Any]:
        parts = self.parts
        promoted = parts.watcher.current
        return {
            "status": "ok" if promoted is not None and self.last_error is None
            and self.key_refusals.venue_problem is None else "degraded",
            "last_error": self.last_error,
            "venue_problem": self.key_refusals.venue_problem,
            "reconcile": {"running": self.reconciling.running, "last_error": self.reconciling.last_error},
            "bundle": promoted.version if promoted else None,
            "bundle_refused": parts.watcher.refused,
            "trading": promoted is not None,  # False: no good bundle yet, `bundle_refused` says why
            "users": len(parts.roster.users),
            "user_problems": [{"user_id": p.user_id, "reason": p.reason} for p in parts.roster.problems],
            "last_bar_ms": self.last_bar_ms,
            "last_tick_age_s": round(time.time() - self.last_tick_wall, 1) if self.last_tick_wall else None,
            "global_kill_switch": self.risk.global_on,
            "killed_users": int(self.risk.book.state.killed.sum()),  # killed, being flattened
            "risk_resets": len(self.risk.resets),  # users whose risk state was lost: always 0
            "skipped_symbols": self.reports[-1].skipped if self.reports else {},
            "shadow_models": [f"{m.name}/{m.version} ({m.role})" for m in promoted.shadow.values()]
            if promoted else [],
            "shadow_refused": promoted.shadow_refused if promoted else {},
            "shadow_error": self.shadow.last_error,
            # users whose Redis order state may be behind the journal (the journal answers for them)
            "order_state_stale": len(getattr(parts.state, "stale_users", ())),
        }


def _last_close(bars: SymbolBars) -> float:
    """The newest close that is a price (a null close is skipped: the one before it is known)."""
    closes = bars.bars.close
    priced = np.flatnonzero(np.isfinite(closes) & (closes > 0))
    return float(closes[priced[-1]]) if len(priced) else np.nan

