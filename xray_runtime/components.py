"""The runtime's parts, built from settings: the composition root of `xray_runtime`.

Embedded default: SQLite users and journal, in-process limiter, order state and membership. With
`XRAY_RUNTIME_REDIS_URL`: the shared Redis limiter, Redis order state and the shard ring, so several
processes split the users between them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from xray_core.bundle_store import open_store
from xray_core.exchange.protocol import VenueAuthError
from xray_core.exchange.reports import BalanceReport, Transfer
from xray_core.exchange.venues import traits_for
from xray_core.redaction import describe
from xray_core.settings import ExchangeSettings
from xray_runtime import db, redis_conn
from xray_runtime.artefacts import ArtefactWatcher, load_predictor
from xray_runtime.book import Book
from xray_runtime.crypto import KeyVault
from xray_runtime.exchange_pool import ExchangeAccount, ExchangePool
from xray_runtime.execution import Executor, wall_ms
from xray_runtime.halts import scopes_of
from xray_runtime.journal import Journal, orders_table
from xray_runtime.logs import REDACT, RedactSecrets, guard_third_party
from xray_runtime.market import CandleWindows
from xray_runtime.metrics import Metrics, http_app, serve
from xray_runtime.notify import Notifier
from xray_runtime.order_state import LocalOrderState, OrderState, RedisOrderState, rebuild_from
from xray_runtime.paper_store import PaperStore
from xray_runtime.paper_venue import CcxtPriceFeed, FillModel, PaperBroker
from xray_runtime.ratelimit import (
    build_limiter,
    ccxt_throttle,
    egress_ip,
    install_ccxt_throttle,
    ip_scope,
    key_scope,
)
from xray_runtime.reconcile import RECONCILE_LOOKUPS, ReconcileReport, reconcile
from xray_runtime.roster import Roster
from xray_runtime.send_log import SendLog
from xray_runtime.sentiment import SentimentFeed
from xray_runtime.settings import RuntimeSettings, TelegramSettings
from xray_runtime.sharding import build_membership
from xray_runtime.transfers import TransferStore, read_around, values_of
from xray_runtime.users import UserStore

log = logging.getLogger(__name__)


@dataclass
class Reconciled:
    """One reconciliation pass: differences by kind, users whose key was refused (with the reason),
    and how many users' keys the exchange accepted."""

    totals: dict[str, int] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)
    worked: int = 0


