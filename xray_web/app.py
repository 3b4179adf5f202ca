"""The ASGI app (FastAPI): the API under /api, the pages at /, the OpenAPI schema at /openapi.json."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from xray_core.errors import XrayError
from xray_runtime.user_types import UnknownUserError
from xray_web import api, pages
from xray_web.reads import Sources


def create_app(sources: Sources) -> FastAPI:
    app = FastAPI(title="X-Ray", version="1", description="Users' accounts and the operator's X-ray, "
                  "read from the runtime's SQL and the lake (never from the exchange).")
    app.state.sources = sources
    app.include_router(api.router)
    app.include_router(pages.router)

    @app.exception_handler(UnknownUserError)
    async def _unknown(_: Request, exc: UnknownUserError) -> JSONResponse:
        # A token whose user was removed since: nothing of theirs to show.
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(XrayError)
    async def _xray(_: Request, exc: XrayError) -> JSONResponse:
        # The lake or the registry cannot be read (not materialized, locked): say so, as a 503.
        return JSONResponse({"detail": str(exc)}, status_code=503)

    return app


def sources_from_settings(database_url: str | None = None) -> Sources:
    """Where to read from: `XRAY_RUNTIME_*` (the runtime's SQL), `XRAY_STORE_*`, `XRAY_EXCHANGE_*`,
    `XRAY_INGEST_*` and `XRAY_MODELS_*` (the lake, the bundle, the registry)."""
    from xray_core.settings import load, load_settings, resolve_tracking_uri
    from xray_runtime.db import connect
    from xray_runtime.settings import RuntimeSettings

    overrides: dict[str, Any] = {"database_url": database_url} if database_url else {}
    runtime = load(RuntimeSettings, **overrides)
    settings = load_settings()
    store = settings.store
    return Sources(
        engine=connect(runtime.database_url), duckdb_file=store.duckdb_file, lake_dir=store.lake_dir,
        bundle_dir=runtime.bundle_dir, exchange=settings.exchange.id, timeframe=settings.ingest.timeframe,
        tracking_uri=resolve_tracking_uri(settings.models.tracking_uri, store.home), runtime_settings=runtime,
    )


def serve(host: str, port: int, database_url: str | None = None) -> None:
    import uvicorn

    _check_listen(host, port)  # before uvicorn, whose refusals are several log lines
    app = create_app(sources_from_settings(database_url))
    uvicorn.run(app, host=host, port=port, log_level="info")


def _check_listen(host: str, port: int) -> None:
    """One clear error for an address this machine cannot listen on."""
    import socket

    from xray_core.errors import ConfigError

    if not 0 <= port <= 65535:
        raise ConfigError(f"--port {port} is not a TCP port", "use 1-65535 (0: any free port)")
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (OSError, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"--host {host!r} cannot be listened on ({reason})",
                          "use an address of this machine, e.g. 127.0.0.1 or 0.0.0.0") from None
