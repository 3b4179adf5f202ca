"""The operator's reads: the market X-ray and the promoted bundle from the lake (the models:
`model_reads`), the runtime's processes, health and rate-limit budget. Nothing here reads a user's
account beyond counting users."""

from __future__ import annotations

import json
import math
import urllib.request
from typing import Any

import polars as pl

from xray_web.reads import Sources


def _rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """JSON-safe rows: NaN and infinities become None (JSON has no NaN)."""
    rows = frame.to_dicts()
    for row in rows:
        for key, value in row.items():
            if isinstance(value, float) and not math.isfinite(value):
                row[key] = None
            elif value is not None and not isinstance(value, str | int | float | bool | list | dict):
                row[key] = str(value)
    return rows


def _lake(src: Sources, table: str, scope_keys: tuple[str, ...] = ("exchange", "timeframe")) -> pl.DataFrame:
    from xray_core.research.store import ResearchStore

    if not src.duckdb_file.exists():
        return pl.DataFrame()
    scope = {"exchange": src.exchange, "timeframe": src.timeframe}
    return ResearchStore(src.duckdb_file, src.lake_dir).read(table, {k: scope[k] for k in scope_keys})


def universe(src: Sources) -> dict[str, Any]:
    """Every symbol the research kept or dropped, with its reason; the markets dropped before it."""
    from xray_core.candles.store import CandleStore
    from xray_core.research.store import LakeTable

    filtered = _lake(src, LakeTable.FILTERED_SYMBOLS)
    markets = pl.DataFrame()
    if src.duckdb_file.exists():
        try:
            markets = CandleStore(src.duckdb_file).markets(src.exchange)
        except Exception:  # no markets table yet: nothing ingested, nothing to show
            markets = pl.DataFrame()
    dropped_markets = (markets.filter(~pl.col("kept")).select("symbol", "reason") if markets.height
                       else markets)
    return {"exchange": src.exchange, "timeframe": src.timeframe, "symbols": _rows(filtered),
            "dropped_markets": _rows(dropped_markets)}


def correlation(src: Sources) -> dict[str, Any]:
    """Clusters and the full-sample correlation of every pair."""
    from xray_core.research.store import LakeTable

    pairs = _lake(src, LakeTable.CORRELATION_PAIRS)
    if pairs.height and "sample" in pairs.columns:
        pairs = pairs.filter(pl.col("sample") == "full").select("symbol_a", "symbol_b", "corr")
    return {"clusters": _rows(_lake(src, LakeTable.CORRELATION_CLUSTERS)), "pairs": _rows(pairs),
            "excluded": _rows(_lake(src, LakeTable.CORRELATION_EXCLUDED))}


def sentiment(src: Sources) -> list[dict[str, Any]]:
    """Per symbol ("*": the whole market): the newest hour's decayed sentiment, and the headlines,
    positive and negative ones counted over the stored window (the lake keeps one row an hour)."""
    from xray_core.research.store import LakeTable

    hourly = _lake(src, LakeTable.NEWS_SENTIMENT, ("exchange",))
    needed = {"symbol", "hour", "n_headlines", "sentiment_decayed", "positive", "negative"}
    if not hourly.height or not needed <= set(hourly.columns):
        return []
    summary = (hourly.sort("hour").group_by("symbol", maintain_order=True)
               .agg(pl.col("hour").last().alias("latest_hour"),
                    pl.col("sentiment_decayed").last().alias("sentiment"),
                    pl.col("n_headlines").sum().alias("headlines"), pl.col("positive").sum(),
                    pl.col("negative").sum())
               .sort("symbol"))
    return _rows(summary)


def bundle(src: Sources) -> dict[str, Any] | None:
    """The promoted bundle as published (the runtime's bundle store) with `per_symbol`: each symbol's
    strategy, model and selection reason (`model_reads.bundle_view`); None before the first promotion."""
    from xray_core.bundle_store import open_store
    from xray_web.model_reads import bundle_view

    # The store the runtime polls: XRAY_RUNTIME_BUNDLE_URL when set (shared), else the bundle directory.
    snapshot = open_store(getattr(src.runtime_settings, "bundle_url", None), src.bundle_dir).current()
    if snapshot is None:
        return None
    published = snapshot.data
    return published | {"per_symbol": bundle_view(published)}


