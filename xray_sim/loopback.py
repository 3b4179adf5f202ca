"""An aiohttp application served on loopback from its own thread and event loop.

The MEXC emulator and the fake news feed are asyncio servers, but tests, the demo and benchmarks are
synchronous callers: they start a server, talk to it over real HTTP, and stop it. This class owns that
life cycle once: start (returns when the port is bound, or raises what went wrong), run a function on
the server's loop, stop (pending requests are cancelled), and use as a context manager.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Self

from aiohttp import web


async def serve_app(app: web.Application, host: str, port: int, ready: Callable[[str], None] | None,
                    shutdown_timeout_s: float = 2.0, backlog: int = 2048) -> None:
    """Serve `app` until cancelled; `ready` receives the base URL once the port is bound (port 0
    picks a free one)."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=shutdown_timeout_s)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, backlog=backlog)
        await site.start()
        if ready is not None:
            ready(f"http://{host}:{runner.addresses[0][1]}")
        await asyncio.Event().wait()  # serve until cancelled
    finally:
        await runner.cleanup()


class LoopbackServer:
    """Serves an application from a daemon thread. Subclasses add their own conveniences."""

    def __init__(self, app: web.Application, host: str, port: int, *, name: str,
                 shutdown_timeout_s: float = 2.0) -> None:
        self.app = app
        self.base_url = ""
        self._name = name
        self._address = (host, port)
        self._shutdown_timeout_s = shutdown_timeout_s
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._ready = threading.Event()
        self._main: asyncio.Task[None] | None = None
        self._error: BaseException | None = None

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    def start(self, timeout_s: float = 15.0) -> Self:
        self._thread.start()
        if not self._ready.wait(timeout_s):
            self.stop()
            raise TimeoutError(f"the {self._name} did not start within {timeout_s} s")
        if self._error is not None:
            raise RuntimeError(f"the {self._name} failed to start: {self._error}") from self._error
        return self

    def call(self, fn: Callable[[], object], timeout_s: float = 10.0) -> object:
        """Run `fn` on the server's loop (where its state lives) and return its result."""
        async def run() -> object:
            return fn()
        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout_s)

    def stop(self, timeout_s: float = 10.0) -> None:
        main = self._main
        if main is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop may have just closed
                self._loop.call_soon_threadsafe(main.cancel)
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def __enter__(self) -> Self:
        return self if self._thread.is_alive() else self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        host, port = self._address
        self._main = self._loop.create_task(
            serve_app(self.app, host, port, self._on_ready, self._shutdown_timeout_s))
        try:
            self._loop.run_until_complete(self._main)
        except asyncio.CancelledError:
            pass
        except BaseException as error:  # reported to start(); the thread ends quietly
            self._error = error
            self._ready.set()
        finally:  # requests still held (a slow or timed-out answer) end with the loop
            pending = asyncio.all_tasks(self._loop)
            for task in pending:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self._loop.close()

    def _on_ready(self, base_url: str) -> None:
        self.base_url = base_url
        self._ready.set()
