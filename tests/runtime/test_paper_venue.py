"""The built-in paper broker: a paper user's orders fill inside the runtime on the market data (the
emulator's here), with the market's fee and slippage, balances kept in SQL across restarts, client ids
deduplicated, refusals as a venue's — and the executor and reconciliation run on it unchanged, while
the exchange sees no signed request at all."""

from __future__ import annotations

import asyncio

import pytest
from order_path_support import bar_of, intents, sqlite_journal

from xray_core.exchange.client import build_async_exchange
from xray_core.exchange.protocol import VenueOrderNotFoundError, VenueRejectedError
from xray_core.settings import ExchangeSettings
from xray_core.trading.orders import OrderStatus, Side
from xray_runtime.db import connect
from xray_runtime.exchange_pool import ExchangeAccount, ExchangePool
from xray_runtime.execution import Executor
from xray_runtime.order_state import LocalOrderState
from xray_runtime.paper_store import PaperStore
from xray_runtime.paper_venue import CcxtPriceFeed, FillModel, PaperBroker
from xray_runtime.reconcile import reconcile

FUNDS = {"USDT": 1000.0}
SLIPPAGE_BPS = 20.0


class Broker:
    """A paper broker on a SQLite file, priced from the emulator's public API."""

    def __init__(self, emulator, db_path, at="open", ttl_s=1.0) -> None:
        self.market = build_async_exchange(ExchangeSettings(url=emulator.base_url))
        self.pool = ExchangePool()
        self.store = PaperStore(connect(f"sqlite:///{db_path}"))

        async def client():
            return self.market

        self.broker = PaperBroker(self.store, CcxtPriceFeed(client, at, ttl_s),
                                  lambda: self.pool.markets("mexc", emulator.base_url),
                                  FillModel(at=at, slippage_bps=SLIPPAGE_BPS), FUNDS, "mexc")
        self.pool.paper = self.broker.venue

    async def close(self) -> None:
        await self.market.close()
        await self.pool.close()


@pytest.fixture
async def broker(emulator, tmp_path):
    made = Broker(emulator, tmp_path / "paper.db")
    yield made
    await made.close()


def paper_account(user_id: str) -> ExchangeAccount:
    return ExchangeAccount.of(user_id, "mexc", None, "", "")  # paper, no URL, no key


async def test_a_market_buy_fills_at_the_bar_open_with_slippage_and_the_taker_fee(emulator, tmp_path):
    made = Broker(emulator, tmp_path / "paper.db", ttl_s=600)  # the quote read below is the one filled at
    try:
        venue = await made.pool.venue(paper_account("pia"))
        quote = await made.broker.prices.quote("BTC/USDT")
        [bar] = await made.market.fetch_ohlcv("BTC/USDT", "1m", quote.at_ms, 1)
        markets = await venue.markets()
        order = await venue.create_order("BTC/USDT", Side.BUY, 0.002, "cid-1")
        [trade] = await venue.fetch_order_trades("BTC/USDT", order.exchange_order_id)
        balance = await venue.fetch_balance()
    finally:
        await made.close()
    assert (order.status, order.filled, order.client_order_id) == (OrderStatus.FILLED, 0.002, "cid-1")
    assert order.average == pytest.approx(bar[1] * (1 + SLIPPAGE_BPS / 10_000), rel=1e-12)
    assert order.timestamp_ms == bar[0] == quote.at_ms  # the bar's open time: market time, not the wall's
    taker = markets["BTC/USDT"].taker_fee
    assert taker is not None and taker > 0
    assert (trade.fee, trade.fee_currency) == (pytest.approx(0.002 * taker), "BTC")
    assert balance.total_of("USDT") == pytest.approx(1000 - 0.002 * order.average)
    assert balance.total_of("BTC") == pytest.approx(0.002 * (1 - taker))
    assert emulator.stats()["by_endpoint"].get("POST /api/v3/order") is None  # nothing reached the exchange


async def test_ticker_fills_buy_at_the_ask_and_sell_at_the_bid(emulator, tmp_path):
    made = Broker(emulator, tmp_path / "paper.db", at="ticker", ttl_s=600)  # one quote for both orders
    try:
        venue = await made.pool.venue(paper_account("tom"))
        quote = await made.broker.prices.quote("ETH/USDT")
        ticker = await made.market.fetch_ticker("ETH/USDT")
        bought = await venue.create_order("ETH/USDT", Side.BUY, 0.1, "b")
        sold = await venue.create_order("ETH/USDT", Side.SELL, 0.05, "s")
    finally:
        await made.close()
    assert quote.ask > quote.bid and quote.ask == pytest.approx(ticker["ask"], rel=1e-3)  # the ticker's touch
    slip = SLIPPAGE_BPS / 10_000
    assert bought.average == pytest.approx(quote.ask * (1 + slip), rel=1e-12)
    assert sold.average == pytest.approx(quote.bid * (1 - slip), rel=1e-12)


