"""Bulk set-up paths that tests only check for correctness: their speed is measured here, each against
the floor of the same work done by hand in the same run.

* users: `UserStore.add_many` of N users (API keys encrypted, one transaction) against the floor —
  the same rows Fernet-encrypted in a loop and inserted with one SQLAlchemy executemany;
* accounts: the emulator's `POST /_emulator/accounts {"count": N}` against the floor — N keys and
  secrets drawn with `secrets` and the JSON answer encoded, in this process;
* optimiser: a 40-trial NSGA-II study (2 symbols x 3,000 real 5m bars, 3 walk-forward folds, SQLite
  storage) against the floor — the same 40 parameter sets scored by `evaluate` directly, no Optuna.

Prints seconds and ratios (how many times the floor). It prints; it does not fail.
Run: `.venv/bin/python benchmarks/bench_bulk.py [--users N] [--repeat R]`.
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import optuna
import requests
import sqlalchemy as sa

from xray_core.backtest import BacktestConfig
from xray_core.candles.bars import Bars
from xray_core.candles.schema import read_parquet
from xray_core.optimize import FoldConfig, OptimizeConfig, evaluate, optimize, prepare_windows, sqlite_url
from xray_runtime.crypto import KeyVault, generate_key
from xray_runtime.db import connect
from xray_runtime.users import NewUser, UserStore

CANDLES = Path(__file__).resolve().parents[1] / "tests" / "data" / "candles"


def median_s(work: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def bench_users(n: int, repeat: int) -> tuple[float, float]:
    users = [NewUser(f"user{i:06d}", f"User {i}", f"key-{i}", f"secret-{i}") for i in range(n)]
    vault = KeyVault(generate_key())

    def store() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            engine = connect(f"sqlite:///{Path(tmp) / 'runtime.db'}")
            UserStore(engine, vault).add_many(users)
            engine.dispose()

    def floor() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            engine = sa.create_engine(f"sqlite:///{Path(tmp) / 'floor.db'}")
            table = sa.Table("users", sa.MetaData(), sa.Column("user_id", sa.String, primary_key=True),
                             sa.Column("key", sa.LargeBinary), sa.Column("secret", sa.LargeBinary))
            table.metadata.create_all(engine)
            rows = [{"user_id": u.user_id, "key": vault.encrypt(u.api_key).encode(),
                     "secret": vault.encrypt(u.api_secret).encode()} for u in users]
            with engine.begin() as conn:
                conn.execute(table.insert(), rows)
            engine.dispose()

    return median_s(store, repeat), median_s(floor, repeat)


def bench_accounts(n: int, repeat: int) -> tuple[float, float]:
    from xray_sim.exchange.config import EmulatorConfig
    from xray_sim.exchange.server import start_emulator

    with start_emulator(EmulatorConfig(port=0, history_days=2)) as emulator:
        url = emulator.base_url + "/_emulator/accounts"
        served = median_s(lambda: requests.post(url, json={"count": n}, timeout=300).json(), repeat)

    def floor() -> None:
        accounts = [{"key": "mx0v" + secrets.token_hex(8), "secret": secrets.token_hex(16),
                     "funds": {"USDT": "10000"}} for _ in range(n)]
        json.loads(json.dumps({"accounts": accounts}))

    return served, median_s(floor, repeat)


def bench_optimiser(repeat: int) -> tuple[float, float]:
    cluster = {s: Bars.from_frame(read_parquet(CANDLES / f"{s}-5m.parquet")).take(slice(0, 3000))
               for s in ("ETH_BTC", "LTC_BTC")}
    folds = FoldConfig(n_folds=3, min_train_bars=1000, embargo_bars=12)
    config = OptimizeConfig(n_trials=40, seed=7, population_size=10, folds=folds, min_trades=5)
    backtest = BacktestConfig(fee=0.0)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    optimize("sma_cross", cluster, config, backtest, None, "warm-up")  # numba compilation, not measured
    params: list[dict[str, int]] = []

    def study() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            result = optimize("sma_cross", cluster, config, backtest, sqlite_url(Path(tmp) / "s.db"), "bench")
        params[:] = [{"fast": int(r["param_fast"]), "slow": int(r["param_slow"])}
                     for r in result.trials.filter(result.trials["status"] == "ok").iter_rows(named=True)]

    studied = median_s(study, repeat)
    windows = prepare_windows(cluster, folds)
    floor = median_s(lambda: [evaluate("sma_cross", p, windows, backtest) for p in params], repeat)
    return studied, floor * 40 / max(len(params), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rows = [
        (f"add_many {args.users:,} users", *bench_users(args.users, args.repeat)),
        (f"emulator {args.users:,} accounts", *bench_accounts(args.users, args.repeat)),
        ("40-trial study", *bench_optimiser(args.repeat)),
    ]
    print(f"{'path':<28} {'seconds':>9} {'floor s':>9} {'ratio':>7}")
    for name, seconds, floor in rows:
        print(f"{name:<28} {seconds:9.3f} {floor:9.3f} {seconds / floor:7.2f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
