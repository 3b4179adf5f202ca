"""A paper user can never reach a live venue: whatever the market-data URL, the paper URL and the live URL
are set to, no request signed with a paper user's key leaves for a host that is not loopback. Every HTTP
request of the process is intercepted at aiohttp's session and recorded with the host it was meant for;
a request for any other host is answered by the emulator instead (a fake DNS: api.mexc.com "works", so a
signed request that would have left is seen, not masked by a connection error). The runtime's parts are
built from the settings, and the paper user's orders, lookups and reconciliation run as the service
runs them."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
from typing import Any

import aiohttp
import pytest
from cryptography.fernet import Fernet
from order_path_support import bar_of, intents
from yarl import URL

from xray_core.exchange.protocol import VenueAuthError
from xray_core.exchange.routing import VenueRouteError, is_loopback_host, paper_url_refusal
from xray_core.exchange.venues import MEXC, traits_for
from xray_core.settings import ExchangeSettings
from xray_runtime import db
from xray_runtime.components import Components
from xray_runtime.crypto import KeyVault
from xray_runtime.exchange_pool import ExchangeAccount, ExchangePool
from xray_runtime.settings import RuntimeSettings, TelegramSettings
from xray_runtime.users import UserStore

LIVE = "https://api.mexc.com"
HOSTILE_PAPER_URLS = [LIVE, "https://API.MEXC.COM/", "https://www.mexc.com", "http://10.0.0.7:8765",
                      "http://127.0.0.1.nip.io:8765", "https://testnet.example.com", "ftp://127.0.0.1"]


class Wire:
    """Every request any aiohttp session of this process makes, recorded with its intended URL; those
    for hosts other than loopback are sent to the emulator instead."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, URL, dict[str, str], str]] = []

    def signed_by(self, api_key: str) -> list[tuple[str, URL]]:
        return [(method, url) for method, url, headers, body in self.requests
                if any(v == api_key for v in headers.values()) or api_key in body]

    def signed_off_loopback(self, api_key: str) -> list[tuple[str, URL]]:
        return [(m, url) for m, url in self.signed_by(api_key) if not is_loopback_host(url.host or "")]


@pytest.fixture
def wire(monkeypatch, emulator) -> Wire:
    seen = Wire()
    original = aiohttp.ClientSession._request
    stand_in = URL(emulator.base_url)

    async def rewired(self: aiohttp.ClientSession, method: str, str_or_url: Any, **kwargs: Any) -> Any:
        url = URL(str(str_or_url))
        headers = {str(k): str(v) for k, v in dict(kwargs.get("headers") or {}).items()}
        seen.requests.append((method, url, headers, str(kwargs.get("data") or "")))
        if not is_loopback_host(url.host or ""):
            url = url.with_scheme("http").with_host(stand_in.host or "").with_port(stand_in.port)
        return await original(self, method, url, **kwargs)

    monkeypatch.setattr(aiohttp.ClientSession, "_request", rewired)
    return seen


def test_only_loopback_and_listed_sandboxes_are_paper_venues():
    assert paper_url_refusal("http://127.0.0.1:8765", MEXC) is None
    assert paper_url_refusal("http://localhost:8765", MEXC) is None
    assert paper_url_refusal("http://[::1]:8765", MEXC) is None
    for url in HOSTILE_PAPER_URLS:
        assert paper_url_refusal(url, MEXC) is not None, url
    with_testnet = dataclasses.replace(MEXC, sandbox_hosts=("testnet.example.com",))
    assert paper_url_refusal("https://testnet.example.com", with_testnet) is None
    with pytest.raises(ValueError, match="live API host"):
        dataclasses.replace(MEXC, sandbox_hosts=("api.mexc.com",))


async def test_the_pool_refuses_a_paper_account_on_any_other_host(wire):
    pool = ExchangePool()  # no paper broker in this pool
    try:
        for url in [*HOSTILE_PAPER_URLS, None]:
            with pytest.raises(VenueRouteError):
                await pool.venue(ExchangeAccount.of("pat", "mexc", url, "paper-key", "s"))
        with pytest.raises(VenueRouteError, match="explicitly configured live venue"):
            await pool.venue(ExchangeAccount.of("liv", "mexc", None, "live-key", "s", live=True))
    finally:
        await pool.close()
    assert wire.requests == []  # refused before any client existed


