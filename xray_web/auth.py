"""Who is asking: the bearer token (API) or the `xray_token` cookie (pages), looked up hashed in the
runtime's SQL. A user's token is bound to that user; only an operator token opens `/api/ops/`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from xray_runtime.api_tokens import Principal, resolve

COOKIE = "xray_token"
bearer = HTTPBearer(auto_error=False, description="A token from `xray users token ID` (or `--operator`)")


def principal(request: Request,
              credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Principal:
    token = credentials.credentials if credentials is not None else request.cookies.get(COOKIE, "")
    found = resolve(request.app.state.sources.engine, token) if token else None
    if found is None:
        raise HTTPException(401, "a valid token is needed: `xray users token ID` prints one",
                            headers={"WWW-Authenticate": "Bearer"})
    return found


def user_id(who: Annotated[Principal, Depends(principal)]) -> str:
    """The caller's own user id; an operator token has no account (404)."""
    if who.user_id is None:
        raise HTTPException(404, "an operator token has no account: use a user's token for /api/me")
    return who.user_id


def operator(who: Annotated[Principal, Depends(principal)]) -> Principal:
    if not who.operator:
        raise HTTPException(403, "operator only: `xray users token --operator` prints an operator token")
    return who
