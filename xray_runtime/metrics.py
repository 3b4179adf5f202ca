"""Prometheus metrics of one runtime process, on its own registry (several services can live in one
test process), and the /health and /metrics HTTP endpoints."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.ticks = Counter("xray_runtime_ticks", "Bars processed", registry=r)
        self.decision_latency = Histogram(
            "xray_runtime_decision_latency_seconds",
            "From a new closed bar to a user's decision (per user)", buckets=LATENCY_BUCKETS, registry=r,
        )
        self.orders = Counter("xray_runtime_orders", "Orders by final local status", ["status"], registry=r)
        self.rejects = Counter("xray_runtime_rejects", "Rejected orders by reason", ["reason"], registry=r)
        self.rate_limit_waits = Counter(
            "xray_runtime_rate_limit_waits", "Requests that waited for the shared rate limiter", registry=r
        )
        self.rate_limited = Counter("xray_runtime_rate_limited", "429 answers from the exchange", registry=r)
        self.ip_banned = Counter(
            "xray_runtime_ip_banned", "418 answers: the exchange banned this IP for ignoring its 429s",
            registry=r,
        )
        self.order_latency = Histogram(
            "xray_runtime_order_latency_seconds",
            "From sending an order (rate limiter's wait included) to the exchange's acknowledgement",
            buckets=LATENCY_BUCKETS, registry=r,
        )
        self.stale_symbols = Gauge(
            "xray_runtime_stale_symbols", "Bundle symbols not traded this bar for stale data", registry=r
        )
        self.lease_lost = Counter(
            "xray_runtime_lease_lost", "Times this process's shard lease lapsed (its users went to others)",
            registry=r,
        )
        self.bundle_refused = Gauge(
            "xray_runtime_bundle_refused", "1 while the newest published bundle is refused (see /health)",
            registry=r,
        )
        self.last_tick = Gauge(
            "xray_runtime_last_tick_timestamp_seconds", "Wall-clock time the last bar was processed",
            registry=r,
        )
        self.reconcile_diffs = Counter(
            "xray_runtime_reconciliation_diffs", "Differences reconciliation found and repaired", ["kind"],
            registry=r,
        )
        self.users = Gauge("xray_runtime_users", "Users by state in this process", ["state"], registry=r)
        self.skipped_symbols = Gauge(
            "xray_runtime_skipped_symbols", "Symbols not traded this bar", registry=r
        )
        self.kill_switch = Gauge("xray_runtime_global_kill_switch", "1 while the global kill switch is on",
                                 registry=r)
        self.bundle = Gauge("xray_runtime_bundle_info", "The promoted bundle in use", ["version"], registry=r)
        self._followed: dict[str, int] = {}

    def follow(self, *, waits: int, rate_limited: int, ip_banned: int = 0, lease_lost: int = 0) -> None:
        """Move the counters kept by the limiter, the exchange pool and the shard membership up to
        their current totals."""
        for counter, total, name in ((self.rate_limit_waits, waits, "waits"),
                                     (self.rate_limited, rate_limited, "rate_limited"),
                                     (self.ip_banned, ip_banned, "ip_banned"),
                                     (self.lease_lost, lease_lost, "lease_lost")):
            seen = self._followed.get(name, 0)
            if total > seen:
                counter.inc(total - seen)
                self._followed[name] = total

    def render(self) -> bytes:
        return generate_latest(self.registry)


def http_app(metrics: Metrics, health: Callable[[], dict[str, Any]]) -> web.Application:
    async def get_health(_: web.Request) -> web.Response:
        report = health()
        status = 200 if report.get("status") == "ok" else 503
        return web.json_response(report, status=status, dumps=lambda v: json.dumps(v, default=str))

    async def get_metrics(_: web.Request) -> web.Response:
        response = web.Response(body=metrics.render())
        response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
        return response

    app = web.Application()
    app.router.add_get("/health", get_health)
    app.router.add_get("/metrics", get_metrics)
    return app


async def serve(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Start the endpoints; returns the runner (to clean up) and the bound port."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    server = site._server  # the bound port when 0 was asked for (an asyncio.Server for a TCP site)
    sockets = server.sockets if isinstance(server, asyncio.Server) else ()
    bound = sockets[0].getsockname()[1] if sockets else port
    return runner, int(bound)
