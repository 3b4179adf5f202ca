"""The ccxt adapter: one ccxt async exchange (one account) as a `VenueClient`.

The adapter is the only place in the order path that knows ccxt: it fills in the venue's quirks
from its `VenueTraits` (the trade-history page size and order filter, which error codes mean "no
such order", how long a client order id may be), parses ccxt's dicts into reports (`ccxt_parse`)
and sorts ccxt's exceptions into `VenueError`s:

    ccxt                                          VenueError
    VenueBanned (HTTP 418, see below)             VenueBannedError
    RateLimitExceeded, DDoSProtection             VenueRateLimitedError
    InvalidNonce (a stale timestamp)              VenueNotProcessedError
    AuthenticationError (PermissionDenied, ...)   VenueAuthError
    OrderNotFound; a no-such-order code of the    VenueOrderNotFoundError
      traits (order queries and cancels only)
    a duplicate-client-id code of the traits      VenueDuplicateOrderError
      (order placement only)
    InsufficientFunds, InvalidOrder, BadRequest   VenueRejectedError
    any other ccxt error (timeouts, 5xx, ...)     VenueUnavailableError
    an answer the parser refuses                  MalformedReportError

ccxt reads an HTTP 418 through the venue's error codes first (MEXC: an unknown code, a plain
ExchangeError), so the status itself is lost; `raise_on_ban` is the hook a ccxt subclass calls from
`handle_errors` to raise `VenueBanned` with the Retry-After the venue sent.

Nothing is retried here: whether a request may be repeated is the caller's decision (an order only
with its client order id, after asking).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from typing import Any, TypeVar

import ccxt
import ccxt.async_support as ccxt_async

from xray_core.exchange.ccxt_parse import (
    parse_balance,
    parse_markets,
    parse_order,
    parse_trade,
    parse_transfer,
)
from xray_core.exchange.protocol import (
    MalformedReportError,
    VenueAuthError,
    VenueBannedError,
    VenueDuplicateOrderError,
    VenueError,
    VenueNotProcessedError,
    VenueOrderNotFoundError,
    VenueRateLimitedError,
    VenueRejectedError,
    VenueUnavailableError,
)
from xray_core.exchange.reports import BalanceReport, FillReport, MarketReport, OrderReport, Transfer
from xray_core.exchange.venues import VenueTraits, traits_for
from xray_core.exchange.venues.mexc_ccxt import place_market_order as mexc_market_order
from xray_core.trading.orders import Side

log = logging.getLogger(__name__)
T = TypeVar("T")
# Market orders placed through a venue's own ccxt request builder and endpoint (same signing,
# throttle and errors) where ccxt's unified createOrder only adds work: the venue modules say why.
LEAN_MARKET_ORDERS: dict[str, Callable[..., Awaitable[OrderReport]]] = {"mexc": mexc_market_order}

TRANSFERS_PAGE = 1000  # deposits (withdrawals) per request: MEXC's maximum
RATE_LIMITED: tuple[type[Exception], ...] = (ccxt.RateLimitExceeded, ccxt.DDoSProtection)
BAN_STATUS = 418
# The latest wall-clock ms at which the request being made may still be signed (None: any time). ccxt
# signs right after its throttle; `check_sign_deadline`, called there, refuses a request that waited
# past it. Whoever reads the journal later can then date every send of an order.
SIGN_BY_MS: ContextVar[int | None] = ContextVar("xray_sign_by_ms", default=None)


class SignDeadlinePassed(ccxt.InvalidNonce):
    """The request waited (for a rate limit) past its signing deadline: it was not sent."""


def check_sign_deadline() -> None:
    deadline = SIGN_BY_MS.get()
    if deadline is not None and time.time() * 1000 > deadline:
        raise SignDeadlinePassed(f"not sent: it could not be signed by {deadline} ms")


class VenueBanned(ccxt.DDoSProtection):
    """HTTP 418 (raised by `raise_on_ban`): the venue banned this IP address for `retry_after_s`."""

    def __init__(self, message: str, retry_after_s: float | None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


def raise_on_ban(exchange_id: str, status: int | None, method: str,
                 headers: Mapping[str, Any] | None) -> None:
    """Raise VenueBanned for an HTTP 418 answer, with the venue's Retry-After (seconds) if it sent one."""
    if status != BAN_STATUS:
        return
    retry_after = {str(k).lower(): v for k, v in (headers or {}).items()}.get("retry-after")
    try:
        seconds: float | None = float(retry_after) if retry_after is not None else None
    except ValueError:
        seconds = None
    raise VenueBanned(f"{exchange_id} {method} {BAN_STATUS}: this IP address is banned", seconds)
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


