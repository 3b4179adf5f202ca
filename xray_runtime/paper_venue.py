"""The built-in paper broker: a `VenueClient` that fills paper users' orders inside the runtime, on the
live market data, with virtual balances in the runtime's database (`paper_store`).

Everything up to the exchange call is the live path: the same decisions, client order ids,
write-ahead journal, executor and reconciliation; only the venue differs. No API key is needed and
no signed request exists: the broker's only traffic is public market data.

How an order fills (`FillModel`): completely, at once, as a taker:

* price: `open` (default) the open of the 1m bar the order arrives in (the backtests' "next bar's
  open" for a decision on the bar that just closed), or `ticker` the ticker's ask for a buy and bid
  for a sell; either way moved against the trader by `slippage_bps`;
* fee: the market's taker fee (ccxt's `taker`; `default_taker_fee` when the venue states none),
  charged in the asset received, as MEXC does;
* refusals as a venue's: an unknown or inactive market (BadSymbol), an amount below the minimum, off
  the amount step or worth less than the minimum cost (InvalidOrder), more than the account holds
  (InsufficientFunds). No price (market data unreachable): VenueUnavailableError, and nothing placed.

Prices are fetched once per symbol per `ttl_s` however many users order it, single-flight.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

import ccxt
import ccxt.async_support as ccxt_async

from xray_core.exchange.ccxt_venue import classify
from xray_core.exchange.protocol import (
    VenueOrderNotFoundError,
    VenueRejectedError,
    VenueUnavailableError,
)
from xray_core.exchange.reports import BalanceReport, FillReport, MarketReport, OrderReport
from xray_core.exchange.routing import VenueRouteError
from xray_core.exchange.venues import GENERIC, VenueTraits, traits_for
from xray_core.trading.orders import Side
from xray_runtime.exchange_pool import ExchangeAccount
from xray_runtime.paper_store import PaperFill, PaperFundsError, PaperStore

PriceAt = Literal["open", "ticker"]
Markets = Callable[[], Awaitable[Mapping[str, MarketReport]]]


def paper_traits(exchange_id: str) -> VenueTraits:
    """The broker as a venue: it deduplicates client order ids (one per user, in SQL), and what it
    does not have was never placed (each fill is one transaction), so a miss is final within a
    second; its pages are large, and it is rate-limited only by the market data it reads."""
    return replace(GENERIC, exchange_id=f"paper:{exchange_id}", max_client_order_id_length=64,
                   deduplicates_client_order_ids=True, trades_page_limit=100_000,
                   trades_order_filter_param="orderId", max_recv_window_ms=1_000)


@dataclass(frozen=True, slots=True)
class FillModel:
    at: PriceAt = "open"
    slippage_bps: float = 5.0
    default_taker_fee: float = 0.001

    def price(self, side: Side, bid: float, ask: float) -> float:
        slip = self.slippage_bps / 10_000
        return ask * (1 + slip) if side is Side.BUY else bid * (1 - slip)


@dataclass(frozen=True, slots=True)
class Quote:
    bid: float
    ask: float
    at_ms: int  # market time of the price (the bar's open time, or the ticker's time)


class CcxtPriceFeed:
    """Prices from a public ccxt client (the runtime's market-data client), cached per symbol."""

    def __init__(self, client: Callable[[], Awaitable[ccxt_async.Exchange]], at: PriceAt,
                 ttl_s: float = 1.0) -> None:
        self._client, self.at, self.ttl_s = client, at, ttl_s
        self._cache: dict[str, tuple[float, Quote]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def quote(self, symbol: str) -> Quote:
        lock = self._locks.setdefault(symbol, asyncio.Lock())
        async with lock:  # one fetch per symbol at a time: the others wait for its answer
            cached = self._cache.get(symbol)
            if cached is not None and time.monotonic() - cached[0] < self.ttl_s:
                return cached[1]
            exchange = await self._client()
            try:
                read = self._open if self.at == "open" else self._ticker
                quote = await read(exchange, symbol)
            except ccxt.BaseError as error:
                raise classify(error, traits_for(exchange.id)) from error
            self._cache[symbol] = (time.monotonic(), quote)
            return quote

    @staticmethod
    async def _open(exchange: ccxt_async.Exchange, symbol: str) -> Quote:
        rows = await exchange.fetch_ohlcv(symbol, "1m", None, 2)
        if not rows:
            raise VenueUnavailableError(f"no 1m bars for {symbol}", "PaperPrice")
        bar_ms, open_ = int(rows[-1][0]), rows[-1][1]
        return Quote(_positive(open_, symbol), _positive(open_, symbol), bar_ms)

    @staticmethod
    async def _ticker(exchange: ccxt_async.Exchange, symbol: str) -> Quote:
        ticker = await exchange.fetch_ticker(symbol)
        last = ticker.get("last")
        bid, ask = ticker.get("bid") or last, ticker.get("ask") or last
        at_ms = ticker.get("timestamp") or int(time.time() * 1000)
        return Quote(_positive(bid, symbol), _positive(ask, symbol), int(at_ms))


def _positive(value: Any, symbol: str) -> float:
    number = value if isinstance(value, int | float) and not isinstance(value, bool) else math.nan
    if not math.isfinite(number) or number <= 0:
        raise VenueUnavailableError(f"no usable price for {symbol} (got {value!r})", "PaperPrice")
    return float(value)


class PaperBroker:
    """The broker of one runtime process: makes each paper account's `PaperVenue` (opening and
    funding the account on first use). `markets` returns the market-data venue's listings."""

    def __init__(self, store: PaperStore, prices: CcxtPriceFeed, markets: Markets, model: FillModel,
                 funds: Mapping[str, float], exchange_id: str,
                 now_ms: Callable[[], int] = lambda: int(time.time() * 1000)) -> None:
        self.store, self.prices, self.markets, self.model = store, prices, markets, model
        self.funds = dict(funds)
        self.exchange_id = exchange_id  # the market-data exchange: the only one it has prices of
        self.now_ms = now_ms
        # SQLite takes one writer at a time: queue fills here rather than in its busy timeout.
        self.writers = asyncio.Semaphore(1 if store.engine.dialect.name == "sqlite" else 8)

    async def venue(self, account: ExchangeAccount) -> PaperVenue:
        if account.exchange_id != self.exchange_id:
            raise VenueRouteError(f"{account.describe()}: the paper broker trades {self.exchange_id} (the "
                                  f"market data's exchange), not {account.exchange_id}",
                                  "set XRAY_EXCHANGE_ID to the user's exchange, or change the user's")
        await asyncio.to_thread(self.store.open_account, account.user_id, self.funds, self.now_ms())
        return PaperVenue(self, account.user_id, paper_traits(account.exchange_id))


class PaperVenue:
    """One paper user's account at the broker, as a `VenueClient`."""

    def __init__(self, broker: PaperBroker, user_id: str, traits: VenueTraits) -> None:
        self.broker, self.user_id, self._traits = broker, user_id, traits

    @property
    def traits(self) -> VenueTraits:
        return self._traits

    @property
    def request_ttl_ms(self) -> int:
        return 0  # in this process: no request can be held on the way and act later

    async def markets(self) -> Mapping[str, MarketReport]:
        try:
            return await self.broker.markets()
        except ccxt.BaseError as error:  # the market-data venue did not answer
            raise classify(error, traits_for(self.broker.exchange_id)) from error

    async def create_order(self, symbol: str, side: Side, amount: float, client_order_id: str, *,
                           limit_price: float | None = None, sign_by_ms: int | None = None) -> OrderReport:
        store = self.broker.store
        existing = await asyncio.to_thread(store.order_by_client_id, self.user_id, client_order_id)
        if existing is not None:  # deduplicated before any price is read
            return existing
        if limit_price is not None:
            raise VenueRejectedError("the paper broker fills market orders only", "InvalidOrder")
        market = await self._market(symbol)
        _check_amount(market, amount)
        quote = await self.broker.prices.quote(symbol)
        model = self.broker.model
        price = model.price(side, quote.bid, quote.ask)
        if market.min_cost is not None and amount * price < market.min_cost:
            raise VenueRejectedError(f"{symbol}: cost {amount * price:.8g} is below the minimum "
                                     f"{market.min_cost:g} {market.quote}", "InvalidOrder")
        fee = market.taker_fee if market.taker_fee is not None else model.default_taker_fee
        fill = PaperFill(self.user_id, client_order_id, symbol, market.base, market.quote, side, amount,
                         price, fee, quote.at_ms)
        async with self.broker.writers:
            try:
                report, _new = await asyncio.to_thread(store.fill, fill)
            except PaperFundsError as error:
                raise VenueRejectedError(f"{symbol} {side.value}: {error}", "InsufficientFunds") from None
        return report

    async def fetch_order(self, exchange_order_id: str, symbol: str) -> OrderReport:
        found = await asyncio.to_thread(self.broker.store.order, self.user_id, exchange_order_id)
        if found is None or found.symbol != symbol:
            raise VenueOrderNotFoundError(f"no paper order {exchange_order_id} on {symbol}")
        return found

    async def fetch_order_by_client_id(self, client_order_id: str, symbol: str) -> OrderReport:
        found = await asyncio.to_thread(self.broker.store.order_by_client_id, self.user_id, client_order_id)
        if found is None or found.symbol != symbol:
            raise VenueOrderNotFoundError(f"no paper order {client_order_id} on {symbol}")
        return found

    async def fetch_orders(self, symbol: str, since_ms: int | None = None) -> list[OrderReport]:
        return await asyncio.to_thread(self.broker.store.orders, self.user_id, symbol, since_ms)

    async def fetch_open_orders(self, symbol: str) -> list[OrderReport]:
        return []  # every paper order fills completely when placed

    async def cancel_order(self, exchange_order_id: str, symbol: str) -> OrderReport:
        raise VenueOrderNotFoundError(f"no open paper order {exchange_order_id} on {symbol}")

    async def fetch_my_trades(self, symbol: str, since_ms: int | None) -> list[FillReport]:
        return await asyncio.to_thread(self.broker.store.trades, self.user_id, symbol, since_ms)

    async def fetch_order_trades(self, symbol: str, exchange_order_id: str) -> list[FillReport]:
        store = self.broker.store
        return await asyncio.to_thread(store.trades, self.user_id, symbol, None, exchange_order_id)

    async def fetch_balance(self) -> BalanceReport:
        return await asyncio.to_thread(self.broker.store.balance, self.user_id)

    async def _market(self, symbol: str) -> MarketReport:
        market = (await self.markets()).get(symbol)
        if market is None or market.active is False:
            raise VenueRejectedError(f"{symbol} is not an active market", "BadSymbol")
        return market


def _check_amount(market: MarketReport, amount: float) -> None:
    if not math.isfinite(amount) or amount <= 0:
        raise VenueRejectedError(f"{market.symbol}: amount {amount!r} is not positive", "InvalidOrder")
    if market.min_amount is not None and amount < market.min_amount * (1 - 1e-9):
        raise VenueRejectedError(f"{market.symbol}: amount {amount:.10g} is below the minimum "
                                 f"{market.min_amount:g}", "InvalidOrder")
    step = market.amount_step
    if step and abs(amount / step - round(amount / step)) > 1e-6:
        raise VenueRejectedError(f"{market.symbol}: amount {amount:.10g} is not a multiple of {step:g}",
                                 "InvalidOrder")
