"""Constructed price paths and target series for the backtest tests."""

import numpy as np

from xray_core.backtest import Prices, run_backtest

HOUR = 3_600_000


def hourly(open_, high, low, close) -> Prices:
    """A constructed path of hourly bars."""
    open_, high, low, close = (np.asarray(a, dtype=np.float64) for a in (open_, high, low, close))
    stamps = 1_700_000_000_000 - 1_700_000_000_000 % HOUR + np.arange(len(close), dtype=np.int64) * HOUR
    return Prices.from_arrays(open_, high, low, close, stamps)


def random_walk(n: int, seed: int, vol: float = 0.01) -> Prices:
    """A geometric random walk with plausible wicks."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, vol, n)))
    open_ = np.r_[100.0, close[:-1]] * np.exp(rng.normal(0.0, vol / 4, n))
    wick = np.abs(rng.normal(0.0, vol, (2, n)))
    return hourly(open_, np.maximum(open_, close) * np.exp(wick[0]),
                  np.minimum(open_, close) * np.exp(-wick[1]), close)


def random_targets(n: int, seed: int, long_short: bool, mean_run: float = 12.0) -> np.ndarray:
    """Targets that hold each value for a random (geometric) number of bars."""
    rng = np.random.default_rng(seed)
    values = np.array([-1, 0, 1] if long_short else [0, 1], dtype=np.int8)
    out = np.empty(n, dtype=np.int8)
    i = 0
    while i < n:
        run = int(rng.geometric(1.0 / mean_run))
        out[i:i + run] = rng.choice(values)
        i += run
    return out


def backtest(prices: Prices, positions, config, atr=None, with_trades: bool = True):
    """`run_backtest` on a `Prices`."""
    return run_backtest(prices.open, prices.high, prices.low, prices.close, prices.timestamps_ms,
                        np.asarray(positions, dtype=np.int8), config, atr=atr, with_trades=with_trades)