@dataclass
class Components:
    settings: RuntimeSettings
    telegram: TelegramSettings
    exchange: ExchangeSettings  # market data (and the paper venue by default)
    engine: sa.Engine
    users: UserStore
    watcher: ArtefactWatcher
    roster: Roster
    pool: ExchangePool
    journal: Journal
    state: OrderState
    executor: Executor
    notifier: Notifier
    metrics: Metrics
    sharding: Any
    limiter: Any
    redis: Any = None
    book: Book = field(default_factory=Book)
    log_redactor: RedactSecrets = REDACT
    http_port: int | None = None
    egress_scope: str = "ip:127.0.0.1"
    _windows: dict[str, CandleWindows] = field(default_factory=dict)
    _public: Any = None
    _runner: Any = None
    health: Callable[[], dict[str, Any]] | None = None
    sentiment: SentimentFeed | None = None  # the lake's news sentiment, for models trained with it
    transfers: TransferStore = field(init=False)  # deposits and withdrawals in the journal

    def __post_init__(self) -> None:
        self.transfers = TransferStore(self.engine)

    @property
    def market_url(self) -> str | None:
        return self.exchange.url

    @classmethod
    def build(cls, settings: RuntimeSettings, telegram: TelegramSettings, exchange: ExchangeSettings,
              *, model_loader: Callable[[str], Any] | None = None, model_kind: str = "gbm") -> Components:
        guard_third_party()
        engine = db.connect(settings.database_url)
        vault = KeyVault(settings.fernet_key) if settings.fernet_key is not None else None
        users = UserStore(engine, vault)
        redis = redis_conn.connect(settings) if settings.redis_url else None
        limiter = build_limiter(settings, redis)
        # The per-IP scope: this machine's address as the venue sees it (processes behind one NAT
        # share it only if XRAY_RUNTIME_EGRESS_IP says so).
        egress = ip_scope(egress_ip(settings, exchange.url))
        # Several processes: every admitted send is recorded (who, under which fencing token).
        sharding = build_membership(settings, redis, SendLog(engine) if redis else None)

        def throttle(account: ExchangeAccount) -> Any:
            # A user's client only calls private endpoints (markets come from the pool's template):
            # charged to the scopes the venue counts them in (MEXC: the API key alone).
            limits = traits_for(account.exchange_id).rate_limits
            scopes = {"key": key_scope(account.api_key.get_secret_value()), "ip": egress}
            # A delayed send is fenced again (after=); a 418 ban pauses the IP too (ban_scopes=).
            return ccxt_throttle(limiter, tuple(scopes[kind] for kind in limits.private_scopes), limits,
                                 after=sharding.recheck_after_wait, ban_scopes=(egress,))

        pool = ExchangePool(timeout_ms=int(exchange.timeout_s * 1000), throttle_factory=throttle,
                            max_clients=settings.max_exchange_clients)
        journal = Journal(engine)
        # Redis answers for a user again only once it agrees with the journal (after a failed write).
        state: OrderState = (RedisOrderState(redis, settings.redis_prefix, journal) if redis
                             else LocalOrderState())
        metrics = Metrics()
        executor = Executor(pool, journal, state, concurrency=settings.max_order_concurrency,
                            clock_skew_ms=settings.clock_skew_ms, fence=sharding,
                            observe_ack_s=metrics.order_latency.observe)
        parts = cls(
            settings=settings, telegram=telegram, exchange=exchange, engine=engine, users=users,
            watcher=ArtefactWatcher(open_store(settings.bundle_url, settings.bundle_dir), model_kind,
                                    model_loader or load_predictor),
            roster=Roster(users, sharding, settings, exchange.url, refresh_s=settings.users_refresh_s),
            pool=pool, journal=journal, state=state,
            executor=executor, notifier=Notifier(telegram), metrics=metrics, sharding=sharding,
            limiter=limiter, redis=redis, egress_scope=egress,
            sentiment=SentimentFeed.from_settings(settings.exchange_id),
        )
        # The built-in paper broker: paper users without a sandbox URL trade here, priced from the
        # market-data client (public requests only) and the market-data venue's listings.
        broker = PaperBroker(
            PaperStore(engine), CcxtPriceFeed(parts.public_client, settings.paper_fill),
            lambda: pool.markets(exchange.id, exchange.url),
            FillModel(at=settings.paper_fill, slippage_bps=settings.paper_slippage_bps),
            settings.paper_funds, exchange.id,
        )
        pool.paper = broker.venue
        return parts

    async def start(self) -> None:
        if isinstance(self.state, LocalOrderState):
            await rebuild_from(self.journal, self.state)  # the journal is the durable record
        self.sharding.start()  # heartbeats from a thread of its own
        await self.notifier.start()
        if self.health is not None:
            app = http_app(self.metrics, self.health)
            self._runner, self.http_port = await serve(app, self.settings.http_host, self.settings.http_port)

    async def stop(self) -> None:
        await self.notifier.stop(drain=True)
        await self.sharding.leave()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._public is not None:
            await self._public.close()
        await self.pool.close()
        if self.redis is not None:
            await self.redis.aclose()
        self.engine.dispose()

    async def candle_windows(self, timeframe: str) -> CandleWindows:
        """The market-data feed for `timeframe` (one public client, IP-scoped rate limit)."""
        windows = self._windows.get(timeframe)
        if windows is None:
            windows = self._windows[timeframe] = CandleWindows(
                await self.public_client(), timeframe, stale_after_bars=self.settings.stale_after_bars
            )
        return windows

    async def public_client(self) -> Any:
        """The one unsigned market-data client (no keys: nothing it sends is signed)."""
        if self._public is None:
            from xray_core.exchange.client import build_async_exchange

            unsigned = self.exchange.model_copy(update={"api_key": None, "api_secret": None})
            public = build_async_exchange(unsigned)
            install_ccxt_throttle(public, self.limiter, (self.egress_scope,))
            self._public = public
        return self._public

    async def _record_transfers(self, user_id: str, balance: BalanceReport,
                                transfers: list[Transfer]) -> None:
        """Record the transfers the balance reflects and set the book's balances and net transfers
        together (`transfers` module docstring)."""
        book = self.book
        if user_id not in book.user_index:  # not this process's now: whoever has it values them
            return
        known = await asyncio.to_thread(self.transfers.known, user_id)
        change, prices = book.coin_effects(user_id, balance.total)
        values = values_of(transfers, known, book.quote, change, prices)
        await asyncio.to_thread(self.transfers.record, user_id, transfers, values, wall_ms())
        net = (await asyncio.to_thread(self.transfers.net, [user_id]))[user_id]
        if user_id in book.user_index:
            # One step, no await: balances and net transfers move together, and the balances hold
            # every fill recorded so far for the user, so those move only the journal's side of the
            # positions (xray_runtime.upkeep).
            book.set_balances(user_id, dict(balance.total))
            book.set_transfers(user_id, net)
            book.record_fills(self.journal.drain_new_fills(user_id))

    async def reconcile_users(self, user_ids: list[str],
                              gate: Callable[[str], Any] | None = None) -> Reconciled:
        """Reconcile each user against the exchange (the symbols they have orders on) and set the
        book from the exchange's balances, each user under `gate(user_id)` (an async lock execution
        takes too) when given. One user's failure never touches another's."""
        traded = await asyncio.to_thread(self._traded_symbols)
        result = Reconciled()
        # Each user's reconciliation has up to RECONCILE_LOOKUPS requests in flight: bound the users so
        # that the requests stay within the orders in flight (more would queue for connections, and a
        # signed request that waits past its recvWindow is refused).
        slots = asyncio.Semaphore(max(1, self.settings.max_order_concurrency // RECONCILE_LOOKUPS))

        async def one(user_id: str) -> None:
            account = self.roster.accounts.get(user_id)
            if account is None:
                return
            if self.executor.halts.active(scopes_of(account)) is not None:  # banned (418): ask nothing
                result.totals["halted"] = result.totals.get("halted", 0) + 1
                return
            async with gate(user_id) if gate is not None else contextlib.nullcontext(), slots:
                try:
                    venue = await self.pool.venue(account)
                    symbols = sorted(traded.get(user_id, ()))
                    reports: list[ReconcileReport] = []

                    async def read_balance() -> BalanceReport:
                        reports.append(await reconcile(account, venue, self.journal, self.state, symbols))
                        # The comparison of base currencies may have read the balance already.
                        return reports[0].balance or await venue.fetch_balance()

                    read = await read_around(venue, self.transfers, user_id, read_balance)
                    report = reports[0]
                    if read is not None:
                        await self._record_transfers(user_id, *read)
                except VenueAuthError as exc:
                    result.refused[user_id] = (f"the exchange refused the API key {account.fingerprint} "
                                               f"({exc.source}): enter a working key with spot trading")
                    return
                except Exception as exc:  # one user's failure is that user's alone
                    result.totals["failed"] = result.totals.get("failed", 0) + 1
                    log.warning("reconciliation failed", extra={"event": "reconcile_failed",
                                                                "user_id": user_id, "reason": describe(exc)})
                    return
                result.worked += 1
                for kind, count in report.counts().items():
                    result.totals[kind] = result.totals.get(kind, 0) + count
                if read is None:  # a transfer moved while the balance was read: both again next time
                    result.totals["transfers_moving"] = result.totals.get("transfers_moving", 0) + 1

        await asyncio.gather(*(one(u) for u in user_ids))
        return result

    async def refresh_markets(self) -> None:
        """Read listings and precisions again: the market-data client's and every venue's."""
        if self._public is not None:
            await self._public.load_markets(True)
        await self.pool.refresh_markets()

    def _traded_symbols(self) -> dict[str, set[str]]:
        query = sa.select(orders_table.c.user_id, orders_table.c.symbol).distinct()
        traded: dict[str, set[str]] = {}
        with self.engine.connect() as con:
            for user_id, symbol in con.execute(query):
                traded.setdefault(user_id, set()).add(symbol)
        return traded

