"""The ccxt adapter: one ccxt async exchange (one account) as a `VenueClient`.

The adapter is the only place in the order path that knows ccxt: it fills in the venue's quirks
from its `VenueTraits` (the trade-history page size and order filter, which error codes mean "no
such order", how long a client order id may be), parses ccxt's dicts into reports (`ccxt_parse`)
and sorts ccxt's exceptions into `VenueError`s:

    ccxt                                          VenueError
    RateLimitExceeded, DDoSProtection             VenueRateLimitedError
    AuthenticationError (PermissionDenied, ...)   VenueAuthError
    OrderNotFound; a no-such-order code of the    VenueOrderNotFoundError
      traits (order queries and cancels only)
    InsufficientFunds, InvalidOrder, BadRequest   VenueRejectedError
    any other ccxt error (timeouts, 5xx, ...)     VenueUnavailableError
    an answer the parser refuses                  MalformedReportError

Nothing is retried here: whether a request may be repeated is the caller's decision (an order only
with its client order id, after asking).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import ccxt
import ccxt.async_support as ccxt_async

from xray_core.exchange.ccxt_parse import parse_balance, parse_markets, parse_order, parse_trade
from xray_core.exchange.protocol import (
    MalformedReportError,
    VenueAuthError,
    VenueError,
    VenueOrderNotFoundError,
    VenueRateLimitedError,
    VenueRejectedError,
    VenueUnavailableError,
)
from xray_core.exchange.reports import BalanceReport, FillReport, MarketReport, OrderReport
from xray_core.exchange.venues import VenueTraits, traits_for
from xray_core.trading.orders import Side

log = logging.getLogger(__name__)
T = TypeVar("T")

RATE_LIMITED: tuple[type[Exception], ...] = (ccxt.RateLimitExceeded, ccxt.DDoSProtection)
REJECTIONS: tuple[type[Exception], ...] = (ccxt.InsufficientFunds, ccxt.InvalidOrder, ccxt.BadRequest)


def describe(error: BaseException) -> str:
    """One line naming the error, without request URLs (which carry signatures) or secrets."""
    return f"{type(error).__name__}: {_message(error)}".rstrip(": ")


def _message(error: BaseException) -> str:
    text = str(error).splitlines()[0] if str(error) else ""
    for marker in ("http://", "https://"):  # ccxt prefixes messages with 'mexc GET https://...'
        if marker in text:
            text = text.split(marker)[0].strip()
    return text[:200]


def classify(error: ccxt.BaseError, traits: VenueTraits, *, order_query: bool = False) -> VenueError:
    """The VenueError for a ccxt error (see the module docstring). `order_query`: the request asked
    about or cancelled one order, so the venue's no-such-order codes mean exactly that."""
    problem, source = _message(error), type(error).__name__
    if isinstance(error, RATE_LIMITED):
        return VenueRateLimitedError(problem, source)
    if isinstance(error, ccxt.AuthenticationError):
        return VenueAuthError(problem, source)
    if isinstance(error, ccxt.OrderNotFound) or (
            order_query and isinstance(error, ccxt.ExchangeError)
            and any(code in str(error) for code in traits.no_such_order_codes)):
        return VenueOrderNotFoundError(problem, source)
    if isinstance(error, REJECTIONS):
        return VenueRejectedError(problem, source)
    return VenueUnavailableError(problem, source)