async def test_a_url_the_rebasing_missed_never_carries_a_paper_signature(emulator, admin, wire):
    key, secret = admin.create_account({"USDT": "1000"})
    pool = ExchangePool()
    try:
        venue = await pool.venue(ExchangeAccount.of("sam", "mexc", emulator.base_url, key, secret))
        venue.exchange.urls["api"]["spot"]["private"] = LIVE  # as if ccxt grew a host the traits lack
        with pytest.raises(VenueAuthError, match="paper account's request"):
            await venue.fetch_balance()
    finally:
        await pool.close()
    assert wire.signed_off_loopback(key) == []
    assert wire.signed_by(key) == []  # refused in ccxt's fetch, before aiohttp saw it


MARKET_URLS = ["emulator", None]
PAPER_URLS = [None, "emulator", "localhost", *HOSTILE_PAPER_URLS[:1], "http://10.0.0.7:8765"]
LIVE_URLS = [None, LIVE]


COMBINATIONS = list(itertools.product(MARKET_URLS, PAPER_URLS, LIVE_URLS))


@pytest.mark.parametrize(("market", "paper", "live"), COMBINATIONS)
async def test_no_signed_request_of_a_paper_user_leaves_loopback_whatever_the_settings(
        emulator, admin, wire, tmp_path, market, paper, live):
    def where(url: str | None) -> str | None:
        return {"emulator": emulator.base_url,
                "localhost": emulator.base_url.replace("127.0.0.1", "localhost")}.get(url or "", url)

    settings = RuntimeSettings(database_url=f"sqlite:///{tmp_path / 'rt.db'}", bundle_dir=tmp_path / "b",
                               fernet_key=Fernet.generate_key().decode(), paper_url=where(paper),
                               live_url=live, http_port=0)
    paper_key, paper_secret = admin.create_account({"USDT": "1000"})
    live_key, live_secret = admin.create_account({"USDT": "1000"})
    store = UserStore(db.connect(settings.database_url), KeyVault(settings.fernet_key))
    store.add("pam", "Paper", paper_key, paper_secret)
    store.add("lou", "Live", live_key, live_secret, mode="live", live_opt_in=True)
    parts = Components.build(settings, TelegramSettings(), ExchangeSettings(url=where(market), timeout_s=5))
    try:
        await parts.roster.refresh(force=True)
        refused = {p.user_id: p.reason for p in parts.roster.problems}
        account = parts.roster.accounts.get("pam")
        if paper is None:
            assert account is not None and account.paper_broker
        elif paper in ("emulator", "localhost"):
            assert account is not None and account.base_url == where(paper)
        else:
            assert account is None and "paper trading refused" in refused["pam"]
        assert ("lou" in parts.roster.accounts) == (live is not None)
        placed = {}
        for user_id, user_account in parts.roster.accounts.items():
            with contextlib.suppress(Exception):  # a failure is fine: only where requests went matters
                placed[user_id] = await parts.executor.submit(
                    user_account, intents(user_id, bar_of(emulator), [("BTC/USDT", "buy", 0.001)]))
        if account is not None:  # it traded, on the paper broker or the emulator
            assert [o.status.value for o in placed["pam"]] == ["filled"]
        await parts.reconcile_users(list(parts.roster.accounts))
        # The worst case by hand: a paper account pointed at each hostile URL is refused by the pool.
        for url in HOSTILE_PAPER_URLS:
            with pytest.raises(VenueRouteError):
                await parts.pool.venue(ExchangeAccount.of("pam", "mexc", url, paper_key, paper_secret))
    finally:
        await parts.stop()
    assert wire.signed_off_loopback(paper_key) == []
    if paper is None:  # the built-in broker: the exchange never sees the paper user's key at all
        assert wire.signed_by(paper_key) == []
    if live is not None:  # the control: a live user's signed requests do go to the live host
        assert wire.signed_off_loopback(live_key), "the wire saw no signed request: the test proves nothing"
    assert traits_for("mexc").sandbox_hosts == ()