def classify(error: ccxt.BaseError, traits: VenueTraits, *, order_query: bool = False,
             placing: bool = False) -> VenueError:
    """The VenueError for a ccxt error (see the module docstring). `order_query`: the request asked
    about or cancelled one order, so the venue's no-such-order codes mean exactly that; `placing`: it
    placed an order, so the venue's duplicate-id codes mean an order under that id exists."""
    problem, source = _message(error), type(error).__name__
    if isinstance(error, VenueBanned):
        return VenueBannedError(problem, source, scope="ip", retry_after_s=error.retry_after_s)
    if isinstance(error, RATE_LIMITED):
        return VenueRateLimitedError(problem, source)
    if isinstance(error, ccxt.InvalidNonce):
        return VenueNotProcessedError(problem, source)
    if isinstance(error, ccxt.AuthenticationError):
        return VenueAuthError(problem, source)
    if isinstance(error, ccxt.OrderNotFound) or (
            order_query and isinstance(error, ccxt.ExchangeError)
            and any(code in str(error) for code in traits.no_such_order_codes)):
        return VenueOrderNotFoundError(problem, source)
    if placing and isinstance(error, ccxt.ExchangeError) and any(
            _has_code(str(error), code) for code in traits.duplicate_order_codes):
        return VenueDuplicateOrderError(problem, source)
    if isinstance(error, REJECTIONS):
        return VenueRejectedError(problem, source)
    return VenueUnavailableError(problem, source)


async def _async(check: Callable[[], None]) -> None:
    check()


def _has_code(text: str, code: str) -> bool:
    """Whether a ccxt message carries the venue's error `code` (as MEXC's JSON `"code":-2010`)."""
    return f'"code":{code}' in text.replace(" ", "") or f'"code":"{code}"' in text.replace(" ", "")


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

    @property
    def request_ttl_ms(self) -> int:
        """The recvWindow ccxt signs with (its `recvWindow` option), at most the venue's largest; the
        venue's largest when ccxt sends none (the venue's own default then applies, unknown here)."""
        window = self.exchange.options.get("recvWindow") if isinstance(self.exchange.options, dict) else None
        if isinstance(window, int | float) and not isinstance(window, bool) and window > 0:
            return int(min(window, self.traits.max_recv_window_ms))
        return self.traits.max_recv_window_ms

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
                           limit_price: float | None = None, sign_by_ms: int | None = None) -> OrderReport:
        limit = self.traits.max_client_order_id_length
        if len(client_order_id) > limit:  # the venue would refuse or truncate it: never sent
            raise VenueRejectedError(f"{client_order_id!r} is longer than "
                                f"{self.traits.exchange_id}'s {limit} characters", "ClientOrderIdTooLong")
        kind = "market" if limit_price is None else "limit"
        what = f"create_order {symbol}"
        deadline = SIGN_BY_MS.set(sign_by_ms)
        try:
            if sign_by_ms is not None:  # also where no throttle runs: late already, nothing is sent
                await self._call(what, _async, check_sign_deadline)
            lean = LEAN_MARKET_ORDERS.get(self.traits.exchange_id) if limit_price is None else None
            if lean is not None:  # the venue's own request, sent by ccxt, without the unified wrapping
                return await self._call(what, lean, self.exchange, symbol, side, amount, client_order_id,
                                        placing=True)
            raw = await self._call(what, self.exchange.create_order, symbol, kind, side.value, amount,
                                   limit_price, {"clientOrderId": client_order_id}, placing=True)
        finally:
            SIGN_BY_MS.reset(deadline)
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

    async def fetch_transfers(self, since_ms: int | None) -> list[Transfer]:
        transfers: list[Transfer] = []
        for what, fn in (("fetch_deposits", self.exchange.fetch_deposits),
                         ("fetch_withdrawals", self.exchange.fetch_withdrawals)):
            raw = await self._call(what, fn, None, since_ms, TRANSFERS_PAGE)
            page = self._list(raw, what)
            if len(page) >= TRANSFERS_PAGE:  # more than one page since `since_ms`: some would be missed
                raise MalformedReportError(f"{self._context(what)}: {len(page)} transfers since {since_ms}, "
                                           "more than one page")
            transfers.extend(parse_transfer(item, self._context(what)) for item in page)
        return sorted(transfers, key=lambda t: (t.timestamp_ms, t.transfer_id))

    # ---- plumbing ----------------------------------------------------------------------------------
    async def _trades(self, symbol: str, since: int | None, limit: int | None,
                      params: dict[str, Any]) -> list[FillReport]:
        what = f"fetch_my_trades {symbol}"
        raw = await self._call(what, self.exchange.fetch_my_trades, symbol, since, limit, params)
        return [parse_trade(item, self._context(what), symbol=symbol) for item in self._list(raw, what)]

    async def _call(self, what: str, fn: Callable[..., Awaitable[T]], *args: Any,
                    order_query: bool = False, placing: bool = False) -> T:
        try:
            return await fn(*args)
        except ccxt.BaseError as error:
            raise classify(error, self.traits, order_query=order_query, placing=placing) from error

    def _list(self, raw: object, what: str) -> list[object]:
        if not isinstance(raw, list):
            raise MalformedReportError(f"{self._context(what)}: expected a list, got {type(raw).__name__}")
        return raw

    def _context(self, what: str) -> str:
        return f"{self.traits.exchange_id} {what}"
