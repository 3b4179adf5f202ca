"""How the trading runtime's decision latency and memory grow from 100 to 10,000 users.

Each scale runs `xray loadtest --users N --symbols 50 --ticks 5 --json` in a fresh process (so peak
RSS is that scale's own), and prints latency and memory with their growth against the smallest
scale. The peer for the decision step is the one-bot-per-account design (Freqtrade runs one bot per
account; each evaluates its strategy on its own): the same strategy evaluated once per user and
symbol, timed in this process at the smaller scales, against X-Ray's one evaluation per symbol fanned
out to every user with vector operations.

    .venv/bin/python benchmarks/bench_runtime.py                    # 100, 1000, 10000 users
    .venv/bin/python benchmarks/bench_runtime.py --scales 100 1000  # quicker
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def loadtest(users: int, symbols: int, ticks: int) -> dict:
    xray = Path(sys.executable).with_name("xray")
    command = [str(xray), "loadtest", "--users", str(users), "--symbols", str(symbols), "--ticks", str(ticks),
               "--json"]
    began = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall_s"] = round(time.perf_counter() - began, 1)
    return result


def per_user_baseline(users: int, symbols: int, bars: int = 400, repeats: int = 1) -> float:
    """Seconds to decide one bar the one-bot-per-account way: each user evaluates the strategy on
    each symbol's bars itself."""
    from xray_core.candles.bars import Bars
    from xray_core.strategies import Mode, get_strategy

    strategy = get_strategy("sma_cross")
    params = strategy.params({"fast": 10, "slow": 30})
    rng = np.random.default_rng(0)
    series = []
    for _ in range(symbols):
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, bars)))
        stamps = np.arange(bars, dtype=np.int64) * 60_000
        series.append(Bars(stamps, close, close, close, close, np.ones(bars)))
    strategy.decide(series[0], params, Mode.LONG_ONLY)  # compile outside the timing
    best = float("inf")
    for _ in range(repeats):
        began = time.perf_counter()
        for _ in range(users):
            for bars_ in series:
                strategy.decide(bars_, params, Mode.LONG_ONLY)
        best = min(best, time.perf_counter() - began)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", type=int, nargs="+", default=[100, 1000, 10_000])
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument("--ticks", type=int, default=5)
    parser.add_argument("--baseline-max-users", type=int, default=1000,
                        help="time the per-user baseline up to this many users (it grows linearly)")
    args = parser.parse_args()

    rows = [loadtest(n, args.symbols, args.ticks) for n in args.scales]
    base = rows[0]
    print(f"\nruntime decision latency and memory ({args.symbols} symbols, {args.ticks} ticks, 2 cores)\n")
    header = (f"{'users':>7} {'p50 ms':>8} {'p99 ms':>8} {'p99 x':>7} {'peak RSS MB':>12} {'RSS x':>7} "
              f"{'orders':>7} {'429s':>5} {'dup':>4} {'lost':>5} {'mism':>5} {'wall s':>7}")
    print(header)
    print("-" * len(header))
    for row in rows:
        print(f"{row['users']:>7} {row['p50_ms']:>8.1f} {row['p99_ms']:>8.1f} "
              f"{row['p99_ms'] / base['p99_ms']:>7.2f} {row['peak_rss_mb']:>12.1f} "
              f"{row['peak_rss_mb'] / base['peak_rss_mb']:>7.2f} {row['orders']:>7} "
              f"{row['rate_limit_violations']:>5} {row['duplicate_orders']:>4} {row['lost_fills']:>5} "
              f"{row['state_mismatches']:>5} {row['wall_s']:>7.1f}")
    users_growth = rows[-1]["users"] / base["users"]
    print(f"\nusers x{users_growth:.0f}: p99 latency x{rows[-1]['p99_ms'] / base['p99_ms']:.2f}, "
          f"peak RSS x{rows[-1]['peak_rss_mb'] / base['peak_rss_mb']:.2f}")

    print("\none decision pass for every user: X-Ray (once per symbol, fanned out) vs one bot per account")
    for row in rows:
        users = row["users"]
        if users > args.baseline_max_users:
            continue
        baseline_s = per_user_baseline(users, args.symbols)
        ours_s = row["p50_ms"] / 1000
        print(f"{users:>7} users: per-account bots {baseline_s * 1000:>9.1f} ms, "
              f"X-Ray {ours_s * 1000:>7.1f} ms (incl. fetching candles) -> ratio {ours_s / baseline_s:.4f}")


if __name__ == "__main__":
    main()