async def test_a_repeated_client_id_returns_the_first_order_and_moves_no_money(broker):
    venue = await broker.pool.venue(paper_account("dee"))
    first = await venue.create_order("BTC/USDT", Side.BUY, 0.001, "same")
    before = await venue.fetch_balance()
    again = await venue.create_order("ETH/USDT", Side.SELL, 0.5, "same")  # another symbol and side
    assert again == first
    assert await venue.fetch_balance() == before
    assert len(await venue.fetch_my_trades("BTC/USDT", None)) == 1


async def test_refusals_are_a_venue_s_and_change_nothing(broker):
    venue = await broker.pool.venue(paper_account("rex"))
    cases = [
        (("NOPE/USDT", Side.BUY, 1.0), "BadSymbol"),
        (("BTC/USDT", Side.BUY, 1.0), "InsufficientFunds"),  # ~1 BTC for 1000 USDT
        (("BTC/USDT", Side.SELL, 0.001), "InsufficientFunds"),  # holds no BTC
        (("BTC/USDT", Side.BUY, 0.0000001), "InvalidOrder"),  # below the lot
    ]
    for (symbol, side, amount), source in cases:
        with pytest.raises(VenueRejectedError) as refused:
            await venue.create_order(symbol, side, amount, f"{source}-{amount}")
        assert refused.value.source == source, refused.value.reason
    with pytest.raises(VenueOrderNotFoundError):
        await venue.fetch_order_by_client_id("BadSymbol-1.0", "BTC/USDT")
    assert (await venue.fetch_balance()).total == FUNDS


async def test_balances_survive_a_restart_and_each_account_is_funded_once(emulator, tmp_path):
    first = Broker(emulator, tmp_path / "paper.db")
    try:
        venue = await first.pool.venue(paper_account("ola"))
        await venue.create_order("BTC/USDT", Side.BUY, 0.001, "c1")
        held = await venue.fetch_balance()
    finally:
        await first.close()
    second = Broker(emulator, tmp_path / "paper.db")  # a new process on the same database
    try:
        venue = await second.pool.venue(paper_account("ola"))
        assert await venue.fetch_balance() == held
        assert (await venue.fetch_order_by_client_id("c1", "BTC/USDT")).status is OrderStatus.FILLED
    finally:
        await second.close()


async def test_the_executor_and_reconciliation_run_on_the_broker_unchanged(broker, emulator, tmp_path):
    journal, state = sqlite_journal(tmp_path), LocalOrderState()
    executor = Executor(broker.pool, journal, state, backoff_s=0.01)
    account = paper_account("eve")
    bar = bar_of(emulator)
    orders = await executor.submit(account, intents("eve", bar, [("BTC/USDT", "buy", 0.001),
                                                                 ("ETH/USDT", "buy", 0.02)]))
    assert [o.status for o in orders] == [OrderStatus.FILLED, OrderStatus.FILLED]
    assert all(o.exchange_order_id and o.exchange_order_id.startswith("P") for o in orders)
    assert len(journal.fills("eve")) == 2
    again = await executor.submit(account, intents("eve", bar, [("BTC/USDT", "buy", 0.001),
                                                                ("ETH/USDT", "buy", 0.02)]))
    assert again == orders and executor.stats.resolved == 2  # the same bar decided again: nothing new
    venue = await broker.pool.venue(account)
    report = await reconcile(account, venue, journal, state, ["BTC/USDT", "ETH/USDT"])
    assert report.counts() == {"orders_updated": 0, "fills_added": 0, "unknown_orders": 0, "balance_diffs": 0,
                               "unresolved": 0}
    assert journal.position("eve", "BTC/USDT") == pytest.approx((await venue.fetch_balance()).total_of("BTC"))
    assert emulator.stats()["by_endpoint"].get("POST /api/v3/order") is None


async def test_concurrent_orders_never_overdraw_the_account(broker):
    venue = await broker.pool.venue(paper_account("max"))
    price = (await broker.market.fetch_ticker("ETH/USDT"))["last"]
    amount = round(300 / price, 4)  # three of these fit in 1000 USDT, a fourth does not
    orders = (venue.create_order("ETH/USDT", Side.BUY, amount, f"c{i}") for i in range(6))
    results = await asyncio.gather(*orders, return_exceptions=True)
    filled = [r for r in results if not isinstance(r, Exception)]
    assert len(filled) == 3 and all(isinstance(r, VenueRejectedError) for r in results if r not in filled)
    assert (await venue.fetch_balance()).total_of("USDT") >= 0


