"""Per-key ccxt client creation: the pool's template copy against constructing ccxt.mexc each time.

Against a loopback emulator (markets loaded once), measures the mean cost of making a client for a
new API key three ways:

* construct: `ccxt.async_support.mexc({...})` with the key (no markets),
* construct + set_markets: the same, then `set_markets` from an already loaded table (what a client
  needs before it can trade without its own load_markets request),
* pool: `ExchangePool.client(account)` — a shallow copy of the pool's template with the per-key
  fields replaced, sharing the markets table.

Prints milliseconds per client and the ratios. It prints; it does not fail.
Run: `.venv/bin/python benchmarks/bench_exchange_pool.py [--clients N]`.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import ccxt.async_support as ccxt_async

from xray_runtime.exchange_pool import ExchangeAccount, ExchangePool
from xray_sim.exchange.config import EmulatorConfig
from xray_sim.exchange.server import start_emulator


async def measure(base_url: str, clients: int) -> dict[str, float]:
    pool = ExchangePool(max_clients=clients + 1)
    warm = await pool.client(ExchangeAccount.of("warm", "mexc", base_url, "warm-key", "secret"))
    markets, currencies = warm.markets, warm.currencies
    timings: dict[str, float] = {}

    started = time.perf_counter()
    for i in range(clients):
        ccxt_async.mexc({"apiKey": f"key{i}", "secret": "secret", "enableRateLimit": True})
    timings["construct"] = (time.perf_counter() - started) / clients * 1000

    started = time.perf_counter()
    for i in range(clients):
        exchange = ccxt_async.mexc({"apiKey": f"key{i}", "secret": "secret", "enableRateLimit": True})
        exchange.set_markets(markets, currencies)
    timings["construct + set_markets"] = (time.perf_counter() - started) / clients * 1000

    accounts = [ExchangeAccount.of(f"user{i}", "mexc", base_url, f"key{i}", "secret") for i in range(clients)]
    started = time.perf_counter()
    for account in accounts:
        await pool.client(account)
    timings["pool (template copy)"] = (time.perf_counter() - started) / clients * 1000
    await pool.close()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=2000)
    args = parser.parse_args()
    with start_emulator(EmulatorConfig(port=0, history_days=5)) as emulator:
        timings = asyncio.run(measure(emulator.base_url, args.clients))
    pool_ms = timings["pool (template copy)"]
    for name, ms in timings.items():
        print(f"{name:<26} {ms:8.3f} ms per client   {ms / pool_ms:6.1f}x the pool")


if __name__ == "__main__":
    main()
