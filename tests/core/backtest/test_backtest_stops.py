"""Stop-loss, take-profit and liquidation on constructed price paths.

Every path signals at bar 0's close and enters at bar 1's open of 100; the ATR at bar 0 is 2, so with
sl_atr=1.5 / tp_atr=3 a long's levels are 97 / 106 and a short's 103 / 94.
"""

import math

import numpy as np
import pytest
from backtest_paths import backtest, hourly

from xray_core.backtest import BacktestConfig

FEE, SLIP, CASH = 0.001, 0.002, 1000.0
ATR = np.full(8, 2.0)
QUIET = (100.0, 101.0, 99.5, 100.0)  # a bar that touches no level


def _path(*bars: tuple[float, float, float, float]):
    """Bars 0 and 1 (entry at 100) are quiet, then the given (open, high, low, close) bars, then quiet."""
    rows = [QUIET, (100.0, 100.5, 99.0, 99.5), *bars]
    rows += [QUIET] * (8 - len(rows))
    return hourly(*zip(*rows, strict=True))


def _stops(mode="long_only", **kw) -> BacktestConfig:
    return BacktestConfig(fee=FEE, slippage=SLIP, cash=CASH, mode=mode, sl_atr=1.5, tp_atr=3.0, **kw)


def _long_exit(price: float) -> float:
    size = CASH / (100.0 * (1 + SLIP) * (1 + FEE))
    return size * price * (1 - SLIP) * (1 - FEE)


@pytest.mark.parametrize(("bar", "reason", "price"), [
    ((99.0, 99.5, 96.0, 98.0), "stop_loss", 97.0),  # low crosses 97: fills at the level
    ((95.0, 96.0, 94.0, 95.5), "stop_loss", 95.0),  # opens below 97: fills at the open
    ((103.0, 107.0, 102.0, 105.0), "take_profit", 106.0),
    ((108.0, 109.0, 107.0, 108.5), "take_profit", 108.0),  # gaps above 106
    ((100.0, 107.0, 96.0, 100.0), "stop_loss", 97.0),  # both within the bar: the stop-loss first
])
def test_long_stops(bar, reason, price):
    result = backtest(_path(bar), [1] * 8, _stops(), atr=ATR)
    trade = result.trades.row(0, named=True)
    assert (trade["exit_reason"], result.metrics.n_trades) == (reason, 1)  # and it stays flat after
    assert trade["exit_price"] == pytest.approx(price * (1 - SLIP))
    assert result.metrics.final_equity == pytest.approx(_long_exit(price), rel=1e-13)
    assert result.equity[2] == result.equity[-1]


@pytest.mark.parametrize(("bar", "reason", "price"), [
    ((101.0, 104.0, 100.5, 102.0), "stop_loss", 103.0),
    ((105.0, 106.0, 104.0, 105.0), "stop_loss", 105.0),
    ((97.0, 97.5, 93.0, 95.0), "take_profit", 94.0),
])
def test_short_stops(bar, reason, price):
    result = backtest(_path(bar), [-1] * 8, _stops("long_short"), atr=ATR)
    trade = result.trades.row(0, named=True)
    assert trade["exit_reason"] == reason
    size = CASH / (100.0 * (1 - SLIP) * (1 + FEE))
    final = CASH + size * 100.0 * (1 - SLIP) * (1 - FEE) - size * price * (1 + SLIP) * (1 + FEE)
    assert result.metrics.final_equity == pytest.approx(final, rel=1e-13)


def test_stops_are_not_checked_on_the_entry_bar():
    prices = hourly(*zip(QUIET, (100.0, 100.5, 90.0, 99.5), QUIET, QUIET, strict=True))
    result = backtest(prices, [1] * 4, _stops(), atr=ATR[:4])
    assert result.trades["exit_reason"].to_list() == ["end"]


def test_a_signalled_exit_at_the_open_comes_before_the_stop():
    result = backtest(_path((99.0, 99.5, 96.0, 98.0)), [1, 0, 0, 0, 0, 0, 0, 0], _stops(), atr=ATR)
    trade = result.trades.row(0, named=True)
    assert (trade["exit_reason"], trade["exit_price"]) == ("signal", pytest.approx(99.0 * (1 - SLIP)))


def test_after_a_stop_only_a_new_target_reenters():
    targets = [1, 1, 1, 1, 0, 1, 1, 1]  # stopped at bar 2; flat target at bar 4, long again at bar 5
    result = backtest(_path((99.0, 99.5, 96.0, 98.0)), targets, _stops(), atr=ATR)
    assert result.trades["exit_reason"].to_list() == ["stop_loss", "end"]
    assert result.trades["entry_price"][1] == pytest.approx(100.0 * (1 + SLIP))  # bar 6's open
    assert result.trades["entry_time"][1].timestamp() * 1000 == result_stamp(6)


def result_stamp(bar: int) -> int:
    return int(_path().timestamps_ms[bar])


