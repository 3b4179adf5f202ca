"""The generic engine: hand-computed fills, no lookahead, metrics against numpy, clear input errors."""

import math

import numpy as np
import pytest
from backtest_paths import backtest, hourly, random_targets, random_walk

from xray_core.backtest import MIN_BARS, BacktestConfig, run_backtest, run_many
from xray_core.backtest.metrics import YEAR_MS
from xray_core.errors import ConfigError, DataError, XrayError

# A 5-bar path: opens 100..104, closes half a point above.
OPEN = [100.0, 101.0, 102.0, 103.0, 104.0]
CLOSE = [100.5, 101.5, 102.5, 103.5, 104.5]
FIVE = hourly(OPEN, np.add(CLOSE, 1.0), np.subtract(OPEN, 1.0), CLOSE)
FEE, SLIP, CASH = 0.001, 0.01, 1000.0


def _ms(stamp) -> int:
    return round(stamp.timestamp() * 1000)


def test_long_round_trip_by_hand():
    # Long decided at bar 0's close fills at bar 1's open; flat decided at bar 2 fills at bar 3's open.
    result = backtest(FIVE, [1, 1, 0, 0, 0], BacktestConfig(fee=FEE, slippage=SLIP, cash=CASH))
    buy = 101.0 * (1 + SLIP)  # 102.01
    size = CASH / (buy * (1 + FEE))
    sell = 103.0 * (1 - SLIP)  # 101.97
    final = size * sell * (1 - FEE)
    expected_equity = [CASH, size * 101.5, size * 102.5, final, final]
    np.testing.assert_allclose(result.equity, expected_equity, rtol=1e-13)
    assert result.metrics.final_equity == pytest.approx(final, rel=1e-13)
    assert result.metrics.n_trades == 1
    trade = result.trades.row(0, named=True)
    assert trade["side"] == "long" and trade["exit_reason"] == "signal"
    assert trade["entry_price"] == pytest.approx(buy, rel=1e-15)
    assert trade["exit_price"] == pytest.approx(sell, rel=1e-15)
    assert trade["size"] == pytest.approx(size, rel=1e-13)
    assert trade["pnl"] == pytest.approx(final - CASH, rel=1e-12)
    assert trade["return"] == pytest.approx((final - CASH) / (size * buy), rel=1e-12)
    assert _ms(trade["entry_time"]) == FIVE.timestamps_ms[1]
    assert _ms(trade["exit_time"]) == FIVE.timestamps_ms[3]
    assert result.metrics.exposure == pytest.approx(2 / 5)


def test_short_round_trip_by_hand():
    result = backtest(FIVE, [-1, -1, 0, 0, 0],
                      BacktestConfig(fee=FEE, slippage=SLIP, cash=CASH, mode="long_short"))
    sell = 101.0 * (1 - SLIP)
    size = CASH / (sell * (1 + FEE))
    cash_after_sale = CASH + size * sell * (1 - FEE)
    cover = 103.0 * (1 + SLIP)
    final = cash_after_sale - size * cover * (1 + FEE)
    np.testing.assert_allclose(result.equity, [CASH, cash_after_sale - size * 101.5,
                                               cash_after_sale - size * 102.5, final, final], rtol=1e-13)
    assert result.trades["side"].to_list() == ["short"]
    assert result.trades["pnl"][0] == pytest.approx(final - CASH, rel=1e-12)


def test_long_only_treats_short_targets_as_flat():
    config = BacktestConfig(fee=FEE, slippage=SLIP, cash=CASH)
    assert backtest(FIVE, [-1, -1, 0, 0, 0], config).metrics.n_trades == 0
    a = backtest(FIVE, [1, -1, 1, -1, 0], config)
    b = backtest(FIVE, [1, 0, 1, 0, 0], config)
    np.testing.assert_array_equal(a.equity, b.equity)


def test_reversal_closes_and_opens_at_the_same_open():
    config = BacktestConfig(fee=FEE, slippage=SLIP, cash=CASH, mode="long_short")
    result = backtest(FIVE, [1, -1, -1, -1, -1], config)
    trades = result.trades
    assert trades["side"].to_list() == ["long", "short"]
    assert _ms(trades["exit_time"][0]) == _ms(trades["entry_time"][1]) == FIVE.timestamps_ms[2]
    long_size = CASH / (101.0 * (1 + SLIP) * (1 + FEE))
    cash = long_size * 102.0 * (1 - SLIP) * (1 - FEE)
    assert trades["size"][1] == pytest.approx(cash / (102.0 * (1 - SLIP) * (1 + FEE)), rel=1e-13)
    # The short is still open at the end: valued at the last close, no exit fee.
    assert trades["exit_reason"][1] == "end" and trades["exit_price"][1] == 104.5


