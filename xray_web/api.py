"""The REST API: `/api/me/...` for the token's own user, `/api/ops/...` for the operator.

Handlers are sync (`def`): FastAPI runs them in its thread pool, so the blocking SQL and DuckDB reads
never hold up the event loop."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request

from xray_runtime.api_tokens import Principal
from xray_runtime.user_control import UserControl
from xray_web import model_reads, ops_reads, reads
from xray_web.auth import operator, user_id

router = APIRouter(prefix="/api")
Me = Annotated[str, Depends(user_id)]
Operator = Annotated[Principal, Depends(operator)]


def _src(request: Request) -> reads.Sources:
    return request.app.state.sources


@router.get("/me", summary="The caller's user, mode, equity and risk state")
def me(request: Request, uid: Me) -> dict[str, Any]:
    return reads.account(_src(request), uid)


@router.get("/me/trades", summary="The caller's orders, newest first, each with its lineage")
def my_trades(request: Request, uid: Me) -> list[dict[str, Any]]:
    return reads.trades(_src(request), uid)


@router.get("/me/trades/{client_order_id}", summary="One of the caller's orders (404 if not theirs)")
def my_trade(request: Request, uid: Me,
             client_order_id: Annotated[str, Path(min_length=1, max_length=64)]) -> dict[str, Any]:
    found = reads.one_trade(_src(request), uid, client_order_id)
    if found is None:
        raise HTTPException(404, f"no order {client_order_id!r} of yours")
    return found


@router.get("/me/orders/open", summary="The caller's orders not yet final")
def my_open_orders(request: Request, uid: Me) -> list[dict[str, Any]]:
    return reads.open_orders(_src(request), uid)


@router.get("/me/positions", summary="What the caller's fills hold, per symbol")
def my_positions(request: Request, uid: Me) -> list[dict[str, Any]]:
    return reads.positions(_src(request), uid)


@router.get("/me/equity", summary="The caller's equity after each bar the runtime traded")
def my_equity(request: Request, uid: Me) -> list[dict[str, Any]]:
    return reads.equity_curve(_src(request), uid)


@router.post("/me/pause", summary="No new entries for the caller from the next bar (exits go on)")
def pause(request: Request, uid: Me) -> dict[str, Any]:
    return {"control": UserControl(_src(request).engine).pause(uid, "web").state}


@router.post("/me/resume", summary="Trade again (a risk kill switch stays)")
def resume(request: Request, uid: Me) -> dict[str, Any]:
    return {"control": UserControl(_src(request).engine).resume(uid, "web").state}


@router.get("/ops/universe", summary="Every symbol kept or dropped, with its reason")
def universe(request: Request, _: Operator) -> dict[str, Any]:
    return ops_reads.universe(_src(request))


@router.get("/ops/correlation", summary="Correlation clusters and pairs")
def correlation(request: Request, _: Operator) -> dict[str, Any]:
    return ops_reads.correlation(_src(request))


@router.get("/ops/sentiment", summary="News sentiment per symbol")
def sentiment(request: Request, _: Operator) -> list[dict[str, Any]]:
    return ops_reads.sentiment(_src(request))


@router.get("/ops/bundle", summary="The promoted bundle with per_symbol: strategy, model and selection "
            "reason (null before the first promotion)")
def bundle(request: Request, _: Operator) -> dict[str, Any] | None:
    return ops_reads.bundle(_src(request))


@router.get("/ops/models", summary="Every model version: aliases, out-of-sample metrics, the gate's record "
            "and the shadow record")
def models(request: Request, _: Operator) -> list[dict[str, Any]]:
    return model_reads.models(_src(request))


@router.get("/ops/runtime", summary="Runtime processes, users per process, health, rate-limit budget")
def runtime(request: Request, _: Operator) -> dict[str, Any]:
    return ops_reads.runtime(_src(request))
