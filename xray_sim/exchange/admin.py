"""The emulator's own API under /_emulator/ (not MEXC's): for tests, load tests and reconciliation.

    POST /_emulator/accounts          create API keys with funds:
                                      {"key": k, "secret": s, "funds": {"USDT": "1000"}}
                                      or {"accounts": [{...}, ...]} (keys/secrets generated when left out)
                                      or {"count": 10000, "funds": {...}} (all generated)
                                      -> {"accounts": [{"key": ..., "secret": ...}, ...]}
    GET  /_emulator/accounts/{key}    the exchange's truth for one key: balances, orders, trades,
                                      transfers
    POST /_emulator/accounts/{key}/deposit   {"asset": "USDT", "amount": "500"}: money comes in
    POST /_emulator/accounts/{key}/withdraw  {"asset": "USDT", "amount": "500"}: money goes out of
                                      the free balance (400 when it is not free)
                                      -> {"id": ..., "asset": ..., "amount": ..., "time": ...}
    GET  /_emulator/faults            the fault spec in force, its rules and how often each kind fired
    POST /_emulator/faults            {"spec": "..."} replaces the spec; "" clears every fault
    GET  /_emulator/stats             requests, 429s answered per scope, orders, fills, faults fired
    GET  /_emulator/clock             market time
    POST /_emulator/clock/advance     {"ms": 60000} moves the market clock forward (at most
                                      MAX_ADVANCE_MS past its start in all: the market is synthesised
                                      bar by bar from the start, so a jump of centuries would make
                                      every market request compute for minutes)

Errors are `{"error": "..."}` with status 400 (bad input), 401/403 (not allowed), 404 (unknown key)
or 409 (key taken).

Who may call it: with an admin token configured (`--admin-token`, `EmulatorConfig.admin_token`),
whoever sends it in the `X-Emulator-Token` header; without one, loopback clients only (the tests and
the load test, which run the emulator on 127.0.0.1). The admin API creates funded accounts and moves
the market clock: on an emulator listening beyond loopback, nobody else may.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Mapping
from decimal import Decimal

from aiohttp import web
from aiohttp.typedefs import Handler

from xray_core.errors import ConfigError
from xray_sim.exchange import shapes, transfers
from xray_sim.exchange.accounts import (
    Account,
    InsufficientBalanceError,
    NewAccount,
    new_credentials,
    parse_funds,
)
from xray_sim.exchange.decimals import fmt_decimal, parse_decimal
from xray_sim.exchange.dispatch import STATE, json_response
from xray_sim.exchange.faults import parse_fault_spec

PREFIX = "/_emulator"
MAX_ACCOUNTS_PER_REQUEST = 100_000
MAX_ADVANCE_MS = 5 * 366 * 86_400_000  # five years of market time past the clock's start
TOKEN_HEADER = "X-Emulator-Token"


class _BadRequestError(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def add_admin_routes(app: web.Application) -> None:
    app.router.add_post(f"{PREFIX}/accounts", create_accounts)
    app.router.add_get(f"{PREFIX}/accounts/{{key}}", get_account)
    app.router.add_post(f"{PREFIX}/accounts/{{key}}/deposit", deposit)
    app.router.add_post(f"{PREFIX}/accounts/{{key}}/withdraw", withdraw)
    app.router.add_get(f"{PREFIX}/faults", get_faults)
    app.router.add_post(f"{PREFIX}/faults", set_faults)
    app.router.add_get(f"{PREFIX}/stats", get_stats)
    app.router.add_get(f"{PREFIX}/clock", get_clock)
    app.router.add_post(f"{PREFIX}/clock/advance", advance_clock)


@web.middleware
async def admin_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        if request.path.startswith(PREFIX):
            _allowed(request)
        return await handler(request)
    except _BadRequestError as error:
        return json_response({"error": str(error)}, status=error.status)


def _allowed(request: web.Request) -> None:
    """Raise 401/403 unless the caller may use the admin API (see the module docstring)."""
    token = request.app[STATE].config.admin_token
    if token is not None:
        sent = request.headers.get(TOKEN_HEADER, "")
        if not hmac.compare_digest(sent.encode(), token.get_secret_value().encode()):
            raise _BadRequestError(f"the admin API needs the emulator's admin token in {TOKEN_HEADER}", 401)
        return
    if not _is_loopback(request.remote):
        raise _BadRequestError("the admin API answers loopback clients only; start the emulator with "
                               "--admin-token to reach it from elsewhere", 403)


def _is_loopback(remote: str | None) -> bool:
    try:
        return remote is not None and ipaddress.ip_address(remote.split("%")[0]).is_loopback
    except ValueError:  # not an IP address (a unix socket): not a loopback peer we can vouch for
        return False


async def _json_body(request: web.Request) -> dict[str, object]:
    try:
        body = await request.json() if request.body_exists else {}
    except ValueError:
        raise _BadRequestError("the body is not JSON") from None
    if not isinstance(body, dict):
        raise _BadRequestError("the body must be a JSON object")
    return body


def _funds(value: object) -> dict[str, Decimal] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise _BadRequestError("funds must be an object like {\"USDT\": \"1000\"}")
    try:
        return parse_funds(value)
    except ValueError as error:
        raise _BadRequestError(str(error)) from None


def _new_accounts(body: Mapping[str, object]) -> list[NewAccount]:
    """The accounts a POST /accounts body asks for (see the module docstring for its three forms)."""
    default_funds = _funds(body.get("funds"))
    if "count" in body:
        count = body["count"]
        if not isinstance(count, int) or isinstance(count, bool) or not 0 < count <= MAX_ACCOUNTS_PER_REQUEST:
            raise _BadRequestError(f"count must be an integer in 1..{MAX_ACCOUNTS_PER_REQUEST}")
        return [(*new_credentials(), default_funds) for _ in range(count)]
    entries = body.get("accounts", [body])
    if not isinstance(entries, list) or len(entries) > MAX_ACCOUNTS_PER_REQUEST:
        raise _BadRequestError(f"accounts must be a list of at most {MAX_ACCOUNTS_PER_REQUEST} objects")
    accounts: list[NewAccount] = []
    for entry in entries:
        if not isinstance(entry, Mapping):
            raise _BadRequestError("each account must be an object")
        key, secret = new_credentials()
        key, secret = str(entry.get("key") or key), str(entry.get("secret") or secret)
        funds = _funds(entry.get("funds"))
        accounts.append((key, secret, funds if funds is not None else default_funds))
    return accounts


async def create_accounts(request: web.Request) -> web.Response:
    state = request.app[STATE]
    accounts = _new_accounts(await _json_body(request))
    try:
        created = state.accounts.register_many(accounts)
    except ValueError as error:
        raise _BadRequestError(str(error), status=409) from None
    return json_response({"accounts": [{"key": a.key, "secret": a.secret} for a in created]})


async def get_account(request: web.Request) -> web.Response:
    state = request.app[STATE]
    key = request.match_info["key"]
    account = state.accounts.get(key)
    if account is None:
        raise _BadRequestError(f"no account with key {key!r}", status=404)
    state.engine.evaluate(state.now_ms(), key=key)  # the truth as of now, resting orders matched
    return json_response({
        "key": key,
        "balances": {asset: {"free": fmt_decimal(held.free), "locked": fmt_decimal(held.locked)}
                     for asset, held in sorted(account.balances.items())},
        "orders": [shapes.order(order) for order in state.engine.orders(key)],
        "trades": [shapes.my_trade(fill) for fill in state.engine.fills(key)],
        "transfers": [_transfer(t) for t in account.transfers],
    })


def _transfer(transfer: transfers.SimTransfer) -> dict[str, object]:
    sign = "" if transfer.deposit else "-"
    return {"id": transfer.id, "asset": transfer.asset, "amount": sign + fmt_decimal(transfer.amount),
            "time": transfer.time_ms}


async def _move(request: web.Request, deposits: bool) -> web.Response:
    state = request.app[STATE]
    key = request.match_info["key"]
    account: Account | None = state.accounts.get(key)
    if account is None:
        raise _BadRequestError(f"no account with key {key!r}", status=404)
    body = await _json_body(request)
    asset, amount = body.get("asset"), parse_decimal(str(body.get("amount")))
    if not isinstance(asset, str) or not asset.isalnum() or len(asset) > 20:
        raise _BadRequestError("asset must be a currency code like \"USDT\"")
    if amount is None or not amount.is_finite() or amount <= 0 or amount.adjusted() > 15:
        raise _BadRequestError("amount must be a positive decimal string like \"500\" (under 1e15)")
    state.engine.evaluate(state.now_ms(), key=key)  # resting orders matched before money moves
    move = transfers.deposit if deposits else transfers.withdraw
    try:
        done = move(account, asset.upper(), amount, state.now_ms())
    except InsufficientBalanceError as error:
        raise _BadRequestError(f"cannot withdraw: {error}") from None
    return json_response(_transfer(done))


async def deposit(request: web.Request) -> web.Response:
    return await _move(request, deposits=True)


async def withdraw(request: web.Request) -> web.Response:
    return await _move(request, deposits=False)


async def get_faults(request: web.Request) -> web.Response:
    return json_response(request.app[STATE].faults.describe())


async def set_faults(request: web.Request) -> web.Response:
    state = request.app[STATE]
    spec = (await _json_body(request)).get("spec") or ""
    if not isinstance(spec, str):
        raise _BadRequestError("spec must be a string")
    try:
        state.faults.replace(parse_fault_spec(spec))
    except ConfigError as error:
        raise _BadRequestError(str(error)) from None
    return json_response(state.faults.describe())


async def get_stats(request: web.Request) -> web.Response:
    return json_response(request.app[STATE].snapshot())


async def get_clock(request: web.Request) -> web.Response:
    state = request.app[STATE]
    clock = state.clock
    return json_response({"now_ms": clock.now_ms(), "wall_ms": clock.wall_ms(), "speed": clock.speed})


async def advance_clock(request: web.Request) -> web.Response:
    state = request.app[STATE]
    ms = (await _json_body(request)).get("ms")
    if not isinstance(ms, int) or isinstance(ms, bool) or ms < 0:
        raise _BadRequestError("ms must be a non-negative integer")
    if state.clock.advanced_ms + ms > MAX_ADVANCE_MS:
        raise _BadRequestError(
            f"ms {ms} would move the market clock {state.clock.advanced_ms + ms} ms past its start, more "
            f"than {MAX_ADVANCE_MS} (five years); start the emulator at a later --start-ms instead")
    state.clock.advance(ms)
    return json_response({"now_ms": state.now_ms()})
