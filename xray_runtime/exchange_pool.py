"""Async ccxt clients for thousands of API keys: cheap to create, few sockets, one markets table.

* `venue(account)` is the account's `VenueClient` (a `CcxtVenueClient` over its ccxt client, with
  the venue's traits): what the executor and reconciliation use. `client(account)` is the bare
  ccxt client under it.
* One client per (exchange, base URL, API key + secret), created on first use and kept in an LRU of
  at most `max_clients`. A client owns no socket, so evicting one just drops it.
* Every client shares ONE aiohttp session (so one connection pool to the exchange): ccxt uses an
  external `session` when its config names one and then never closes it (`own_session` is False).
* Markets are loaded once per (exchange, base URL) into a template client, and parsed once into
  `MarketReport`s; `refresh_markets` loads them again (the service does, every `markets_refresh_s`).
  A per-key client is a shallow copy of the template with the per-key fields
  replaced, which shares the (read-only) markets tables instead of rebuilding them: constructing
  ccxt.mexc and setting its markets costs about 2 ms (the full MEXC listing makes `set_markets` far
  dearer), the copy about 0.05 ms.
* `throttle_factory`, when given, replaces each client's `throttle` (ccxt awaits `throttle(cost)`
  before every request while `enableRateLimit` is on): the shared Redis limiter plugs in there.
  Without it each client keeps ccxt's own per-instance throttle.
* 429s (ccxt RateLimitExceeded / DDoSProtection) are counted in `stats.rate_limited`.

Where an account may trade is checked here, where its client is built (`xray_core.exchange.routing`),
and refused with the reason (`VenueRouteError`) before anything is sent: a paper account without a
URL gets the built-in paper broker (`paper`), one with a URL only a loopback or sandbox host; a live
account needs an explicit URL. Every HTTP request of a paper account's ccxt client is checked again
against the one host it may reach (`fetch`), so a URL ccxt builds that the rebasing missed cannot
carry its signature to a live host.

Secrets are unwrapped only when a client is built; `ExchangeAccount` prints no secret.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import ccxt
import ccxt.async_support as ccxt_async
from ccxt.async_support.base.throttler import Throttler
from pydantic import SecretStr

from xray_core.errors import ConfigError
from xray_core.exchange.ccxt_venue import CcxtVenueClient, check_sign_deadline, raise_on_ban
from xray_core.exchange.protocol import VenueClient
from xray_core.exchange.reports import MarketReport
from xray_core.exchange.routing import VenueRouteError, check_live_url, check_paper_url
from xray_core.exchange.urls import rebase_api_urls
from xray_core.exchange.venues import VenueTraits, is_known, traits_for

Throttle = Callable[[float], Awaitable[None]]
ThrottleFactory = Callable[["ExchangeAccount"], Throttle]
PaperBroker = Callable[["ExchangeAccount"], Awaitable[VenueClient]]
ClientKey = tuple[str, str | None, str, bool]
Where = tuple[str, str | None]  # (exchange id, base URL)

log = logging.getLogger(__name__)

# Per-instance caches ccxt fills while it works; a copy must not share them with the template.
_CACHE_DICTS = ("balance", "orderbooks", "tickers", "bidsasks", "trades", "transactions", "ohlcvs",
                "fundingRates")
_CACHE_NONES = ("myTrades", "orders", "positions", "last_http_response", "last_json_response",
                "last_response_headers", "last_request_headers", "last_request_body", "last_request_url")


@dataclass(frozen=True, slots=True)
class ExchangeAccount:
    """One user's API key on one exchange. `fingerprint` (the key's sha256, 8 hex digits) names the
    key in logs and errors without revealing it. An account is paper unless `live` says otherwise;
    a paper account's `base_url` None means the built-in paper broker, a live one's is required."""

    user_id: str
    exchange_id: str
    base_url: str | None
    api_key: SecretStr
    api_secret: SecretStr
    live: bool = False
    fingerprint: str = field(init=False)

    def __post_init__(self) -> None:
        key = self.api_key.get_secret_value()
        digest = hashlib.sha256(key.encode()).hexdigest()[:8] if key else "none"  # a keyless paper user
        object.__setattr__(self, "fingerprint", digest)

    @classmethod
    def of(cls, user_id: str, exchange_id: str, base_url: str | None, api_key: str | SecretStr,
           api_secret: str | SecretStr, *, live: bool = False) -> ExchangeAccount:
        key = SecretStr(api_key) if isinstance(api_key, str) else api_key
        secret = SecretStr(api_secret) if isinstance(api_secret, str) else api_secret
        return cls(user_id, exchange_id, base_url, key, secret, live)

    @property
    def client_key(self) -> ClientKey:
        # A digest of key and secret: a rotated secret gets a new client, and no raw secret is a key.
        # On the paper broker the account is the user (keyless users share the empty key).
        if self.paper_broker:
            return self.exchange_id, None, f"paper:{self.user_id}", False
        both = f"{self.api_key.get_secret_value()}\0{self.api_secret.get_secret_value()}"
        return self.exchange_id, self.base_url, hashlib.sha256(both.encode()).hexdigest(), self.live

    @property
    def paper_broker(self) -> bool:
        """Whether the account trades on the built-in paper broker (paper, and no URL)."""
        return not self.live and self.base_url is None

    def describe(self) -> str:
        return f"user {self.user_id} ({'live' if self.live else 'paper'}, key {self.fingerprint})"


@dataclass
class PoolStats:
    created: int = 0
    evicted: int = 0
    rate_limited: int = 0  # 429s (RateLimitExceeded / DDoSProtection) any client of the pool met
    ip_banned: int = 0  # 418s: the venue banned the IP (MEXC, after 429s were ignored)
    markets_loaded: int = 0


_POOLED_CLASSES: dict[str, type] = {}


class RouteRefused(ccxt.PermissionDenied):
    """A paper account's client was about to send a request to a host other than its sandbox. It
    reads as a refused key (`VenueAuthError`): the user stops trading until a person looks."""


def _pooled_class(exchange_id: str) -> type:
    """A subclass of ccxt's async exchange class whose `fetch` counts the 429s it raises."""
    cls = _POOLED_CLASSES.get(exchange_id)
    if cls is not None:
        return cls
    if exchange_id not in ccxt_async.exchanges:
        raise ConfigError(f"unknown exchange id {exchange_id!r}", "use a ccxt exchange id such as mexc")
    base = getattr(ccxt_async, exchange_id)

    async def fetch(self: Any, url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        allowed = self.xray_only_host
        if allowed is not None and (urlsplit(url).hostname or "").lower() != allowed:
            raise RouteRefused(f"{self.id} {method}: a paper account's request to "
                               f"{urlsplit(url).hostname!r} was refused (it may only reach {allowed})")
        try:
            return await base.fetch(self, url, method, headers, body)
        except (ccxt.RateLimitExceeded, ccxt.DDoSProtection) as error:
            if self.xray_stats is not None:
                self.xray_stats.rate_limited += 1
            refused = getattr(self.throttle, "refused", None)  # the shared limiter's (ratelimit.py)
            if refused is not None:  # pause the scope for every process: Retry-After, or a default
                await refused(error, self.last_response_headers)
            raise

    def handle_errors(self: Any, code: int, reason: str, url: str, method: str, headers: Any, body: Any,
                      response: Any, request_headers: Any, request_body: Any) -> Any:
        # Every answer passes here with its HTTP status: a 418 is counted (metrics) apart from 429s.
        if code == 418 and self.xray_stats is not None:
            self.xray_stats.ip_banned += 1
        raise_on_ban(self.id, code, method, headers)  # an HTTP 418 is a ban, whatever the body says
        return base.handle_errors(self, code, reason, url, method, headers, body, response, request_headers,
                                  request_body)

    def quiet_del(self: Any) -> None:
        """ccxt warns when a client with a session is collected unclosed; ours share the pool's
        session, which the pool closes, so dropping a client is how it is released."""

    members = {"fetch": fetch, "handle_errors": handle_errors, "__del__": quiet_del, "xray_stats": None,
               "xray_only_host": None}
    cls = type(f"Pooled_{exchange_id}", (base,), members)
    _POOLED_CLASSES[exchange_id] = cls
    return cls


class ExchangePool:
    """Lazily created, LRU-capped async ccxt clients sharing one HTTP session and markets tables.
    `traits` looks up each exchange's `VenueTraits` (tests substitute other venues' behaviour);
    `paper` makes the built-in paper broker's client of an account (None: paper accounts without a
    sandbox URL are refused)."""

    def __init__(self, *, max_clients: int = 2000, timeout_ms: int = 10_000,
                 throttle_factory: ThrottleFactory | None = None, connection_limit: int = 256,
                 options: dict[str, Any] | None = None,
                 traits: Callable[[str], VenueTraits] = traits_for, paper: PaperBroker | None = None) -> None:
        if max_clients < 1:
            raise ValueError("max_clients must be at least 1")
        self.max_clients = max_clients
        self.timeout_ms = timeout_ms
        self.throttle_factory = throttle_factory
        self.connection_limit = connection_limit
        self.options = dict(options or {})
        self.traits = traits
        self.paper = paper
        self.stats = PoolStats()
        self._session: aiohttp.ClientSession | None = None
        self._clients: OrderedDict[ClientKey, VenueClient] = OrderedDict()
        self._templates: dict[Where, CcxtVenueClient] = {}
        self._template_locks: dict[Where, asyncio.Lock] = {}

    def __len__(self) -> int:
        return len(self._clients)

    async def venue(self, account: ExchangeAccount) -> VenueClient:
        """The account's venue client, created on first use; VenueRouteError (nothing created, nothing
        sent) when the account may not trade where it points."""
        key = account.client_key
        venue = self._clients.get(key)
        if venue is not None:
            self._clients.move_to_end(key)
            return venue
        only_host = self._route(account)
        if account.paper_broker:
            assert self.paper is not None  # _route refuses otherwise
            made = await self.paper(account)
        else:
            template = await self._template(account.exchange_id, account.base_url)
            markets = await template.markets()  # parsed once per template, shared by its clones
            made = CcxtVenueClient(self._clone(template.exchange, account, only_host), template.traits,
                                   markets)
        venue = self._clients.get(key)  # another task may have made it while we awaited
        if venue is None:
            venue = self._clients[key] = made
            self.stats.created += 1
            self._evict_over_cap()
        return venue

    async def client(self, account: ExchangeAccount) -> ccxt_async.Exchange:
        """The account's bare ccxt client (the one under `venue(account)`; not for paper-broker ones)."""
        venue = await self.venue(account)
        if not isinstance(venue, CcxtVenueClient):
            raise TypeError(f"{account.describe()} trades on the paper broker, which has no ccxt client")
        return venue.exchange

    def _route(self, account: ExchangeAccount) -> str | None:
        """Check where `account` may trade; returns the one host a paper account's client may reach
        (None: a live account, or the paper broker)."""
        who = account.describe()
        if account.live:
            check_live_url(account.base_url, who)
            return None
        if account.base_url is None:
            if self.paper is None:
                raise VenueRouteError(f"{who}: no paper broker in this process and no sandbox URL",
                                      "unset XRAY_RUNTIME_PAPER_URL, or set it to the emulator")
            return None
        return check_paper_url(account.base_url, self.traits(account.exchange_id), who)

    async def markets(self, exchange_id: str, base_url: str | None) -> Mapping[str, MarketReport]:
        """The listings every client of (exchange, base URL) shares."""
        return await (await self._template(exchange_id, base_url)).markets()

    async def refresh_markets(self) -> None:
        """Load every venue's markets again (new listings, changed precisions and minimums): a fresh
        template replaces each one once it loaded, and the clients made from the old one are dropped
        (made again on next use; a request in flight on one finishes). A venue that cannot be reached
        keeps its old markets."""
        for where, old in list(self._templates.items()):
            try:
                fresh = await self._new_template(*where)
            except ccxt.BaseError as error:
                log.warning("markets of %s not reloaded: %s", where[0], type(error).__name__)
                continue
            await fresh.markets()  # parsed before it serves, as the old one was
            self._templates[where] = fresh
            for key in [k for k in self._clients if k[:2] == where]:
                del self._clients[key]
            del old  # owns no socket: the session is the pool's

    def evict(self, account: ExchangeAccount) -> None:
        """Forget the account's client, e.g. after its key was rejected or rotated."""
        if self._clients.pop(account.client_key, None) is not None:
            self.stats.evicted += 1

    async def close(self) -> None:
        """Close every client, then the shared session."""
        venues = [*self._clients.values(), *self._templates.values()]
        self._clients.clear()
        self._templates.clear()
        for venue in venues:
            if isinstance(venue, CcxtVenueClient):
                await venue.exchange.close()
        if self._session is not None:
            await self._session.close()
            self._session = None

    # ---- internals ---------------------------------------------------------------------------------
    def _shared_session(self) -> aiohttp.ClientSession:
        if self._session is None:  # created on first use: aiohttp wants a running event loop
            connector = aiohttp.TCPConnector(limit=self.connection_limit, enable_cleanup_closed=True)
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    async def _template(self, exchange_id: str, base_url: str | None) -> CcxtVenueClient:
        where = (exchange_id, base_url)
        template = self._templates.get(where)
        if template is not None:
            return template
        lock = self._template_locks.setdefault(where, asyncio.Lock())
        async with lock:  # one markets load per (exchange, base URL), however many callers wait
            template = self._templates.get(where)
            if template is None:
                template = await self._new_template(exchange_id, base_url)
                self._templates[where] = template
        return template

    async def _new_template(self, exchange_id: str, base_url: str | None) -> CcxtVenueClient:
        config = {"enableRateLimit": True, "timeout": self.timeout_ms, "session": self._shared_session(),
                  **self.options}
        template = _pooled_class(exchange_id)(config)
        template.timeout_on_exit = 0  # ccxt sleeps this long in close(); our clients own no socket
        template.xray_stats = self.stats
        if base_url:
            template.urls["api"] = rebase_api_urls(template.urls["api"], base_url, exchange_id)
        # The markets load is two requests once per process; ccxt's client-side throttle would hold
        # the second back for over a second (exchangeInfo weighs 25 at MEXC's 50 ms per unit).
        template.enableRateLimit = False
        try:
            await template.load_markets()
        except BaseException:
            await template.close()
            raise
        template.enableRateLimit = True
        self.stats.markets_loaded += 1
        if not is_known(exchange_id):
            log.warning("no venue traits for %s: trading it with the cautious generic ones", exchange_id)
        return CcxtVenueClient(template, self.traits(exchange_id))

    def _clone(self, template: ccxt_async.Exchange, account: ExchangeAccount,
               only_host: str | None) -> ccxt_async.Exchange:
        """A client for `account`: the template with its own key, options, caches and throttle; a
        paper account's may reach `only_host` alone."""
        client = copy.copy(template)
        client.xray_only_host = only_host
        client.apiKey = account.api_key.get_secret_value()
        client.secret = account.api_secret.get_secret_value()
        client.options = copy.deepcopy(template.options)  # ccxt writes into options while it works
        client.headers = dict(template.headers)
        for name in _CACHE_DICTS:
            setattr(client, name, {})
        for name in _CACHE_NONES:
            setattr(client, name, None)
        client.lastRestRequestTimestamp = 0
        client.origin = client.uuid()
        client.throttler = Throttler(template.tokenBucket, template.asyncio_loop)
        inner = self.throttle_factory(account) if self.throttle_factory is not None else client.throttle

        async def throttle(cost: Any = None) -> Any:
            await inner(cost)
            check_sign_deadline()  # ccxt signs next: a request that waited past its deadline is not sent

        throttle.refused = getattr(inner, "refused", None)  # type: ignore[attr-defined]  # 429/418 (fetch)
        client.throttle = throttle
        return client

    def _evict_over_cap(self) -> None:
        # A pooled client owns no socket (the session is the pool's), so eviction only drops it; a
        # caller still holding it may finish its requests until the pool closes the session.
        while len(self._clients) > self.max_clients:
            self._clients.popitem(last=False)
            self.stats.evicted += 1
