"""Market-data ingestion respects the venue's per-IP limit across every ingestion process of the
machine (Dagster runs one per symbol): they share one budget, and a 429 pauses them all.

Each ingesting "process" here is a thread with its own ccxt client, limiter and DuckDB file; they
share only the machine-wide limiter's file, as separate processes do."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from xray_core.candles.store import CandleStore
from xray_core.exchange.client import ExchangeClient
from xray_core.ingest import ingest_symbol, throttle_ingestion
from xray_core.ratelimit import RATE_LIMITED_PAUSE_S, HostLimiter, Quota
from xray_core.settings import ExchangeSettings, IngestSettings, QualitySettings

LIMIT, WINDOW_S = 40, 3.0  # the emulator's weight per IP per window, and so ingestion's
INGEST = IngestSettings(timeframe="1m", history_days=2, weight_limit_ip=LIMIT, weight_window_s=WINDOW_S,
                        weight_share=1.0)


def test_concurrent_ingestions_stay_within_the_venues_limit_together(start_custom_emulator, admin_at,
                                                                    tmp_path):
    """Each client paced itself alone (ccxt's throttle): four of them earned 429s together."""
    emulator = start_custom_emulator(weight_limit=LIMIT, weight_window_s=WINDOW_S)
    symbols = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT"]
    errors: list[str] = []

    def ingest(symbol: str) -> None:
        client = ExchangeClient(ExchangeSettings(url=emulator.base_url, backoff_s=0.05))
        store = CandleStore(tmp_path / f"{symbol.replace('/', '_')}.duckdb")
        result = ingest_symbol(client, store, symbol, INGEST, QualitySettings())
        if not result.ok:
            errors.append(f"{symbol}: {result.error}")

    threads = [threading.Thread(target=ingest, args=(s,)) for s in symbols]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    stats = admin_at(emulator.base_url).stats()
    assert stats["rate_limit_violations"] == 0, stats["responses_429"]
    assert stats["requests"] > 4 * 3  # markets, the clock and three pages of 1m bars each


def test_the_budget_is_one_for_the_whole_machine(tmp_path):
    quota = Quota.of(10, 60.0)  # burst 5
    now = [1000.0]
    first, second = (HostLimiter(tmp_path / "rl.json", {"ip": quota}, clock=lambda: now[0]) for _ in range(2))
    assert [first.try_acquire(["ip:host"], 1) for _ in range(3)] == [0.0] * 3
    assert [second.try_acquire(["ip:host"], 1) for _ in range(2)] == [0.0] * 2
    assert first.try_acquire(["ip:host"], 1) > 0 and second.try_acquire(["ip:host"], 1) > 0
    second.pause(["ip:host"], 30.0)  # a 429 seen by one process
    now[0] += 20
    assert first.try_acquire(["ip:host"], 1) >= 10  # holds the other one back too


def test_a_429_met_during_ingestion_pauses_the_machines_ingestion(start_custom_emulator, tmp_path):
    emulator = start_custom_emulator()
    client = ExchangeClient(ExchangeSettings(url=emulator.base_url, backoff_s=0.01, max_retries=0))
    limiter = throttle_ingestion(client, INGEST, Path(tmp_path))
    assert throttle_ingestion(client, INGEST, Path(tmp_path)) is limiter  # installed once
    emulator.set_faults("burst429:n=1:path=/api/v3/time")
    with pytest.raises(Exception, match=r"reach|429"):
        client.fetch_time()
    other = HostLimiter(limiter.path, limiter.quotas)
    assert 0 < other.try_acquire(["ip:host"], 1) <= RATE_LIMITED_PAUSE_S + limiter.quotas["ip"].interval_s
