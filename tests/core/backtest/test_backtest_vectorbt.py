"""Equality with vectorbt 1.2.0 on the real candles: the acceptance test of the engine's semantics.

vectorbt is configured to mean exactly what the engine means:

* `price=open`: orders fill at the bar's open. `close=close`: positions are valued at the close, so a
  position still open at the end is worth size x last close without exit fee, as in the engine (with
  `close=open` vectorbt would value it at the last open instead).
* Signals shifted by one bar: the target decided at bar t's close is vectorbt's signal at bar t+1.
* long_only: entries = shifted target == 1, exits = its negation, no short signals (the same as
  `direction='longonly'`; every call passes the same argument types so vectorbt compiles once).
* long_short: long_entries = shifted == 1, long_exits = shifted != 1, short_entries = shifted == -1,
  short_exits = shifted != -1; vectorbt's default `upon_opposite_entry='reversereduce'` reverses at one
  open, closing and reopening all-in, which is the engine's reversal.
* all-in is vectorbt's default `size=inf`; size_fraction f is `size=f, size_type='percent'`.

Compared: final equity (1e-9 relative), trade count, every trade's pnl, and the Sharpe, Sortino, max
drawdown, exposure and (on files without gaps, where vectorbt's bar-count annualisation equals the
engine's timestamp-based one) CAGR.
"""

import numpy as np
import pandas as pd
import pytest
import vectorbt as vbt
from backtest_paths import random_targets

from xray_core.backtest import BacktestConfig, Prices, run_many, sma_cross_positions

FILES = ["ADA_BTC-5m", "BTC_USDT-5m", "ETH_BTC-5m", "LTC_BTC-5m", "UNITTEST_BTC-1m", "UNITTEST_BTC-30m",
         "XRP_ETH-1m", "XRP_USDT_USDT-5m-futures"]
FEE, SLIPPAGE, CASH = 0.001, 0.0005, 10_000.0
REL = 1e-9


