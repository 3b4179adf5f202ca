"""`xray backtest-grid` as a user runs it, against an equivalent stand-alone vectorbt script.

Data: 20 healthy symbols of the synthetic market (`SyntheticMarket(seed=7)`, TGT and SRM skipped), one
year of hourly bars each (8,760), written as candle files BASE_USDT-1h.parquet into a temporary folder.
Grid: fast 5..50 step 5, slow 20..200 step 20, fast < slow: 90 pairs x 20 symbols = 1,800 runs, fee 0.1%.

Timed as whole cold processes (subprocess, wall clock), each command once as a discarded warm-up (so
the OS file cache and numba's on-disk caches are warm for both; its output is kept for the equality
check), then 3 timed runs each, interleaved (a, b, a, b, ...), stdout to /dev/null:

  (a) xray backtest-grid --candles DIR --strategy sma_cross --grid fast=5:50:5 --grid slow=20:200:20
      --fee 0.001 --json
  (b) python DIR/vectorbt_grid.py DIR: reads the same files with polars, `vbt.MA.run(close, windows)`,
      `vbt.Portfolio.from_signals(close=close, price=open, entries/exits = SMA(fast) > SMA(slow) shifted
      one bar, fees=0.001, init_cash=10000, direction='longonly')` for every fast < slow pair, and
      prints final equity, total return, Sharpe, max drawdown and trade count as JSON.

Prints both medians, their ratio (target: (a) under a fifth of (b)) and the agreement of the final
equities and trade counts. It prints; it does not fail.
Run: `.venv/bin/python benchmarks/bench_backtest_cli.py [--dir DIR] [--runs N]`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

import numpy as np
import polars as pl

SYMBOLS = 20
DAYS = 365
CHUNK_DAYS = 30  # generate a month at a time so the market's day cache stays small
SKIP = ("TGT", "SRM")  # the broken listings
FAST, SLOW, FEE, CASH = (5, 50, 5), (20, 200, 20), 0.001, 10_000.0
XRAY = str(Path(sys.executable).with_name("xray"))

VECTORBT_SCRIPT = f'''"""The vectorbt side of benchmarks/bench_backtest_cli.py: the same grid, stand-alone."""
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import vectorbt as vbt

FAST = range({FAST[0]}, {FAST[1] + 1}, {FAST[2]})
SLOW = range({SLOW[0]}, {SLOW[1] + 1}, {SLOW[2]})
FEE, CASH = {FEE}, {CASH}
files = sorted(Path(sys.argv[1]).glob("*.parquet"))
frames = {{p.name: pl.read_parquet(p, columns=["timestamp", "open", "close"]) for p in files}}
index = pd.DatetimeIndex(next(iter(frames.values()))["timestamp"].to_pandas())
close = pd.DataFrame({{n: f["close"].to_numpy() for n, f in frames.items()}}, index=index)
open_ = pd.DataFrame({{n: f["open"].to_numpy() for n, f in frames.items()}}, index=index)
pairs = [(f, s) for f in FAST for s in SLOW if f < s]
windows = sorted({{w for pair in pairs for w in pair}})
ma = vbt.MA.run(close, window=windows).ma
by_window = {{w: ma.xs(w, axis=1, level="ma_window")[list(frames)].to_numpy() for w in windows}}
above = np.column_stack([by_window[f][:, k] > by_window[s][:, k]
                         for k in range(len(frames)) for f, s in pairs])
entries = np.zeros_like(above)
entries[1:] = above[:-1]  # decided at the close, filled at the next open
reps = len(pairs)
pf = vbt.Portfolio.from_signals(
    close=np.repeat(close.to_numpy(), reps, axis=1), price=np.repeat(open_.to_numpy(), reps, axis=1),
    entries=entries, exits=~entries, direction="longonly", fees=FEE, init_cash=CASH, freq="1h")
table = {{
    "final_equity": pf.final_value().to_numpy(),
    "total_return": pf.total_return().to_numpy(),
    "sharpe": pf.sharpe_ratio().to_numpy(),
    "max_drawdown": -pf.max_drawdown().to_numpy(),
    "n_trades": pf.trades.count().to_numpy(),
}}
rows = [{{"file": name, "fast": f, "slow": s, **{{k: v[k_run].item() for k, v in table.items()}}}}
        for k_run, (name, (f, s)) in enumerate((n, p) for n in frames for p in pairs)]
print(json.dumps(rows))
'''


def write_candles(folder: Path) -> list[str]:
    """One year of hourly candles for the first 20 healthy symbols, as BASE_USDT-1h.parquet files."""
    from xray_core.candles.schema import CANDLE_SCHEMA
    from xray_sim.exchange.market import DAY_MS, SyntheticMarket

    market = SyntheticMarket(seed=7, history_days=DAYS)
    specs = [spec for spec in market.specs if spec.base not in SKIP][:SYMBOLS]
    start = market.listed_from_ms
    end = start + DAYS * DAY_MS
    parts: dict[str, list] = {spec.symbol: [] for spec in specs}
    for lo in range(start, end, CHUNK_DAYS * DAY_MS):
        hi = min(lo + CHUNK_DAYS * DAY_MS, end)
        for spec in specs:
            parts[spec.symbol].append(market.bars(spec.symbol, "1h", lo, hi, end))
    for spec in specs:
        bars = parts[spec.symbol]
        columns = {f: np.concatenate([getattr(b, f) for b in bars])
                   for f in ("timestamp", "open", "high", "low", "close", "volume")}
        frame = pl.DataFrame(columns).with_columns(
            pl.col("timestamp").cast(pl.Datetime("ms")).dt.replace_time_zone("UTC"))
        assert frame.schema == CANDLE_SCHEMA and frame.height == DAYS * 24, (spec.symbol, frame.shape)
        frame.write_parquet(folder / f"{spec.base}_{spec.quote}-1h.parquet")
    return [spec.symbol for spec in specs]


def run(command: list[str], capture: bool) -> tuple[float, str]:
    """Wall-clock seconds of one whole process (and its stdout when `capture`)."""
    start = time.perf_counter()
    result = subprocess.run(command, stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, check=False)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr}")
    return seconds, result.stdout if capture else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, help="use (and keep) this folder; reuse its candle files")
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each command")
    args = parser.parse_args()
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
        bench(args.dir, args.runs)
        return
    with tempfile.TemporaryDirectory(prefix="bench-backtest-cli-") as folder:
        bench(Path(folder), args.runs)


def bench(folder: Path, runs: int) -> None:
    t0 = time.perf_counter()
    if len(list(folder.glob("*-1h.parquet"))) != SYMBOLS:
        symbols = write_candles(folder)
        print(f"wrote {len(symbols)} x {DAYS * 24:,} hourly candle files to {folder} "
              f"(SyntheticMarket seed 7, {time.perf_counter() - t0:.1f} s)")
    else:
        print(f"reusing the {SYMBOLS} candle files in {folder}")
    script = folder / "vectorbt_grid.py"
    script.write_text(VECTORBT_SCRIPT)
    grid = [f"--grid=fast={FAST[0]}:{FAST[1]}:{FAST[2]}", f"--grid=slow={SLOW[0]}:{SLOW[1]}:{SLOW[2]}"]
    commands = {
        "xray backtest-grid": [XRAY, "backtest-grid", "--candles", str(folder), "--strategy", "sma_cross",
                               *grid, "--fee", str(FEE), "--json"],
        "vectorbt script": [sys.executable, str(script), str(folder)],
    }
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {load}")
    print("method: one discarded warm-up run of each (OS file cache and numba's on-disk caches warm for "
          f"both; outputs kept for the check), then {runs} timed runs of each, interleaved, "
          "stdout to /dev/null, wall clock of the whole process")
    outputs = {}
    for name, command in commands.items():
        seconds, outputs[name] = run(command, capture=True)
        print(f"  warm-up {name}: {seconds:.2f} s")
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, command in commands.items():
            times[name].append(run(command, capture=False)[0])
    ours, theirs = (median(times[name]) for name in commands)
    for name, values in times.items():
        print(f"  {name:20} median {median(values):6.2f} s   runs: {' '.join(f'{v:.2f}' for v in values)}")
    ratio = ours / theirs
    verdict = "met" if ratio < 0.2 else "NOT met"
    print(f"ratio xray / vectorbt = {ratio:.3f} (vectorbt takes {theirs / ours:.1f}x as long); "
          f"target < 0.2: {verdict}")

    rows = {(r["file"], r["fast"], r["slow"]): r for r in json.loads(outputs["xray backtest-grid"])}
    vbt_rows = json.loads(outputs["vectorbt script"])
    assert len(rows) == len(vbt_rows) == SYMBOLS * 90, (len(rows), len(vbt_rows))
    ours_eq = np.array([rows[(r["file"], r["fast"], r["slow"])]["final_equity"] for r in vbt_rows])
    theirs_eq = np.array([r["final_equity"] for r in vbt_rows])
    same_trades = sum(rows[(r["file"], r["fast"], r["slow"])]["n_trades"] == r["n_trades"] for r in vbt_rows)
    print(f"agreement over {len(vbt_rows):,} runs: max relative difference of final equity "
          f"{np.max(np.abs(ours_eq / theirs_eq - 1.0)):.2e}; trade counts equal in {same_trades:,}")
    print(f"total benchmark time {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
