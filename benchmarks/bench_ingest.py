"""Ingestion throughput: bars/s through ccxt into DuckDB vs the emulator's raw HTTP throughput.

The emulator runs in its own process (`xray exchange-sim`), so client and server do not share a GIL.
Three measurements of the same 1m history:

1. raw HTTP: keep-alive GETs of /api/v3/klines (1000 bars each), JSON parsed — the ceiling;
2. X-Ray ingestion (ExchangeClient + stock ccxt + polars + DuckDB upsert + quality checks) with
   ccxt's client-side throttle lifted, i.e. the cost of our own path;
3. the same with ccxt's default MEXC throttle (20 requests/s), i.e. what production runs at.

Prints bars/s of each and the ratios to raw HTTP. Run: `.venv/bin/python benchmarks/bench_ingest.py`.
"""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from xray_core.candles.store import CandleStore
from xray_core.exchange.client import ExchangeClient
from xray_core.ingest import ingest_symbol
from xray_core.settings import ExchangeSettings, IngestSettings, QualitySettings

SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT"]
DAYS = 10  # 14,400 one-minute bars per symbol
MINUTE = 60_000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_emulator(port: int) -> subprocess.Popen[bytes]:
    xray = Path(sys.executable).with_name("xray")
    process = subprocess.Popen(
        [str(xray), "exchange-sim", "--port", str(port), "--history-days", "30"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/api/v3/ping")
            if conn.getresponse().status == 200:
                return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("the emulator did not start")


def raw_http_bars_per_s(port: int, now_ms: int) -> tuple[float, int]:
    conn = http.client.HTTPConnection("127.0.0.1", port)
    bars = 0
    start = time.perf_counter()
    for symbol in SYMBOLS:
        market_id = symbol.replace("/", "")
        cursor = now_ms - now_ms % MINUTE - DAYS * 1440 * MINUTE
        end = now_ms - now_ms % MINUTE
        while cursor < end:
            conn.request(
                "GET",
                f"/api/v3/klines?symbol={market_id}&interval=1m&startTime={cursor}"
                f"&endTime={min(cursor + 1000 * MINUTE, end)}&limit=1000",
            )
            rows = json.loads(conn.getresponse().read())
            bars += len(rows)
            cursor = int(rows[-1][0]) + MINUTE if rows else cursor + 1000 * MINUTE
    return bars / (time.perf_counter() - start), bars


def ingest_bars_per_s(port: int, throttled: bool) -> tuple[float, int]:
    settings = ExchangeSettings(
        url=f"http://127.0.0.1:{port}", requests_per_s=None if throttled else 100_000.0
    )
    client = ExchangeClient(settings)
    client.load_markets()  # once, as a long-running ingester does
    ingest = IngestSettings(timeframe="1m", history_days=DAYS)
    quality = QualitySettings(max_missing_ratio=1.0, max_gap_bars=10**6)
    with tempfile.TemporaryDirectory() as tmp:
        store = CandleStore(Path(tmp) / "bench.duckdb")
        start = time.perf_counter()
        bars = sum(ingest_symbol(client, store, s, ingest, quality).fetched for s in SYMBOLS)
        elapsed = time.perf_counter() - start
    return bars / elapsed, bars


def main() -> None:
    port = free_port()
    emulator = start_emulator(port)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port)
        conn.request("GET", "/api/v3/time")
        now_ms = int(json.loads(conn.getresponse().read())["serverTime"])
        raw_http_bars_per_s(port, now_ms)  # warm the emulator's day cache for a fair comparison
        raw, raw_bars = raw_http_bars_per_s(port, now_ms)
        fast, fast_bars = ingest_bars_per_s(port, throttled=False)
        throttled, throttled_bars = ingest_bars_per_s(port, throttled=True)
    finally:
        emulator.terminate()
        emulator.wait(timeout=10)
    print(f"workload: {len(SYMBOLS)} symbols x {DAYS} days of 1m bars from the emulator (its own process)")
    print(f"raw HTTP (keep-alive, JSON parsed)       {raw:>12,.0f} bars/s  ({raw_bars:,} bars)")
    print(
        f"xray ingest via ccxt, throttle lifted     {fast:>12,.0f} bars/s  ({fast_bars:,} bars)"
        f"  ratio to raw {fast / raw:.2f}"
    )
    print(
        f"xray ingest via ccxt, MEXC's 20 req/s     {throttled:>12,.0f} bars/s  ({throttled_bars:,} bars)"
        f"  ratio to raw {throttled / raw:.2f}"
    )


if __name__ == "__main__":
    main()