def _patterns(prices: Prices, long_short: bool) -> np.ndarray:
    """Target patterns as columns: two SMA crosses, three random series, always in, and churn (a new
    target every bar for 400 bars, then every 7 bars; every bar throughout would grind the account
    down to 1e-11 of its cash on the longest files, where vectorbt snaps tiny values to zero)."""
    n = len(prices)
    bar = np.arange(n)
    churn = np.where(np.where(bar < 400, bar, bar // 7) % 2 == 0, 1, -1 if long_short else 0)
    columns = [
        sma_cross_positions(prices.close, 10, 40, long_short),
        sma_cross_positions(prices.close, 5, 20, long_short),
        *(random_targets(n, seed, long_short) for seed in (1, 2, 3)),
        np.ones(n),
        churn,
    ]
    return np.column_stack(columns).astype(np.int8)


def _through_flat(prices: Prices) -> np.ndarray:
    """Random long/short targets that always pass through flat (vectorbt cannot reverse with percent)."""
    out = []
    for seed in (4, 5, 6):
        targets = random_targets(len(prices), seed, long_short=True)
        flips = np.flatnonzero((targets[1:] * targets[:-1]) < 0) + 1
        targets[flips] = 0
        out.append(targets)
    return np.column_stack(out).astype(np.int8)


def _portfolio(prices: Prices, long_entries: np.ndarray, long_exits: np.ndarray, short_entries: np.ndarray,
               short_exits: np.ndarray, fraction: float = 1.0, sl_stop: np.ndarray | None = None,
               tp_stop: np.ndarray | None = None):
    """`Portfolio.from_signals` on (bars x runs) signals, always with the same argument types so that
    vectorbt's simulation (not cached by numba) compiles once per test session."""
    def column(values: np.ndarray | None) -> np.ndarray:
        return np.full((len(prices), 1), np.nan) if values is None else values.reshape(len(prices), -1)

    bar = pd.Timedelta(milliseconds=float(np.median(np.diff(prices.timestamps_ms))))
    return vbt.Portfolio.from_signals(
        close=column(prices.close), price=column(prices.open), open=column(prices.open),
        high=column(prices.high), low=column(prices.low), entries=long_entries, exits=long_exits,
        short_entries=short_entries, short_exits=short_exits, fees=FEE, slippage=SLIPPAGE, init_cash=CASH,
        size=np.inf if fraction == 1.0 else fraction, size_type="amount" if fraction == 1.0 else "percent",
        sl_stop=column(sl_stop), tp_stop=column(tp_stop), stop_entry_price="price",
        stop_exit_price="stopmarket", freq=bar)


def _vectorbt(prices: Prices, targets: np.ndarray, long_short: bool, fraction: float = 1.0):
    shifted = np.zeros_like(targets)
    shifted[1:] = targets[:-1]
    no = np.zeros_like(shifted, dtype=bool)
    if long_short:
        return _portfolio(prices, shifted == 1, shifted != 1, shifted == -1, shifted != -1, fraction)
    return _portfolio(prices, shifted == 1, shifted != 1, no, no, fraction)  # = direction='longonly'


def _compare(prices: Prices, targets: np.ndarray, long_short: bool, fraction: float = 1.0) -> None:
    config = BacktestConfig(fee=FEE, slippage=SLIPPAGE, cash=CASH, size_fraction=fraction,
                            mode="long_short" if long_short else "long_only")
    ours = run_many(prices, targets, config, with_trades=True)
    pf = _vectorbt(prices, targets, long_short, fraction)
    table = ours.metrics

    np.testing.assert_allclose(table["final_equity"].to_numpy(), pf.final_value().to_numpy(), rtol=REL)
    np.testing.assert_array_equal(table["n_trades"].to_numpy(), pf.trades.count().to_numpy())
    records = np.sort(pf.trades.records_arr, order=["col", "entry_idx"])
    assert ours.trades is not None
    np.testing.assert_allclose(ours.trades["pnl"].to_numpy(), records["pnl"], rtol=REL, atol=REL * CASH)
    np.testing.assert_allclose(ours.trades["size"].to_numpy(), records["size"], rtol=REL)
    np.testing.assert_allclose(table["sharpe"].to_numpy(), pf.sharpe_ratio().to_numpy(), rtol=1e-8)
    np.testing.assert_allclose(table["sortino"].to_numpy(), pf.sortino_ratio().to_numpy(), rtol=1e-8)
    np.testing.assert_allclose(table["max_drawdown"].to_numpy(), -pf.max_drawdown().to_numpy(), rtol=1e-8,
                               atol=1e-12)
    np.testing.assert_allclose(table["exposure"].to_numpy(), pf.position_coverage().to_numpy(), rtol=REL)
    steps = np.diff(prices.timestamps_ms)
    if (steps == steps[0]).all():
        np.testing.assert_allclose(table["cagr"].to_numpy(), pf.annualized_return().to_numpy(), rtol=1e-8)


@pytest.mark.parametrize("name", FILES)
@pytest.mark.parametrize("long_short", [False, True], ids=["long_only", "long_short"])
def test_equal_to_vectorbt_on_real_candles(real_prices, name, long_short):
    prices = real_prices[name]
    _compare(prices, _patterns(prices, long_short), long_short)


@pytest.mark.parametrize("name", ["BTC_USDT-5m", "ETH_BTC-5m", "UNITTEST_BTC-30m"])
def test_equal_to_vectorbt_with_a_size_fraction(real_prices, name):
    prices = real_prices[name]
    _compare(prices, _patterns(prices, long_short=False), long_short=False, fraction=0.4)
    _compare(prices, _through_flat(prices), long_short=True, fraction=0.4)


@pytest.mark.parametrize("name", FILES)
@pytest.mark.parametrize("long_short", [False, True], ids=["long_only", "long_short"])
def test_stops_equal_to_vectorbt(real_prices, name, long_short):
    """ATR stops as vectorbt percentage stops set at each entry: sl_stop = k x ATR[t] / open[t+1] from
    the order price (`stop_entry_price='price'`), filled at the level with slippage
    (`stop_exit_price='stopmarket'`) or at the open on a gap. Signals are edges (after a stop the
    engine waits for a new target) and change every 300 bars, rarely enough that no signal fill meets a
    stop in the same bar — the one case where vectorbt lets the stop override the signal."""
    prices = real_prices[name]
    n = len(prices)
    block = (np.arange(n) // 300) % 3
    targets = np.where(block == 1, -1 if long_short else 0, 1).astype(np.int8)
    spread = pd.Series(prices.high - prices.low)
    atr = spread.rolling(14).mean().to_numpy()
    config = BacktestConfig(fee=FEE, slippage=SLIPPAGE, cash=CASH, sl_atr=2.0, tp_atr=3.0,
                            mode="long_short" if long_short else "long_only")
    ours = run_many(prices, targets[:, None], config, atr=atr, with_trades=True)

    signal = np.zeros(n, dtype=np.int8)
    signal[1:] = targets[:-1]
    before = np.r_[0, signal[:-1]]
    edge = signal != before
    atr_at_signal = np.r_[np.nan, atr[:-1]]
    shorts = long_short * edge
    pf = _portfolio(prices, (edge & (signal == 1))[:, None], (edge & (before == 1))[:, None],
                    (shorts & (signal == -1))[:, None], (shorts & (before == -1))[:, None],
                    sl_stop=2.0 * atr_at_signal / prices.open, tp_stop=3.0 * atr_at_signal / prices.open)

    assert ours.metrics["final_equity"][0] == pytest.approx(pf.final_value().to_numpy()[0], rel=REL)
    assert ours.metrics["n_trades"][0] == pf.trades.count().to_numpy()[0]
    np.testing.assert_allclose(ours.trades["pnl"].to_numpy(), pf.trades.records_arr["pnl"], rtol=REL,
                               atol=REL * CASH)
    reasons = set(ours.trades["exit_reason"])
    assert "stop_loss" in reasons