class CcxtVenueClient:
    """A `VenueClient` over a ccxt async exchange. `markets`, when given, is the parsed table of the
    exchange's (shared) markets, so clients of one venue parse it once between them."""

    def __init__(self, exchange: ccxt_async.Exchange, traits: VenueTraits | None = None,
                 markets: Mapping[str, MarketReport] | None = None) -> None:
        self.exchange = exchange
        self._traits = traits if traits is not None else traits_for(exchange.id)
        self._markets = markets

    @property
    def traits(self) -> VenueTraits:
        return self._traits

    async def markets(self) -> Mapping[str, MarketReport]:
        if self._markets is None:
            if not self.exchange.markets:
                await self._call("load_markets", self.exchange.load_markets)
            markets, problems = parse_markets(self.exchange.markets, self._context("load_markets"),
                                              self.exchange.precisionMode)
            if problems:
                log.warning("%d markets of %s left out, e.g. %s", len(problems), self.traits.exchange_id,
                            problems[0])
            self._markets = markets
        return self._markets

    # ---- orders ------------------------------------------------------------------------------------
    async def create_order(self, symbol: str, side: Side, amount: float, client_order_id: str, *,
                           limit_price: float | None = None) -> OrderReport:
        limit = self.traits.max_client_order_id_length
        if len(client_order_id) > limit:  # the venue would refuse or truncate it: never sent
            raise VenueRejectedError(f"{client_order_id!r} is longer than "
                                f"{self.traits.exchange_id}'s {limit} characters", "ClientOrderIdTooLong")
        kind = "market" if limit_price is None else "limit"
        what = f"create_order {symbol}"
        raw = await self._call(what, self.exchange.create_order, symbol, kind, side.value, amount,
                               limit_price, {"clientOrderId": client_order_id})
        return parse_order(raw, self._context(what), symbol=symbol, client_order_id=client_order_id)

    async def fetch_order(self, exchange_order_id: str, symbol: str) -> OrderReport:
        what = f"fetch_order {exchange_order_id} on {symbol}"
        raw = await self._call(what, self.exchange.fetch_order, exchange_order_id, symbol, order_query=True)
        return parse_order(raw, self._context(what), symbol=symbol)

    async def fetch_order_by_client_id(self, client_order_id: str, symbol: str) -> OrderReport:
        what = f"fetch_order by client id {client_order_id} on {symbol}"
        raw = await self._call(what, self.exchange.fetch_order, "", symbol,
                               {"clientOrderId": client_order_id}, order_query=True)
        report = parse_order(raw, self._context(what), symbol=symbol, client_order_id=client_order_id)
        if report.client_order_id != client_order_id:  # adopting another order would be worse than none
            raise MalformedReportError(f"{self._context(what)}: the answer is order "
                                       f"{report.exchange_order_id} of client id {report.client_order_id!r}")
        return report

    async def fetch_orders(self, symbol: str, since_ms: int | None = None) -> list[OrderReport]:
        what = f"fetch_orders {symbol}"
        raw = await self._call(what, self.exchange.fetch_orders, symbol, since_ms)
        return [parse_order(item, self._context(what), symbol=symbol) for item in self._list(raw, what)]

    async def fetch_open_orders(self, symbol: str) -> list[OrderReport]:
        what = f"fetch_open_orders {symbol}"
        raw = await self._call(what, self.exchange.fetch_open_orders, symbol)
        return [parse_order(item, self._context(what), symbol=symbol) for item in self._list(raw, what)]

    async def cancel_order(self, exchange_order_id: str, symbol: str) -> OrderReport:
        what = f"cancel_order {exchange_order_id} on {symbol}"
        raw = await self._call(what, self.exchange.cancel_order, exchange_order_id, symbol, order_query=True)
        return parse_order(raw, self._context(what), symbol=symbol)

    # ---- trades and balances -----------------------------------------------------------------------
    async def fetch_my_trades(self, symbol: str, since_ms: int | None) -> list[FillReport]:
        limit = self.traits.trades_page_limit
        seen: set[str] = set()
        trades: list[FillReport] = []
        since = since_ms
        while True:
            page = await self._trades(symbol, since, limit, {})
            new = [trade for trade in page if trade.trade_id not in seen]
            seen.update(trade.trade_id for trade in new)
            trades.extend(new)
            # A full page may have more behind it; the next page starts at its last trade's time
            # (inclusive, so trades sharing that millisecond are not skipped: repeats are dropped above).
            if since is None or len(page) < limit or not new:
                return trades
            since = max(trade.timestamp_ms for trade in page)

    async def fetch_order_trades(self, symbol: str, exchange_order_id: str) -> list[FillReport]:
        param = self.traits.trades_order_filter_param
        page = await self._trades(symbol, None, None, {param: exchange_order_id} if param else {})
        return [trade for trade in page if trade.exchange_order_id == exchange_order_id]

    async def fetch_balance(self) -> BalanceReport:
        return parse_balance(await self._call("fetch_balance", self.exchange.fetch_balance),
                             self._context("fetch_balance"))

    # ---- plumbing ----------------------------------------------------------------------------------
    async def _trades(self, symbol: str, since: int | None, limit: int | None,
                      params: dict[str, Any]) -> list[FillReport]:
        what = f"fetch_my_trades {symbol}"
        raw = await self._call(what, self.exchange.fetch_my_trades, symbol, since, limit, params)
        return [parse_trade(item, self._context(what), symbol=symbol) for item in self._list(raw, what)]

    async def _call(self, what: str, fn: Callable[..., Awaitable[T]], *args: Any,
                    order_query: bool = False) -> T:
        try:
            return await fn(*args)
        except ccxt.BaseError as error:
            raise classify(error, self.traits, order_query=order_query) from error

    def _list(self, raw: object, what: str) -> list[object]:
        if not isinstance(raw, list):
            raise MalformedReportError(f"{self._context(what)}: expected a list, got {type(raw).__name__}")
        return raw

    def _context(self, what: str) -> str:
        return f"{self.traits.exchange_id} {what}"
