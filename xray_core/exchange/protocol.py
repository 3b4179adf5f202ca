"""The venue as the runtime's order path sees it: `VenueClient`, the typed reports it answers with,
and the `VenueError`s it raises.

Whatever speaks to a venue (the ccxt adapter `CcxtVenueClient`, a paper broker) implements this
protocol; the executor and reconciliation depend on nothing else. Its errors say what the order
path has to decide, not which library raised them:

    VenueError                       base: `reason` is one line, `source` the raising class's name
    ├── VenueNotProcessedError       refused before processing (a stale timestamp): nothing
    │   │                            happened, send again with a fresh request
    │   └── VenueRateLimitedError    refused before processing (429): nothing happened, try later
    ├── VenueBannedError             HTTP 418: the venue banned the IP address (or the key) for a
    │                                while: send nothing more on that scope until it lifts
    ├── VenueAuthError               the API key was refused: the whole account is unusable
    ├── VenueRejectedError           the request can never succeed as sent (funds, symbol, size...)
    │   ├── VenueOrderNotFoundError  the venue has no such order
    │   └── VenueDuplicateOrderError the client order id is taken: an order under it exists
    ├── VenueUnavailableError        no usable answer (timeout, 5xx, dropped connection): the
    │                                request may or may not have been processed
    └── MalformedReportError         an answer came, without what the protocol promises

A venue client also says how long a request it signs stays valid (`request_ttl_ms`): a request held
anywhere on the way cannot act after that, which is when an order that is not found may be sent again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Protocol, runtime_checkable

from xray_core.errors import XrayError
from xray_core.exchange.reports import BalanceReport, FillReport, MarketReport, OrderReport
from xray_core.exchange.venues import VenueTraits
from xray_core.trading.orders import Side


class VenueError(XrayError):
    """A venue refused or failed a request. `source` names what raised it at the adapter (ccxt's
    exception class, or this class); `reason`, "{source}: {problem}" on one line (e.g.
    "AuthenticationError: mexc {...}"), is what orders and reports record."""

    default_hint: ClassVar[str | None] = None

    def __init__(self, problem: str, source: str | None = None, hint: str | None = None) -> None:
        self.source = source or type(self).__name__
        self.reason = f"{self.source}: {problem}".rstrip(": ")
        super().__init__(self.reason, hint or self.default_hint)


class VenueNotProcessedError(VenueError):
    default_hint = "nothing was done: send again (check the clock if timestamps keep being refused)"


class VenueRateLimitedError(VenueNotProcessedError):
    default_hint = "wait and try again; lower XRAY_RUNTIME_WEIGHT_LIMIT_IP / _KEY if it keeps happening"


class VenueBannedError(VenueError):
    """The venue answered 418: `scope` ("ip" or "key") is banned for `retry_after_s` (None: it did
    not say). Whether the request that met the ban was processed is not known."""

    default_hint = "send nothing on this IP address (or key) until the ban lifts, then slow down"

    def __init__(self, problem: str, source: str | None = None, hint: str | None = None, *,
                 scope: str = "ip", retry_after_s: float | None = None) -> None:
        super().__init__(problem, source, hint)
        self.scope = scope
        self.retry_after_s = retry_after_s


class VenueAuthError(VenueError):
    default_hint = "enter a working API key with spot trading enabled"


class VenueRejectedError(VenueError):
    default_hint: ClassVar[str | None] = "the request cannot succeed as sent: check funds, symbol and size"


class VenueOrderNotFoundError(VenueRejectedError):
    default_hint = None


class VenueDuplicateOrderError(VenueRejectedError):
    default_hint = "an order with this client order id exists: look it up instead of placing another"


class VenueUnavailableError(VenueError):
    default_hint = "the request may or may not have been processed: ask the venue by client order id"


class MalformedReportError(VenueError):
    default_hint = ("the venue's answer lacks what X-Ray needs (its API or ccxt may have changed): "
                    "report it with the venue's name")


@runtime_checkable
class VenueClient(Protocol):
    """One account on one venue. Every method raises only `VenueError`s for what the venue did."""

    @property
    def traits(self) -> VenueTraits: ...

    @property
    def request_ttl_ms(self) -> int:
        """How long after it was signed a request of this client can still act at the venue (its
        recvWindow; 0 for a venue inside this process, where nothing is held on the way)."""
        ...

    async def markets(self) -> Mapping[str, MarketReport]:
        """The venue's listings by unified symbol."""
        ...

    async def create_order(self, symbol: str, side: Side, amount: float, client_order_id: str, *,
                           limit_price: float | None = None, sign_by_ms: int | None = None) -> OrderReport:
        """Place a market order (a limit order at `limit_price` when given) under `client_order_id`.
        The acknowledgement may carry no state (status SUBMITTED, nothing filled). With `sign_by_ms`
        (wall-clock ms), a request that could not be signed by then (it waited for a rate limit) is
        not sent: VenueNotProcessedError."""
        ...

    async def fetch_order(self, exchange_order_id: str, symbol: str) -> OrderReport: ...

    async def fetch_order_by_client_id(self, client_order_id: str, symbol: str) -> OrderReport:
        """The order placed under `client_order_id`; VenueOrderNotFoundError when there is none."""
        ...

    async def fetch_orders(self, symbol: str, since_ms: int | None = None) -> list[OrderReport]:
        """The account's orders on `symbol` (open and closed) from `since_ms`."""
        ...

    async def fetch_open_orders(self, symbol: str) -> list[OrderReport]: ...

    async def cancel_order(self, exchange_order_id: str, symbol: str) -> OrderReport:
        """Cancel one order; VenueOrderNotFoundError when the venue has no such (open) order."""
        ...

    async def fetch_my_trades(self, symbol: str, since_ms: int | None) -> list[FillReport]:
        """Every trade of the account on `symbol` from `since_ms` (inclusive), page by page, each
        once; with `since_ms` None, the latest page only."""
        ...

    async def fetch_order_trades(self, symbol: str, exchange_order_id: str) -> list[FillReport]:
        """The trades of one order."""
        ...

    async def fetch_balance(self) -> BalanceReport: ...