def test_no_stop_without_an_atr_value():
    atr = ATR.copy()
    atr[0] = np.nan
    result = backtest(_path((95.0, 96.0, 94.0, 95.5)), [1] * 8, _stops(), atr=atr)
    assert result.trades["exit_reason"].to_list() == ["end"]


# ---- liquidation -----------------------------------------------------------------------------------------
# Fee- and slippage-free, 1000 cash, entry at 100: at leverage 10 a long holds 100 units against 9000
# borrowed and is liquidated at 9000 / (100 x (1 - 0.005)) = 90.452...; a 5x short holds 50 units, has
# 6000 in cash and is liquidated at 6000 / (50 x 1.005) = 119.402...
LONG_LIQ = 9000.0 / (100.0 * 0.995)
SHORT_LIQ = 6000.0 / (50.0 * 1.005)


def _levered(leverage: float, mode="long_only", **kw) -> BacktestConfig:
    return BacktestConfig(fee=0.0, slippage=0.0, cash=CASH, leverage=leverage, mode=mode, **kw)


def test_long_liquidation_loses_the_margin():
    prices = _path((95.0, 96.0, 92.0, 93.0), (93.0, 94.0, 90.0, 91.0))
    result = backtest(prices, [1, 1, 1, 1, 0, 1, 1, 1], _levered(10.0))
    trade = result.trades.row(0, named=True)
    assert (trade["exit_reason"], trade["pnl"], trade["exit_price"]) == ("liquidation", -CASH,
                                                                         pytest.approx(LONG_LIQ))
    assert result.trades["exit_time"][0].timestamp() * 1000 == result_stamp(3)
    assert result.metrics.final_equity == 0.0  # and nothing left to trade with
    assert result.metrics.n_trades == 1
    assert result.metrics.total_return == -1.0 and result.metrics.cagr == -1.0


def test_liquidation_keeps_the_cash_outside_the_margin():
    prices = _path((95.0, 96.0, 92.0, 93.0), (93.0, 94.0, 90.0, 91.0))
    result = backtest(prices, [1, 1, 1, 1, 0, 1, 1, 1], _levered(10.0, size_fraction=0.5))
    assert result.trades["pnl"][0] == -500.0
    assert result.equity[3] == 500.0
    assert result.trades["exit_reason"].to_list() == ["liquidation", "end"]  # re-entered on the change


def test_short_liquidation():
    result = backtest(_path((110.0, 121.0, 109.0, 115.0)), [-1] * 8, _levered(5.0, "long_short"))
    trade = result.trades.row(0, named=True)
    assert (trade["exit_reason"], trade["pnl"]) == ("liquidation", -CASH)
    assert trade["exit_price"] == pytest.approx(SHORT_LIQ)


def test_a_gap_through_the_liquidation_price_loses_only_the_margin():
    result = backtest(_path((80.0, 81.0, 79.0, 80.0)), [1] * 8, _levered(10.0, size_fraction=0.5))
    assert result.trades["pnl"][0] == -500.0
    assert result.metrics.final_equity == 500.0


def test_liquidation_on_the_entry_bar():
    prices = hourly(*zip(QUIET, (100.0, 100.5, 90.0, 99.5), QUIET, strict=True))
    result = backtest(prices, [1, 1, 1], _levered(10.0))
    assert result.trades["exit_reason"].to_list() == ["liquidation"]
    assert result.trades["exit_time"][0].timestamp() * 1000 == result_stamp(1)


@pytest.mark.parametrize(("sl_atr", "reason"), [(2.5, "stop_loss"), (7.5, "liquidation")])
def test_the_nearer_of_stop_and_liquidation_triggers(sl_atr, reason):
    # ATR 2: the stop lies at 95 (above the liquidation price) or 85 (below it); the bar falls to 89.
    result = backtest(_path((96.0, 96.5, 89.0, 90.0)), [1] * 8, _levered(10.0, sl_atr=sl_atr), atr=ATR)
    trade = result.trades.row(0, named=True)
    assert trade["exit_reason"] == reason
    if reason == "stop_loss":
        assert trade["exit_price"] == 95.0
        assert result.metrics.final_equity == pytest.approx(CASH - 10 * CASH + 100 * 95.0)  # 500


def test_unlevered_long_is_never_liquidated_and_unlevered_short_is_when_the_price_doubles():
    crash = _path((10.0, 10.0, 0.5, 0.5), (0.5, 0.6, 0.1, 0.1))
    assert backtest(crash, [1] * 8, _levered(1.0)).trades["exit_reason"].to_list() == ["end"]
    spike = _path((150.0, 201.0, 149.0, 190.0))
    short = backtest(spike, [-1] * 8, _levered(1.0, "long_short")).trades.row(0, named=True)
    assert short["exit_reason"] == "liquidation"
    assert short["exit_price"] == pytest.approx(2000.0 / (10.0 * 1.005))
    assert math.isclose(short["pnl"], -CASH)
