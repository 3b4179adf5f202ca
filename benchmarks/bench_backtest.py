"""Backtest throughput: the fused SMA-cross grid against vectorbt 1.2.0 on the same work.

Data: the first 20 healthy symbols of the synthetic market (`SyntheticMarket(seed=7)`, no defects),
one year of hourly bars each (8,760), generated from its 1-minute model and aggregated by the
emulator (`market.bars(symbol, "1h", ...)`), so the series have its regimes, fat tails and volume.
Grid: fast 5..50 step 5, slow 20..200 step 20, fast < slow: 90 pairs x 20 symbols = 1,800 runs.
Semantics: long while SMA(fast) > SMA(slow) at the close, filled at the next open, fee 0.1%,
slippage 0.05%, all-in, a final open position valued at the last close.

Measured in one process, each library's cold time (first call, JIT compilation included: numba's
cache points at an empty temporary folder unless --use-cache) and warm time (median of several calls):

* xray fused grid: `sma_cross_grid` — moving averages, signals, fills and the 11 metrics.
* xray generic engine: `run_many` per symbol over a precomputed (bars x 90) target matrix (warm only).
* vectorbt, final equity: `vbt.MA.run` over the distinct windows, the same signal shifted one bar,
  `Portfolio.from_signals(close=close, price=open, ...)` and `final_value()` (close and open tiled to
  one column per run beforehand, outside the timing).
* vectorbt, same metrics: the above plus total/annualised return, Sharpe, Sortino, max drawdown,
  Calmar, win rate, profit factor, exposure and trade count — the table the fused grid returns.

Prints bar-evaluations per second (runs x bars / s) and the speed-ups, and checks that both produce
the same final equities (max relative difference) and trade counts. It prints; it does not fail.
Run: `.venv/bin/python benchmarks/bench_backtest.py [--use-cache] [--warm-runs N]`.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from statistics import median

import numpy as np

SYMBOLS = 20
DAYS = 365
CHUNK_DAYS = 30  # generate the market a month at a time so its day cache stays small
FAST = range(5, 51, 5)
SLOW = range(20, 201, 20)
FEE, SLIPPAGE, CASH = 0.001, 0.0005, 10_000.0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--use-cache", action="store_true",
                        help="use numba's normal cache: cold times then measure loading, not compiling")
    parser.add_argument("--warm-runs", type=int, default=9, help="warm calls of the xray kernels")
    parser.add_argument("--vbt-warm-runs", type=int, default=7,
                        help="warm calls of vectorbt (its times vary more)")
    return parser.parse_args()


ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None and not ARGS.use_cache:
    os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench-backtest-numba-")

import numba  # noqa: E402  (numba reads NUMBA_CACHE_DIR when first imported)
import pandas as pd  # noqa: E402
import vectorbt as vbt  # noqa: E402

from xray_core.backtest import BacktestConfig, Prices, run_many, sma_cross_grid  # noqa: E402
from xray_core.backtest.grid import sma_cross_positions  # noqa: E402
from xray_sim.exchange.market import DAY_MS, SyntheticMarket  # noqa: E402


def synthetic_prices() -> dict[str, Prices]:
    market = SyntheticMarket(seed=7, history_days=DAYS)
    symbols = [spec.symbol for spec in market.specs if not spec.defects][:SYMBOLS]
    start = market.listed_from_ms
    end = start + DAYS * DAY_MS
    parts: dict[str, list] = {s: [] for s in symbols}
    for lo in range(start, end, CHUNK_DAYS * DAY_MS):
        hi = min(lo + CHUNK_DAYS * DAY_MS, end)
        for symbol in symbols:
            parts[symbol].append(market.bars(symbol, "1h", lo, hi, end))
    prices = {}
    for symbol, bars in parts.items():
        fields = {f: np.concatenate([getattr(b, f) for b in bars])
                  for f in ("timestamp", "open", "high", "low", "close")}
        prices[symbol] = Prices.from_arrays(fields["open"], fields["high"], fields["low"], fields["close"],
                                            fields["timestamp"], symbol)
    return prices


def timed(fn: Callable[[], object], runs: int) -> tuple[float, list[float], object]:
    """(first call's seconds, the following calls' seconds, the first call's result)."""
    start = time.perf_counter()
    result = fn()
    cold = time.perf_counter() - start
    warm = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        warm.append(time.perf_counter() - start)
    return cold, warm, result


def vectorbt_inputs(prices: dict[str, Prices], pairs: list[tuple[int, int]]
                    ) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The closes as vectorbt's MA takes them, and close/open tiled to one column per run (prepared
    outside the timing: it is glue, not vectorbt's work)."""
    symbols = list(prices)
    index = pd.to_datetime(prices[symbols[0]].timestamps_ms, unit="ms", utc=True)
    close = pd.DataFrame({s: prices[s].close for s in symbols}, index=index)
    open_ = np.column_stack([prices[s].open for s in symbols])
    reps = len(pairs)
    return close, np.repeat(close.to_numpy(), reps, axis=1), np.repeat(open_, reps, axis=1)


def vectorbt_grid(inputs: tuple[pd.DataFrame, np.ndarray, np.ndarray], pairs: list[tuple[int, int]],
                  full: bool) -> pd.DataFrame:
    """vectorbt on the grid: final equity (and, when `full`, the metrics the fused grid returns)."""
    close, close_runs, open_runs = inputs
    symbols = list(close.columns)
    windows = sorted({w for pair in pairs for w in pair})
    ma = vbt.MA.run(close, window=windows).ma
    by_window = {w: ma.xs(w, axis=1, level="ma_window")[symbols].to_numpy() for w in windows}
    above = np.column_stack([by_window[f][:, k] > by_window[s][:, k]
                             for k in range(len(symbols)) for f, s in pairs])
    entries = np.zeros_like(above)
    entries[1:] = above[:-1]  # decided at the close, filled at the next open
    pf = vbt.Portfolio.from_signals(
        close=close_runs, price=open_runs, entries=entries, exits=~entries, direction="longonly",
        fees=FEE, slippage=SLIPPAGE, init_cash=CASH, freq="1h")
    table = {"final_equity": pf.final_value().to_numpy()}
    if full:
        trades = pf.trades
        table |= {
            "total_return": pf.total_return().to_numpy(),
            "cagr": pf.annualized_return().to_numpy(),
            "sharpe": pf.sharpe_ratio().to_numpy(),
            "sortino": pf.sortino_ratio().to_numpy(),
            "max_drawdown": -pf.max_drawdown().to_numpy(),
            "calmar": pf.calmar_ratio().to_numpy(),
            "win_rate": trades.win_rate().to_numpy(),
            "profit_factor": trades.profit_factor().to_numpy(),
            "exposure": pf.position_coverage().to_numpy(),
            "n_trades": trades.count().to_numpy(),
        }
    return pd.DataFrame(table)


def generic_grid(prices: dict[str, Prices], pairs: list[tuple[int, int]], config: BacktestConfig,
                 targets: dict[str, np.ndarray]) -> None:
    for symbol, p in prices.items():
        run_many(p, targets[symbol], config)


def main() -> None:
    assert ARGS is not None
    t0 = time.perf_counter()
    prices = synthetic_prices()
    n_bars = {len(p) for p in prices.values()}
    pairs = [(f, s) for f in FAST for s in SLOW if f < s]
    runs = len(prices) * len(pairs)
    evals = runs * sum(len(p) for p in prices.values()) // len(prices)
    print(f"data: {len(prices)} symbols x {sorted(n_bars)} hourly bars (SyntheticMarket seed 7, "
          f"generated in {time.perf_counter() - t0:.1f} s); grid {len(pairs)} pairs -> {runs:,} runs, "
          f"{evals:,} bar-evaluations per grid")
    cache = "normal numba cache" if ARGS.use_cache else "empty numba cache (cold = JIT compile included)"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs (load average {load}), {cache}\n")

    config = BacktestConfig(fee=FEE, slippage=SLIPPAGE, cash=CASH)
    fused_cold, fused_warm, table = timed(lambda: sma_cross_grid(prices, FAST, SLOW, config), ARGS.warm_runs)
    threads = numba.get_num_threads()
    numba.set_num_threads(1)  # vectorbt runs on one core: the like-for-like view, and robust to load
    _, single_warm, _ = timed(lambda: sma_cross_grid(prices, FAST, SLOW, config), ARGS.warm_runs)
    numba.set_num_threads(threads)

    targets = {s: np.column_stack([sma_cross_positions(p.close, f, sl) for f, sl in pairs])
               for s, p in prices.items()}
    generic_grid(prices, pairs, config, targets)  # compile outside the timing
    _, generic_warm, _ = timed(lambda: generic_grid(prices, pairs, config, targets), ARGS.warm_runs)

    vbt_runs = ARGS.vbt_warm_runs
    inputs = vectorbt_inputs(prices, pairs)
    vbt_cold, vbt_warm, vbt_final = timed(lambda: vectorbt_grid(inputs, pairs, full=False), vbt_runs)
    full_cold, full_warm, vbt_full = timed(lambda: vectorbt_grid(inputs, pairs, full=True), vbt_runs)

    rows = [(f"xray fused grid ({threads} threads)", fused_cold, fused_warm),
            ("xray fused grid (1 thread)", None, single_warm),
            (f"xray generic run_many ({threads} thr.)", None, generic_warm),
            ("vectorbt: final equity", vbt_cold, vbt_warm),
            ("vectorbt: same metrics table", full_cold, full_warm)]
    print(f"{'':34}{'cold s':>8}{'warm s median':>15}{'min':>9}{'bar-evals/s':>13}   warm calls (s)")
    for name, cold, warm in rows:
        cold_text = f"{cold:8.2f}" if cold is not None else f"{'-':>8}"
        print(f"{name:34}{cold_text}{median(warm):15.4f}{min(warm):9.4f}{evals / median(warm):13.3g}   "
              f"{' '.join(f'{w:.3f}' for w in warm)}")
    print("\nspeed-up of the fused grid (ratios of warm medians):")
    for label, ours in ((f"{threads} threads", median(fused_warm)), ("1 thread", median(single_warm))):
        print(f"  {label:>10}: {median(full_warm) / ours:5.0f}x vectorbt on the same metrics table, "
              f"{median(vbt_warm) / ours:5.0f}x vectorbt's final equity alone")
    what = "first calls, JIT compilation included on both sides" if not ARGS.use_cache else "first calls"
    print(f"  {'cold':>10}: {full_cold / fused_cold:5.1f}x / {vbt_cold / fused_cold:.1f}x ({what})")

    ours = table["final_equity"].to_numpy()
    theirs = vbt_final["final_equity"].to_numpy()
    rel = np.abs(ours / theirs - 1.0)
    same_trades = int((table["n_trades"].to_numpy() == vbt_full["n_trades"].to_numpy()).sum())
    print(f"equality: max relative difference of final equity {rel.max():.2e} over {runs:,} runs; "
          f"trade counts equal in {same_trades:,}/{runs:,}")
    for name in ("sharpe", "max_drawdown", "exposure"):
        diff = np.abs(table[name].to_numpy() - vbt_full[name].to_numpy()) / np.abs(vbt_full[name].to_numpy())
        print(f"          max relative difference of {name}: {np.nanmax(diff):.2e}")
    print(f"total benchmark time {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
