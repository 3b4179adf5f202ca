"""Serving the emulator: the aiohttp application, an asyncio entry point, a background-thread runner
for synchronous callers and tests, and the blocking entry point the CLI calls.

Point a stock ccxt client at a running emulator by rewriting only its API hosts::

    exchange = ccxt.mexc({"apiKey": key, "secret": secret})
    exchange.urls["api"] = rebase_api_urls(exchange.urls["api"], emulator.base_url, "mexc")

Note: for spot `fetch_ohlcv(symbol, tf, since)` without `until`, ccxt computes `endTime` from the
*client's* wall clock; when the market clock runs faster than real time (speed > 1) the newest bars
are then only reached by passing `params={"until": ...}` or by omitting `since`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Callable, Mapping
from typing import cast

from aiohttp import web

from xray_sim.exchange.accounts import new_credentials, parse_funds
from xray_sim.exchange.admin import add_admin_routes, admin_errors
from xray_sim.exchange.clock import MarketClock
from xray_sim.exchange.config import EmulatorConfig
from xray_sim.exchange.dispatch import STATE, handle
from xray_sim.exchange.faults import parse_fault_spec
from xray_sim.exchange.state import EmulatorState
from xray_sim.loopback import LoopbackServer, serve_app

log = logging.getLogger(__name__)

MATCH_INTERVAL_S = 0.25  # how often the background task matches every resting order
PRUNE_EVERY = 40  # background rounds between clean-ups of idle rate-limit windows
SHUTDOWN_TIMEOUT_S = 2.0


def build_app(config: EmulatorConfig) -> web.Application:
    """The emulator as an aiohttp application (state in `app[STATE]`)."""
    app = web.Application(middlewares=[admin_errors], client_max_size=64 * 1024 * 1024)
    app[STATE] = EmulatorState(config)
    add_admin_routes(app)
    app.router.add_route("*", "/{tail:.*}", handle)  # every other path is MEXC's (or a MEXC 404)
    app.cleanup_ctx.append(_background_matching)
    app.on_shutdown.append(_release_held_requests)
    return app


async def _background_matching(app: web.Application) -> AsyncIterator[None]:
    """Match resting orders even when nobody asks, so fills happen at the bar they belong to."""
    state = app[STATE]

    async def loop() -> None:
        rounds = 0
        while True:
            await asyncio.sleep(MATCH_INTERVAL_S)
            try:
                state.engine.evaluate(state.now_ms())
                rounds += 1
                if rounds % PRUNE_EVERY == 0:
                    state.limiter.prune()
            except Exception:  # a bug must not stop matching for everyone: log it and go on
                log.exception("background matching failed")

    task = asyncio.create_task(loop(), name="emulator-matching")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _release_held_requests(app: web.Application) -> None:
    app[STATE].closing.set()


async def serve(config: EmulatorConfig, ready: Callable[[str], None] | None = None) -> None:
    """Serve until cancelled; `ready` receives the base URL once the port is bound."""
    # Handlers are not cancelled when a client disconnects: a request held by a timeout fault is
    # still processed after the client gave up, as on a real exchange.
    await serve_app(build_app(config), config.host, config.port, ready, SHUTDOWN_TIMEOUT_S)


class RunningEmulator(LoopbackServer):
    """An emulator serving from its own thread and event loop, for synchronous callers and tests.

    Use as a context manager, or call `start()` and `stop()`."""

    def __init__(self, config: EmulatorConfig) -> None:
        super().__init__(build_app(config), config.host, config.port, name="mexc-emulator",
                         shutdown_timeout_s=SHUTDOWN_TIMEOUT_S)
        self.config = config
        self.state: EmulatorState = self.app[STATE]

    @property
    def clock(self) -> MarketClock:
        return self.state.clock

    # Conveniences for tests and tools in the caller's thread; each runs on the emulator's loop.
    def set_faults(self, spec: str) -> None:
        """Replace the fault spec ("" clears all faults); raises ConfigError for a malformed spec."""
        parsed = parse_fault_spec(spec)
        self.call(lambda: self.state.faults.replace(parsed))

    def create_account(self, funds: Mapping[str, str] | None = None) -> tuple[str, str]:
        """A new API key and secret, funded with `funds` (default: the configured starting funds)."""
        key, secret = new_credentials()
        parsed = parse_funds(funds) if funds is not None else None
        self.call(lambda: self.state.accounts.register(key, secret, parsed))
        return key, secret

    def stats(self) -> dict[str, object]:
        return cast(dict[str, object], self.call(self.state.snapshot))


EmulatorThread = RunningEmulator  # the name the roadmap uses


def start_emulator(config: EmulatorConfig) -> RunningEmulator:
    """Start an emulator in a background thread and return it once it accepts connections."""
    return RunningEmulator(config).start()


def run_forever(config: EmulatorConfig) -> None:
    """Serve in the foreground (the CLI's `xray exchange-sim`) until SIGINT or SIGTERM."""

    async def main() -> None:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        await serve(config, ready=lambda url: print(announcement(config, url), flush=True))

    with contextlib.suppress(asyncio.CancelledError, KeyboardInterrupt):
        asyncio.run(main())


def announcement(config: EmulatorConfig, base_url: str) -> str:
    """One line: where the emulator listens and how to point ccxt at it (keys named, secrets not)."""
    keys = ", ".join(c.key for c in config.credentials) or "none (create some via POST /_emulator/accounts)"
    return (f"MEXC spot emulator on {base_url} | ccxt: ex = ccxt.mexc({{'apiKey': KEY, 'secret': SECRET}}); "
            f"ex.urls['api'] = rebase_api_urls(ex.urls['api'], '{base_url}', 'mexc') | API keys: {keys}")