def runtime(src: Sources) -> dict[str, Any]:
    """The runtime's processes and users per process (the shard ring on Redis, else the embedded
    single process), its /health, and the rate-limit budget each scope has."""
    from xray_runtime.ratelimit import quotas_from_settings
    from xray_runtime.users import UserStore

    settings = src.runtime_settings
    users = [u.user_id for u in UserStore(src.engine, None).list("active")]
    members = _members(settings)
    per_process: dict[str, int] = {}
    if members:
        from xray_runtime.sharding import HashRing

        ring = HashRing(members)
        for user_id in users:
            owner = ring.owner(user_id)
            per_process[owner] = per_process.get(owner, 0) + 1
    else:
        per_process["embedded (one process)"] = len(users)
    quotas = quotas_from_settings(settings)
    return {
        "processes": [{"process": p, "users": n} for p, n in sorted(per_process.items())],
        "active_users": len(users),
        "health": _health(settings.http_host, settings.http_port),
        "rate_limits": [{"scope": s, "limit": q.limit, "window_s": q.window_s, "burst": q.burst}
                        for s, q in quotas.items()],
        "rate_limit_cells": _cells(settings, quotas),
    }


def _redis(settings: Any) -> Any:
    import redis

    options: dict[str, Any] = {"socket_timeout": 1.0, "socket_connect_timeout": 1.0, "decode_responses": True}
    if settings.redis_cluster:
        return redis.RedisCluster.from_url(settings.redis_url, **options)
    return redis.Redis.from_url(settings.redis_url, **options)


def _members(settings: Any) -> list[str]:
    """The live processes in the shard ring (Redis); [] without Redis or when it cannot be reached."""
    if not settings.redis_url:
        return []
    import redis

    try:
        client = _redis(settings)
        seconds, micros = client.time()  # leases are scored by the Redis server's clock
        names = client.zrangebyscore(f"{settings.redis_prefix}:members", seconds + micros / 1e6, "+inf")
    except redis.RedisError:
        return []
    return sorted(str(n) for n in names)


def _cells(settings: Any, quotas: dict[str, Any], most: int = 20) -> list[dict[str, Any]]:
    """The shared limiter's busiest scopes now (Redis only: the embedded limiter lives inside the
    runtime process): weight still in each GCRA bucket and what a request could spend at once. A
    cell Redis no longer holds has drained: its whole burst is free. `most` lowest first."""
    if not settings.redis_url:
        return []
    import redis

    try:
        client = _redis(settings)
        seconds, micros = client.time()  # the limiter's script times cells by the server's clock
        now = seconds + micros / 1e6
        keys = []
        for key in client.scan_iter(match=f"{settings.redis_prefix}:{{rl}}:*", count=1000):
            keys.append(key)
            if len(keys) >= 10_000:  # a bounded look: enough to find the busy ones
                break
        tats = client.mget(keys) if keys else []
    except redis.RedisError:
        return []
    cells = []
    for key, tat in zip(keys, tats, strict=True):
        scope = key.split(":{rl}:", 1)[1]
        quota = quotas.get(scope.split(":", 1)[0])
        if tat is None or quota is None:
            continue
        in_use = max(0.0, float(tat) - now) / quota.interval_s
        cells.append({"scope": scope, "in_use": round(in_use, 3),
                      "available_now": round(max(0.0, quota.burst - in_use), 3), "burst": quota.burst})
    return sorted(cells, key=lambda c: c["available_now"])[:most]


def _health(host: str, port: int) -> dict[str, Any]:
    """The runtime's own /health (loopback HTTP, a second at most); why not, when it does not answer."""
    url = f"http://{host}:{port}/health"
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:  # our own runtime, loopback
            return {"url": url, "reachable": True, "report": json.loads(response.read())}
    except (OSError, ValueError) as exc:
        return {"url": url, "reachable": False, "error": str(exc)[:200]}