async def test_the_service_trades_paper_users_on_the_broker_and_the_exchange_sees_none(
        tmp_path, fixed_emulator, fixed_admin):
    """The whole runtime, paper users without keys and no paper URL: decisions, write-ahead, executor
    and reconciliation as for any venue, fills from the broker, nothing signed sent to the exchange."""
    from cryptography.fernet import Fernet
    from test_service import MINUTE, fast_bundle

    from xray_core.bundle import publish
    from xray_runtime.components import Components
    from xray_runtime.crypto import KeyVault
    from xray_runtime.service import TradingService
    from xray_runtime.settings import RuntimeSettings, TelegramSettings
    from xray_runtime.users import RiskSettings, UserStore

    settings = RuntimeSettings(database_url=f"sqlite:///{tmp_path / 'runtime.db'}", bundle_dir=tmp_path / "b",
                               fernet_key=Fernet.generate_key().decode(), http_port=0, reconcile_every_s=3600,
                               paper_funds={"USDT": 2000.0})
    publish(fast_bundle(), settings.bundle_dir)
    store = UserStore(connect(settings.database_url), KeyVault(settings.fernet_key))
    for user_id in ("pia", "pol"):
        store.add(user_id, user_id, "", "", risk=RiskSettings(trade_percentage=0.2))
    parts = Components.build(settings, TelegramSettings(), ExchangeSettings(url=fixed_emulator.base_url))
    service = TradingService(parts)
    await service.start()
    try:
        for _ in range(12):
            await asyncio.to_thread(fixed_admin.advance, MINUTE)
            await service.step()
        totals = await service.reconcile()
    finally:
        await service.stop()
    orders = [o for r in service.reports for o in r.orders]
    assert {o.user_id for o in orders} == {"pia", "pol"} and {o.side.value for o in orders} == {"buy", "sell"}
    assert all(o.status is OrderStatus.FILLED and o.exchange_order_id.startswith("P") for o in orders)
    paper = PaperStore(connect(settings.database_url))
    assert not any(totals.values()), totals  # the journal and the broker agree exactly
    for user_id in ("pia", "pol"):  # each keyless user has an account of their own at the broker
        journal_fills = {f.trade_id for f in parts.journal.fills(user_id)}
        broker_fills = {t.trade_id for s in {o.symbol for o in orders} for t in paper.trades(user_id, s)}
        assert journal_fills == broker_fills and journal_fills
        assert {t.client_order_id for t in parts.journal.fills(user_id)} <= {
            o.client_order_id for o in orders if o.user_id == user_id}
    by_endpoint = fixed_admin.stats()["by_endpoint"]
    signed = [e for e in by_endpoint if e.startswith(("POST", "DELETE")) or "account" in e or "myTrades" in e]
    assert signed == []


@pytest.mark.postgres
def test_the_paper_books_work_on_postgres():
    """The broker's books on the production database: funding once, a fill, a repeated id, a refusal."""
    import uuid

    import sqlalchemy as sa
    from order_path_support import PG_URL

    from xray_runtime.paper_store import (
        PaperFill,
        PaperFundsError,
        paper_accounts,
        paper_balances,
        paper_orders,
        paper_trades,
    )

    schema = f"paper_{uuid.uuid4().hex[:12]}"
    base = connect(PG_URL, create=False)
    with base.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        engine = base.execution_options(schema_translate_map={None: schema})
        for table in (paper_accounts, paper_balances, paper_orders, paper_trades):
            table.create(engine)
        store = PaperStore(engine)
        assert store.open_account("pg", {"USDT": 100.0}, 1)
        assert not store.open_account("pg", {"USDT": 100.0}, 2)  # funded once
        buy = PaperFill("pg", "c1", "BTC/USDT", "BTC", "USDT", Side.BUY, 0.001, 50_000.0, 0.001, 3)
        report, new = store.fill(buy)
        assert new and (report.status, report.filled, report.average) == (OrderStatus.FILLED, 0.001, 50_000.0)
        assert store.fill(buy) == (report, False)
        with pytest.raises(PaperFundsError):
            store.fill(PaperFill("pg", "c2", "BTC/USDT", "BTC", "USDT", Side.BUY, 1.0, 50_000.0, 0.001, 4))
        balance = store.balance("pg")
        assert balance.total == pytest.approx({"USDT": 50.0, "BTC": 0.001 * 0.999})
        [trade] = store.trades("pg", "BTC/USDT")
        assert (trade.exchange_order_id, trade.fee_currency) == (report.exchange_order_id, "BTC")
    finally:
        with base.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        base.dispose()
