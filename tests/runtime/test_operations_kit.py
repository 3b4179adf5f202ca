"""The operations kit in deploy/ (Prometheus alert rules, the Grafana dashboard) names only metrics the
runtime exports, and the metrics behind its alerts move on the code paths they describe: orders
acknowledged, ticks, a refused bundle, stale data, a 418 from the exchange, a lapsed shard lease."""

import asyncio
import json
import os
import re
import time
import uuid
from pathlib import Path

import ccxt
import pytest
import yaml
from aiohttp import web
from service_support import add_users, fast_bundle, run_bars, start_service

from xray_core.bundle import CURRENT, publish
from xray_runtime.exchange_pool import PoolStats, _pooled_class
from xray_runtime.metrics import Metrics
from xray_runtime.redis_conn import connect
from xray_runtime.settings import RuntimeSettings
from xray_runtime.sharding import Membership

ROOT = Path(__file__).resolve().parents[2]
RULES = yaml.safe_load((ROOT / "deploy" / "prometheus" / "xray-runtime-alerts.yaml").read_text())
DASHBOARD = json.loads((ROOT / "deploy" / "grafana" / "xray-runtime-dashboard.json").read_text())
REDIS_URL = os.environ.get("XRAY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",),
            "info": ("_info",)}


def exported() -> set[str]:
    """Every series name a runtime's /metrics can carry (labelled metrics included before first use)."""
    names = set()
    for family in Metrics().registry.collect():
        names |= {family.name + suffix for suffix in SUFFIXES[family.type]}
    return names


def _named(expressions: list[str]) -> set[str]:
    return {name for expr in expressions for name in re.findall(r"\bxray_[a-z0-9_]+", expr)}


def _alert_expressions() -> list[str]:
    return [rule["expr"] for group in RULES["groups"] for rule in group["rules"]]


def _dashboard_expressions() -> list[str]:
    return [target["expr"] for panel in DASHBOARD["panels"] for target in panel["targets"]]


def test_every_metric_the_alerts_and_the_dashboard_name_is_exported():
    names = exported()
    for source, expressions in (("alerts", _alert_expressions()), ("dashboard", _dashboard_expressions())):
        named = _named(expressions)
        assert named, source
        assert named <= names, f"{source} name metrics the runtime does not export: {sorted(named - names)}"


def test_the_alerts_cover_what_operations_need():
    rules = [rule for group in RULES["groups"] for rule in group["rules"]]
    assert all({"alert", "expr", "labels", "annotations"} <= set(rule) for rule in rules)
    assert all(rule["labels"]["severity"] in ("warning", "critical") and rule["annotations"]["summary"]
               for rule in rules)
    assert len({rule["alert"] for rule in rules}) == len(rules)
    covered = _named(_alert_expressions())
    for metric in ("xray_runtime_global_kill_switch", "xray_runtime_rate_limited_total",
                   "xray_runtime_ip_banned_total", "xray_runtime_stale_symbols",
                   "xray_runtime_reconciliation_diffs_total", "xray_runtime_lease_lost_total",
                   "xray_runtime_order_latency_seconds_bucket"):
        assert metric in covered, metric
    assert _named(_dashboard_expressions()) >= covered - {"xray_runtime_decision_latency_seconds_bucket"}


async def test_a_trading_runtime_moves_the_metrics_behind_the_alerts(runtime_env):
    settings, emulator, admin = runtime_env
    add_users(settings, admin, 2)
    service = await start_service(settings, emulator.base_url)
    try:
        reports = await run_bars(service, admin, 10)
        metrics = service.parts.metrics.registry
        acked = sum(1 for r in reports for o in r.orders if o.exchange_order_id)
        assert acked > 0
        assert metrics.get_sample_value("xray_runtime_order_latency_seconds_count") == acked
        assert metrics.get_sample_value("xray_runtime_order_latency_seconds_sum") > 0
        assert time.time() - 3600 < metrics.get_sample_value("xray_runtime_last_tick_timestamp_seconds") \
            <= time.time()
        assert metrics.get_sample_value("xray_runtime_bundle_refused") == 0
        assert metrics.get_sample_value("xray_runtime_stale_symbols") == 0
        (settings.bundle_dir / CURRENT).write_text(json.dumps({"version": "v1", "symbols": [1]}))
        service.reload_bundle()
        assert metrics.get_sample_value("xray_runtime_bundle_refused") == 1
        (settings.bundle_dir / CURRENT).write_text(fast_bundle().to_json())
        service.reload_bundle()
        assert metrics.get_sample_value("xray_runtime_bundle_refused") == 0
    finally:
        await service.stop()


async def test_a_symbol_whose_bars_stopped_counts_as_stale(runtime_env):
    """SRM/USDT is halted on the emulator (no bars for a week): skipped for stale data, and counted."""
    settings, emulator, admin = runtime_env
    publish(fast_bundle(["BTC/USDT", "SRM/USDT"]), settings.bundle_dir)
    add_users(settings, admin, 1)
    service = await start_service(settings, emulator.base_url)
    try:
        reports = await run_bars(service, admin, 2)
        assert reports and reports[-1].skipped["SRM/USDT"].startswith("stale data")
        assert "BTC/USDT" not in reports[-1].skipped
        assert service.parts.metrics.registry.get_sample_value("xray_runtime_stale_symbols") == 1
    finally:
        await service.stop()


async def test_a_418_from_the_exchange_is_counted_apart_from_429s(unused_tcp_port):
    async def teapot(_: web.Request) -> web.Response:
        return web.Response(status=418, text='{"code": 418, "msg": "banned"}')

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", teapot)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", unused_tcp_port).start()
    client = _pooled_class("mexc")({"enableRateLimit": False})
    client.xray_stats = stats = PoolStats()
    try:
        with pytest.raises(ccxt.BaseError):  # which class is the venue's business; the count is ours
            await client.fetch(f"http://127.0.0.1:{unused_tcp_port}/api/v3/time")
        assert stats.ip_banned == 1
    finally:
        await client.close()
        await runner.cleanup()


@pytest.mark.redis
async def test_a_lapsed_shard_lease_is_counted_once_per_lapse():
    prefix = f"test-lease-{uuid.uuid4().hex}"
    settings = RuntimeSettings(redis_url=REDIS_URL, redis_prefix=prefix, lease_s=0.5)
    client = connect(settings)
    membership = Membership(client, settings, member_id="p0")
    try:
        for lapse in (1, 2):
            await membership.heartbeat()
            assert await membership.owned(["u1", "u2"]) == ["u1", "u2"]
            deadline = time.monotonic() + 120  # hang guard only
            while "p0" in await membership.alive():
                assert time.monotonic() < deadline, "the lease never ran out"
                await asyncio.sleep(0.1)
            assert await membership.owned(["u1", "u2"]) == []
            assert await membership.owned(["u1", "u2"]) == []  # still lapsed: not counted again
            assert membership.lease_losses == lapse
    finally:
        keys = [k async for k in client.scan_iter(match=f"{settings.redis_prefix}:*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()
