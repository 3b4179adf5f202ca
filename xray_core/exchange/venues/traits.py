"""What sets one venue apart from another, as one frozen value per exchange.

The order path is written once against `xray_core.exchange.protocol.VenueClient`; whatever a venue
does differently (how long a client order id may be, which error code means "no such order", how
many trades one page holds, how its rate limits are counted) is a field here, read where it
matters. A venue without an entry in the registry gets `GENERIC`: values chosen so that not knowing
the venue costs speed, never money (see each field).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ScopeKind = Literal["ip", "key"]
SCOPE_KINDS: tuple[ScopeKind, ...] = ("ip", "key")


@dataclass(frozen=True, slots=True)
class RateLimits:
    """How a venue counts request weight: `ip_weight` / `key_weight` per `window_s` per IP address
    and per API key; which of those two a private (signed) and a public request is charged to; and
    the weight of endpoints whose ccxt cost is below the venue's when called for the whole market."""

    window_s: float
    ip_weight: int
    key_weight: int
    private_scopes: tuple[ScopeKind, ...]
    public_scopes: tuple[ScopeKind, ...]
    # (endpoint path, weight) for calls without a symbol; a tuple of pairs keeps the value hashable.
    whole_market_weights: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        if self.window_s <= 0 or self.ip_weight < 1 or self.key_weight < 1:
            raise ValueError(f"rate limits need a positive window and weights, not {self}")
        for scopes in (self.private_scopes, self.public_scopes):
            if not scopes or any(kind not in SCOPE_KINDS for kind in scopes):
                raise ValueError(f"scopes must be a non-empty subset of {SCOPE_KINDS}, not {scopes}")

    def whole_market_weight(self, path: str) -> float | None:
        """The venue's weight for `path` called without a symbol, where ccxt's cost is lower."""
        return dict(self.whole_market_weights).get(path)


@dataclass(frozen=True, slots=True)
class VenueTraits:
    """One exchange's quirks that the order path and the rate limiter act on."""

    exchange_id: str  # the ccxt id
    # Longest client order id the venue accepts; an id longer than this is never sent.
    max_client_order_id_length: int
    # Whether the venue answers a second order with an id it already has by returning (or refusing)
    # it instead of placing another. Only then is an order whose first send was ambiguous and which
    # the venue says it does not have sent again with the same id: without it, a lagging read would
    # double the order, so it is left to reconciliation.
    deduplicates_client_order_ids: bool
    # Error codes (as they appear in ccxt's message) with which the venue says "no such order" to a
    # query or a cancel, where ccxt raises a plain ExchangeError or BadRequest, not OrderNotFound.
    no_such_order_codes: tuple[str, ...]
    # Most trades one trade-history request returns. The sweep pages on while pages come back full,
    # so a value above the venue's real maximum would end the sweep after its first page.
    trades_page_limit: int
    # Request parameter that filters the trade history by exchange order id (None: the venue has
    # none, and an order's trades are picked from the latest page of the symbol's trades).
    trades_order_filter_param: str | None
    # Longest time a signed request stays valid after it was signed (the venue's largest recvWindow):
    # a request held somewhere cannot create an order after that.
    max_recv_window_ms: int
    # API hosts whose scheme and host `rebase_api_urls` replaces (empty: every absolute URL's).
    api_hosts: tuple[str, ...]
    rate_limits: RateLimits
    # Host names of the venue's own sandbox / testnet (play money), where a paper user may be sent
    # besides loopback (`xray_core.exchange.routing`). Never one of `api_hosts`: those trade real money.
    sandbox_hosts: tuple[str, ...] = ()
    # Error codes (the JSON "code") with which the venue refuses a new order because its client order
    # id is taken: an order under that id exists, and is looked up instead of given up.
    duplicate_order_codes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.exchange_id:
            raise ValueError("venue traits need an exchange id")
        if self.max_client_order_id_length < 1 or self.trades_page_limit < 1 or self.max_recv_window_ms < 1:
            raise ValueError(f"venue traits of {self.exchange_id!r} need positive limits")
        live = {host.split("://", 1)[-1].split("/", 1)[0].lower() for host in self.api_hosts}
        if live & {host.lower() for host in self.sandbox_hosts}:
            raise ValueError(f"{self.exchange_id!r}: a live API host cannot be a sandbox host")


# Not knowing a venue costs speed, never money: ids no longer than ours (32), no resend after an
# ambiguous answer, small trade pages, a long wait before an order that never arrived is given up,
# and private requests charged to both the key and the IP.
GENERIC = VenueTraits(
    exchange_id="generic",
    max_client_order_id_length=32,
    deduplicates_client_order_ids=False,
    no_such_order_codes=(),
    trades_page_limit=50,
    trades_order_filter_param=None,
    max_recv_window_ms=300_000,
    api_hosts=(),
    rate_limits=RateLimits(window_s=10.0, ip_weight=500, key_weight=500,
                           private_scopes=("ip", "key"), public_scopes=("ip",)),
)
