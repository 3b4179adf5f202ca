"""Shared fixtures: a loopback MEXC emulator and stock ccxt clients pointed at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import ccxt
import pytest
import requests

from xray_core.exchange.urls import rebase_api_urls
from xray_sim.exchange.config import ApiCredential, EmulatorConfig
from xray_sim.exchange.server import RunningEmulator, start_emulator

API_KEY = "mx0vtestkey0000000001"
API_SECRET = "0123456789abcdef0123456789abcdef"


def emulator_config(**overrides: Any) -> EmulatorConfig:
    """The test emulator: a free port, a known key, long history, and weight limits high enough
    that only the tests about rate limits meet them."""
    settings: dict[str, Any] = {
        "port": 0, "seed": 7, "history_days": 180,
        "credentials": (ApiCredential(key=API_KEY, secret=API_SECRET),),
        "starting_funds": {"USDT": "100000"}, "weight_limit": 1_000_000,
    }
    return EmulatorConfig(**(settings | overrides))


def mexc_client(base_url: str, api_key: str | None = API_KEY, secret: str | None = API_SECRET,
                **options: Any) -> ccxt.mexc:
    """A stock ccxt.mexc whose API hosts point at `base_url`; nothing else is changed except that
    ccxt's client-side throttle is off (the emulator's own limits are tested separately)."""
    config: dict[str, Any] = {"enableRateLimit": False, **options}
    if api_key is not None:
        config |= {"apiKey": api_key, "secret": secret}
    exchange = ccxt.mexc(config)
    exchange.urls["api"] = rebase_api_urls(exchange.urls["api"], base_url, "mexc")
    return exchange


class Admin:
    """The emulator's admin API (/_emulator/...) over HTTP."""

    def __init__(self, base_url: str) -> None:
        self.url = base_url + "/_emulator"

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = requests.request(method, self.url + path, json=body, timeout=30)
        response.raise_for_status()
        return response.json()

    def create_account(self, funds: dict[str, str] | None = None) -> tuple[str, str]:
        created = self._call("POST", "/accounts", {} if funds is None else {"funds": funds})
        account = created["accounts"][0]
        return account["key"], account["secret"]

    def account(self, key: str) -> dict[str, Any]:
        return self._call("GET", f"/accounts/{key}")

    def transfer(self, key: str, asset: str, amount: str) -> dict[str, Any]:
        """Deposit (`amount` > 0) or withdraw (`amount` < 0, e.g. "-500") for account `key`."""
        path = "withdraw" if amount.startswith("-") else "deposit"
        return self._call("POST", f"/accounts/{key}/{path}", {"asset": asset, "amount": amount.lstrip("-")})

    def set_faults(self, spec: str) -> dict[str, Any]:
        return self._call("POST", "/faults", {"spec": spec})

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "/stats")

    def advance(self, ms: int) -> int:
        return self._call("POST", "/clock/advance", {"ms": ms})["now_ms"]


@pytest.fixture
def emulator() -> Iterator[RunningEmulator]:
    """An emulator on a free port with API key `API_KEY` (secret `API_SECRET`, 100,000 USDT)."""
    with start_emulator(emulator_config()) as running:
        yield running


# The synthetic market's path depends on where its clock starts: a fixed start makes every run of the
# runtime's service tests see the same bars (the runtime runs on the exchange's clock, so a past date
# is fine; wall-clock checks such as signatures are unaffected).
MARKET_START_MS = 1_780_000_000_000  # 2026-05-28


@pytest.fixture
def fixed_emulator() -> Iterator[RunningEmulator]:
    """An emulator like `emulator` whose market clock starts at MARKET_START_MS (deterministic bars)."""
    with start_emulator(emulator_config(start_ms=MARKET_START_MS)) as running:
        yield running


@pytest.fixture
def fixed_admin(fixed_emulator: RunningEmulator) -> Admin:
    return Admin(fixed_emulator.base_url)


@pytest.fixture
def start_custom_emulator() -> Iterator[Callable[..., RunningEmulator]]:
    """Start emulators with other settings (e.g. a small weight limit); all stop after the test."""
    started: list[RunningEmulator] = []

    def start(**overrides: Any) -> RunningEmulator:
        running = start_emulator(emulator_config(**overrides))
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


@pytest.fixture
def make_mexc(emulator: RunningEmulator) -> Callable[..., ccxt.mexc]:
    """Build stock ccxt.mexc clients for the `emulator` (default: the known API key)."""

    def make(api_key: str | None = API_KEY, secret: str | None = API_SECRET, **options: Any) -> ccxt.mexc:
        return mexc_client(emulator.base_url, api_key, secret, **options)

    return make


@pytest.fixture
def mexc(make_mexc: Callable[..., ccxt.mexc]) -> ccxt.mexc:
    """A stock ccxt.mexc client with the known API key, markets loaded."""
    exchange = make_mexc()
    exchange.load_markets()
    return exchange


@pytest.fixture
def admin(emulator: RunningEmulator) -> Admin:
    return Admin(emulator.base_url)


@pytest.fixture
def mexc_at() -> Callable[..., ccxt.mexc]:
    """`mexc_client` for emulators started by `start_custom_emulator`: mexc_at(base_url, ...)."""
    return mexc_client


@pytest.fixture
def admin_at() -> Callable[[str], Admin]:
    """The admin API of any emulator: admin_at(base_url)."""
    return Admin


@pytest.fixture
def api_credentials() -> tuple[str, str]:
    """The key and secret every `emulator` knows."""
    return API_KEY, API_SECRET