def test_open_position_is_valued_at_the_last_close_without_fee():
    result = backtest(FIVE, [1, 1, 1, 1, 1], BacktestConfig(fee=FEE, slippage=SLIP, cash=CASH))
    size = CASH / (101.0 * (1 + SLIP) * (1 + FEE))
    assert result.metrics.final_equity == pytest.approx(size * 104.5, rel=1e-14)
    assert result.trades["exit_reason"].to_list() == ["end"]


def test_size_fraction_keeps_the_rest_in_cash():
    result = backtest(FIVE, [1, 1, 0, 0, 0], BacktestConfig(fee=FEE, slippage=SLIP, cash=CASH,
                                                            size_fraction=0.25))
    size = 0.25 * CASH / (101.0 * (1 + SLIP) * (1 + FEE))
    final = 0.75 * CASH + size * 103.0 * (1 - SLIP) * (1 - FEE)
    assert result.metrics.final_equity == pytest.approx(final, rel=1e-13)


def test_leverage_scales_the_position():
    config = BacktestConfig(fee=0.0, slippage=0.0, cash=CASH, leverage=2.0)
    result = backtest(FIVE, [1, 1, 1, 1, 1], config)
    assert result.trades["size"][0] == pytest.approx(2 * CASH / 101.0)
    assert result.metrics.final_equity == pytest.approx(CASH + 2 * CASH / 101.0 * (104.5 - 101.0))


def test_trades_add_up_to_the_final_equity():
    prices = random_walk(3000, seed=11)
    atr = np.full(3000, 1.5)
    for config in (BacktestConfig(fee=0.001, slippage=0.0005, mode="long_short"),
                   BacktestConfig(fee=0.001, mode="long_short", leverage=5.0, sl_atr=2.0, tp_atr=4.0),
                   BacktestConfig(fee=0.002, size_fraction=0.3, leverage=3.0)):
        result = backtest(prices, random_targets(3000, 3, True), config, atr=atr)
        assert result.trades["pnl"].sum() == pytest.approx(result.metrics.final_equity - config.cash,
                                                           abs=1e-8 * config.cash)
        assert result.trades.height == result.metrics.n_trades


def test_nothing_depends_on_later_bars():
    """Changing every bar after t (prices and targets) changes no position, fill or equity up to t."""
    n, t = 600, 350
    base = random_walk(n, seed=5)
    targets = random_targets(n, 8, True)
    changed = random_walk(n, seed=6)
    mixed = [np.r_[getattr(base, f)[:t + 1], getattr(changed, f)[t + 1:] * 1.3]
             for f in ("open", "high", "low", "close")]
    other = hourly(*mixed)
    other_targets = np.r_[targets[:t + 1], random_targets(n, 9, True)[t + 1:]]
    atr = np.abs(np.sin(np.arange(n))) + 0.5
    other_atr = np.r_[atr[:t + 1], atr[t + 1:] * 3]
    config = BacktestConfig(fee=0.001, slippage=0.001, mode="long_short", leverage=3.0, sl_atr=1.0,
                            tp_atr=2.0)
    a = backtest(base, targets, config, atr=atr)
    b = backtest(other, other_targets, config, atr=other_atr)
    np.testing.assert_array_equal(a.equity[:t + 1], b.equity[:t + 1])
    cut = base.timestamps_ms[t]
    closed_a = a.trades.filter(a.trades["exit_time"].dt.epoch("ms") <= cut)
    closed_b = b.trades.filter(b.trades["exit_time"].dt.epoch("ms") <= cut)
    assert closed_a.equals(closed_b)
    assert closed_a.height > 5


