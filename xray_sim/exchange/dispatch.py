"""The path of every MEXC request through the server.

    faults (latency; 5xx / 429 burst / drop / delay in place of processing)
    -> endpoint lookup (404 / 405 in MEXC's JSON)
    -> public: weight against the caller's IP | private: signature, then weight against the API key,
       then the caller's resting orders are matched up to now
    -> handler -> JSON
    -> faults after processing (drop the answer, answer late or never)

Every refusal is MEXC's `{"code": ..., "msg": ...}` body with MEXC's HTTP status.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

from aiohttp import web

from xray_sim.exchange import apierror
from xray_sim.exchange.auth import API_KEY_HEADER, authenticate
from xray_sim.exchange.endpoints import Context, Endpoint, Params
from xray_sim.exchange.faults import Action, FaultKind, FaultPlan
from xray_sim.exchange.ratelimit import Scope, request_weight
from xray_sim.exchange.routes_private import PRIVATE_ENDPOINTS
from xray_sim.exchange.routes_public import PUBLIC_ENDPOINTS
from xray_sim.exchange.state import EmulatorState

log = logging.getLogger(__name__)

STATE = web.AppKey("emulator_state", EmulatorState)

ENDPOINTS: dict[tuple[str, str], Endpoint] = {
    (e.method, e.path): e for e in PUBLIC_ENDPOINTS + PRIVATE_ENDPOINTS
}
_PATHS = {path for _, path in ENDPOINTS}

# 5xx answers as MEXC's gateway writes them; other statuses get a bare proxy page, like nginx's.
_5XX_MESSAGES = {500: "Internal error", 501: "System busy, try again later",
                 503: "service not available, please try again", 504: "Gateway Time-out"}


def json_response(data: object, status: int = 200) -> web.Response:
    return web.Response(body=json.dumps(data, separators=(",", ":")).encode(), status=status,
                        content_type="application/json")


def error_response(error: apierror.ApiError) -> web.Response:
    return json_response(error.body(), status=error.status)


async def handle(request: web.Request) -> web.StreamResponse:
    """aiohttp handler for every MEXC path."""
    state = request.app[STATE]
    state.stats.requests += 1
    plan = state.faults.plan(request.method, request.path)
    if plan is None:
        return await _process(request, state, None)
    if plan.latency_s:
        await asyncio.sleep(plan.latency_s)
    if plan.before is not None:
        early = await _fault_before(request, state, plan)
        if early is not None:
            return early
    response = await _process(request, state, plan)
    if plan.after is not None:
        return await _fault_after(request, state, plan.after, response)
    return response


async def _process(request: web.Request, state: EmulatorState, plan: FaultPlan | None) -> web.Response:
    endpoint = ENDPOINTS.get((request.method, request.path))
    try:
        if endpoint is None:
            raise apierror.method_not_allowed() if request.path in _PATHS else apierror.not_found()
        state.stats.by_endpoint[f"{request.method} {request.path}"] += 1
        params = request.query
        now_ms = state.now_ms()
        weight = request_weight(request.method, request.path, has_symbol=bool(params.get("symbol")))
        account = None
        if endpoint.private:
            body = await request.text() if request.body_exists else ""
            account = authenticate(state.accounts, request.headers.get(API_KEY_HEADER),
                                   request.rel_url.raw_query_string, body, params,
                                   state.clock.wall_ms(), state.config.recv_window_max_ms)
            _admit(state, Scope.KEY, account.key, weight)
            state.engine.evaluate(now_ms, key=account.key)
        else:
            _admit(state, Scope.IP, request.remote or "unknown", weight)
        context = Context(state, Params(params), now_ms, account, plan.partial_ratio if plan else None)
        return json_response(endpoint.handler(context))
    except apierror.ApiError as error:
        state.stats.errors[error.code] += 1
        return error_response(error)
    except Exception:  # a bug: logged with its traceback, answered as MEXC's internal error
        log.exception("emulator failed on %s %s", request.method, request.path_qs)
        state.stats.errors[500] += 1
        return json_response({"code": 500, "msg": "Internal error"}, status=500)


def _admit(state: EmulatorState, scope: Scope, identity: str, weight: int) -> None:
    if not state.limiter.admit(scope, identity, weight):
        raise apierror.too_many_requests()


# ---- faults ------------------------------------------------------------------------------------
async def _fault_before(request: web.Request, state: EmulatorState,
                        plan: FaultPlan) -> web.StreamResponse | None:
    """The answer a fault gives in place of processing, or None to go on and process the request."""
    action = plan.before
    assert action is not None
    if action.kind is FaultKind.ERROR5XX:
        return _server_error(action.status)
    if action.kind is FaultKind.BAN418:
        state.stats.banned += 1
        body = {"code": 418, "msg": "IP banned: requests kept coming after 429 answers"}
        banned = json_response(body, status=418)
        banned.headers["Retry-After"] = str(action.retry_after_s)
        return banned
    if action.kind is FaultKind.OVERTAKE:
        await _overtake(request, state, plan, action.delay_s or 0.0)
        return _drop(request, state)
    if action.kind is FaultKind.BURST429:
        state.stats.fault_429 += 1
        return error_response(apierror.too_many_requests())
    if action.kind is FaultKind.DROP:
        return _drop(request, state)
    # TIMEOUT before processing: hold the request first; the client has likely given up by then.
    if not await _hold(state, action.delay_s):
        return _drop(request, state)
    return None


async def _fault_after(request: web.Request, state: EmulatorState, action: Action,
                       response: web.Response) -> web.StreamResponse:
    """Processing is done (an order exists); now lose or delay the answer."""
    if action.kind is FaultKind.DROP:
        return _drop(request, state)
    if not await _hold(state, action.delay_s):
        return _drop(request, state)
    return response


async def _overtake(request: web.Request, state: EmulatorState, plan: FaultPlan, delay_s: float) -> None:
    """Keep the request (its body read now) and process it `delay_s` from now, after its answer was
    lost: authentication runs then, so a request whose recvWindow has passed is refused, as a real
    exchange's matching engine would refuse it."""
    if request.body_exists:
        try:
            await request.read()
        except (ConnectionError, web.HTTPException):  # the client hung up first: nothing to process
            return

    state.stats.overtakes_kept += 1

    async def later() -> None:
        if await _hold(state, delay_s):
            state.stats.overtaken += 1
            await _process(request, state, plan)

    state.spawn(later())


async def _hold(state: EmulatorState, delay_s: float | None) -> bool:
    """Wait `delay_s` (None: until shutdown). False when the server is shutting down meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(state.closing.wait(), timeout=delay_s)
    return not state.closing.is_set()


def _drop(request: web.Request, state: EmulatorState) -> web.Response:
    """Close the connection without a response; the returned response is never written."""
    state.stats.dropped += 1
    if request.transport is not None:
        request.transport.close()
    return web.Response(status=499)


def _server_error(status: int) -> web.Response:
    message = _5XX_MESSAGES.get(status)
    if message is not None:
        return json_response({"code": status, "msg": message}, status=status)
    reason = {502: "Bad Gateway"}.get(status, "Server Error")
    return web.Response(text=f"<html><body><h1>{status} {reason}</h1></body></html>", status=status,
                        content_type="text/html")
