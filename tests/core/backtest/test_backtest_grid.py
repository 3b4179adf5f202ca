"""The fused SMA-cross grid: identical to the generic engine, vectorbt's moving average, clear errors."""

import numpy as np
import pytest
from backtest_paths import backtest, random_walk
from vectorbt.generic.nb import rolling_mean_1d_nb

from xray_core.backtest import METRIC_NAMES, BacktestConfig, sma_cross_grid, sma_cross_positions
from xray_core.backtest.grid import rolling_mean
from xray_core.candles.schema import read_parquet
from xray_core.errors import ConfigError, DataError

SYMBOLS = ["BTC_USDT-5m", "ETH_BTC-5m", "UNITTEST_BTC-30m", "XRP_ETH-1m"]
FAST, SLOW = [5, 10, 30], [20, 40]


def _assert_identical(grid_row: dict, metrics) -> None:
    for name in METRIC_NAMES:
        ours, generic = grid_row[name], getattr(metrics, name)
        assert ours == generic or (np.isnan(ours) and np.isnan(generic)), (name, ours, generic)


@pytest.mark.parametrize(
    "config",
    [
        BacktestConfig(fee=0.001, slippage=0.0005),
        BacktestConfig(fee=0.001, slippage=0.0005, mode="long_short"),
        BacktestConfig(
            fee=0.0005, mode="long_short", size_fraction=0.5, leverage=20.0, sl_atr=2.0, tp_atr=4.0
        ),
    ],
    ids=["long_only", "long_short", "levered_with_stops"],
)
def test_grid_rows_are_identical_to_the_generic_engine(real_prices, config):
    prices = {name: real_prices[name] for name in SYMBOLS}
    atr = {name: np.abs(p.high - p.low) for name, p in prices.items()}  # any ATR-like series will do
    table = sma_cross_grid(prices, FAST, SLOW, config, atr=atr if config.uses_stops else None)
    pairs = [(f, s) for f in FAST for s in SLOW if f < s]
    assert table.height == len(SYMBOLS) * len(pairs)
    assert table.select("symbol", "fast", "slow").rows() == [(n, f, s) for n in SYMBOLS for f, s in pairs]
    for row in table.iter_rows(named=True):
        p = prices[row["symbol"]]
        targets = sma_cross_positions(p.close, row["fast"], row["slow"], config.mode == "long_short")
        generic = backtest(p, targets, config, atr=atr[row["symbol"]], with_trades=False)
        _assert_identical(row, generic.metrics)
    assert (table["n_trades"] > 0).all()


def test_grid_takes_candle_frames(real_prices, candles_dir):
    frame = read_parquet(candles_dir / "ETH_BTC-5m.parquet")
    config = BacktestConfig(fee=0.001)
    from_frame = sma_cross_grid({"ETH/BTC": frame}, [5], [20], config)
    from_prices = sma_cross_grid({"ETH/BTC": real_prices["ETH_BTC-5m"]}, [5], [20], config)
    assert from_frame.equals(from_prices)


def test_moving_average_is_vectorbts_bit_for_bit(real_prices):
    close = real_prices["BTC_USDT-5m"].close
    for window in (1, 5, 20, 200, len(close), len(close) + 5):
        ours = np.empty_like(close)
        rolling_mean(close, window, ours)
        np.testing.assert_array_equal(ours, rolling_mean_1d_nb(close, window))


def test_signal_is_long_above_short_below_flat_on_ties_and_warm_up():
    close = np.array([1.0, 1.0, 1.0, 2.0, 3.0, 2.0, 1.0, 1.0, 1.0, 1.0])
    np.testing.assert_array_equal(
        sma_cross_positions(close, 1, 2, long_short=True), [0, 0, 0, 1, 1, -1, -1, 0, 0, 0]
    )
    np.testing.assert_array_equal(sma_cross_positions(close, 1, 2), [0, 0, 0, 1, 1, 0, 0, 0, 0, 0])


def test_grid_errors_are_clear():
    prices = {"A": random_walk(150, seed=1)}
    config = BacktestConfig()
    with pytest.raises(DataError, match="A: 150 bars are too few for SMA\\(200\\)"):
        sma_cross_grid(prices, [5], [200], config)
    with pytest.raises(ConfigError, match="no fast < slow pair"):
        sma_cross_grid(prices, [50], [20], config)
    with pytest.raises(ConfigError, match="fast_periods must be positive whole numbers"):
        sma_cross_grid(prices, [0, 5], [20], config)
    with pytest.raises(ConfigError, match="no ATR was passed"):
        sma_cross_grid(prices, [5], [20], BacktestConfig(sl_atr=1.0))
    with pytest.raises(DataError, match="no symbols"):
        sma_cross_grid({}, [5], [20], config)


@pytest.mark.parametrize("mode", ["long_only", "long_short"])
def test_sharing_out_symbols_or_combinations_gives_identical_tables(real_prices, mode):
    """Many symbols run symbol by symbol (each thread keeps one symbol's averages in cache), few share
    out combinations; both must give the same numbers to the last bit."""
    import numba
    import polars as pl

    prices = {f"{name}#{k}": real_prices[name] for k in range(2) for name in SYMBOLS}  # 8 symbols
    config = BacktestConfig(fee=0.001, slippage=0.0005, mode=mode)
    threads = numba.get_num_threads()
    numba.set_num_threads(min(2, threads))  # 8 symbols >= 2 x threads: the symbol-by-symbol path
    try:
        together = sma_cross_grid(prices, FAST, SLOW, config)
        one_by_one = pl.concat([sma_cross_grid({name: p}, FAST, SLOW, config) for name, p in prices.items()])
    finally:
        numba.set_num_threads(threads)
    assert together.equals(one_by_one)