def test_metrics_match_numpy_on_the_equity_curve():
    prices = random_walk(2000, seed=21)
    targets = random_targets(2000, 4, True)
    config = BacktestConfig(fee=0.001, slippage=0.0005, mode="long_short", size_fraction=0.7)
    result = backtest(prices, targets, config)
    m = result.metrics
    equity = result.equity
    returns = np.diff(np.r_[config.cash, equity]) / np.r_[config.cash, equity[:-1]]
    bars_per_year = YEAR_MS / 3_600_000
    years = 2000 * 3_600_000 / YEAR_MS
    sharpe = returns.mean() / returns.std(ddof=1) * math.sqrt(bars_per_year)
    assert m.sharpe == pytest.approx(sharpe, rel=1e-9)
    downside = math.sqrt(np.mean(np.minimum(returns, 0.0) ** 2))
    assert m.sortino == pytest.approx(returns.mean() / downside * math.sqrt(bars_per_year), rel=1e-9)
    drawdown = 1.0 - equity / np.maximum.accumulate(np.r_[config.cash, equity])[1:]
    assert m.max_drawdown == pytest.approx(drawdown.max(), rel=1e-12)
    assert m.total_return == pytest.approx(equity[-1] / config.cash - 1, rel=1e-12)
    assert m.cagr == pytest.approx((equity[-1] / config.cash) ** (1 / years) - 1, rel=1e-12)
    assert m.calmar == pytest.approx(m.cagr / m.max_drawdown, rel=1e-12)
    pnl = result.trades["pnl"].to_numpy()
    assert m.win_rate == pytest.approx(np.mean(pnl > 0))
    assert m.profit_factor == pytest.approx(pnl[pnl > 0].sum() / -pnl[pnl < 0].sum(), rel=1e-12)
    held = np.r_[0, targets[:-1]] != 0
    assert m.exposure == pytest.approx(held.mean())


def test_a_run_that_never_trades():
    result = backtest(FIVE, [0, 0, 0, 0, 0], BacktestConfig(cash=CASH))
    m = result.metrics
    assert (m.final_equity, m.total_return, m.max_drawdown, m.exposure, m.n_trades) == (CASH, 0, 0, 0, 0)
    assert math.isnan(m.sharpe) and math.isnan(m.win_rate) and math.isnan(m.profit_factor)
    assert result.trades.height == 0


def test_run_many_equals_run_backtest_per_column():
    prices = random_walk(1500, seed=2)
    matrix = np.column_stack([random_targets(1500, s, True) for s in range(6)])
    config = BacktestConfig(fee=0.001, slippage=0.001, mode="long_short", leverage=4.0, sl_atr=2.0)
    atr = np.full(1500, 1.0)
    many = run_many(prices, matrix, config, atr=atr, with_trades=True)
    for j in range(matrix.shape[1]):
        one = backtest(prices, matrix[:, j], config, atr=atr)
        row = many.metrics.row(j, named=True)
        assert row.pop("run") == j
        for name, value in row.items():
            assert value == getattr(one.metrics, name) or (math.isnan(value) and math.isnan(
                getattr(one.metrics, name))), name
        assert many.trades.filter(many.trades["run"] == j).drop("run").equals(one.trades)


def test_too_few_bars_is_a_clear_error():
    with pytest.raises(DataError, match=f"too few for a backtest.*at least {MIN_BARS}"):
        run_backtest(np.ones(1), np.ones(1), np.ones(1), np.ones(1), np.zeros(1, dtype=np.int64),
                     np.ones(1, dtype=np.int8), BacktestConfig())


@pytest.mark.parametrize(("change", "message"), [
    (lambda a: a.update(close=np.r_[a["close"][:-1], np.nan]), r"close\[4\] = nan is not a positive"),
    (lambda a: a.update(open=a["open"][:-1]), "open has 4 bars but close has 5"),
    (lambda a: a.update(stamps=a["stamps"][::-1].copy()), "not strictly increasing"),
    (lambda a: a.update(positions=np.array([0, 2, 0, 0, 0])), "must be -1, 0 or 1, found 2"),
    (lambda a: a.update(positions=np.zeros(4)), "positions have 4 bars but the prices have 5"),
    (lambda a: a.update(stamps=a["stamps"].astype(float)), "timestamps_ms must be 5 integer"),
    (lambda a: a.update(positions=np.ones((5, 2))), r"positions must be one series \(1-D\)"),
])
def test_bad_inputs_are_clear_errors(change, message):
    args = dict(open=FIVE.open, high=FIVE.high, low=FIVE.low, close=FIVE.close, stamps=FIVE.timestamps_ms,
                positions=np.ones(5, dtype=np.int8))
    change(args)
    with pytest.raises(DataError, match=message):
        run_backtest(args["open"], args["high"], args["low"], args["close"], args["stamps"],
                     args["positions"], BacktestConfig())


def test_stops_need_an_atr():
    with pytest.raises(ConfigError, match="no ATR was passed"):
        backtest(FIVE, [1, 1, 0, 0, 0], BacktestConfig(sl_atr=2.0))
    with pytest.raises(XrayError, match="atr has 3 bars"):
        backtest(FIVE, [1, 1, 0, 0, 0], BacktestConfig(sl_atr=2.0), atr=np.ones(3))
