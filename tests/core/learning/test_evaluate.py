"""Out-of-sample evaluation: the engine's own numbers for the model and for buy-and-hold."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from xray_core.backtest import BacktestConfig, run_backtest
from xray_core.errors import ConfigError, DataError
from xray_core.indicators import atr as atr_indicator
from xray_core.learning import (
    FEATURES,
    METRIC_KEYS,
    EvalConfig,
    FeatureConfig,
    LabelConfig,
    build_training_frame,
    evaluate_oos,
    positions_from,
    purged_walk_forward,
    walk_forward_evaluate,
)
from xray_core.learning.evaluate import curve_metrics
from xray_sim.exchange.market import DAY_MS, GENESIS_MS, SyntheticMarket

SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT")
HORIZON = 6


@pytest.fixture(scope="module")
def candles() -> dict[str, pl.DataFrame]:
    """45 days of 1h bars of three synthetic symbols (deterministic, seed 7)."""
    market = SyntheticMarket(seed=7)
    start = GENESIS_MS + 900 * DAY_MS
    end = start + 45 * DAY_MS
    out = {}
    for symbol in SYMBOLS:
        bars = market.bars(symbol, "1h", start, end, end)
        out[symbol] = pl.DataFrame({
            "timestamp": bars.timestamp, "open": bars.open, "high": bars.high, "low": bars.low,
            "close": bars.close, "volume": bars.volume,
        }).with_columns(pl.col("timestamp").cast(pl.Datetime("ms")).dt.replace_time_zone("UTC"))
    return out


@pytest.fixture(scope="module")
def frame(candles) -> pl.DataFrame:
    return build_training_frame(candles, labels=LabelConfig(horizon=HORIZON),
                                features=FeatureConfig(cross_window=72))


def arrays(candles: pl.DataFrame, start, end) -> tuple[np.ndarray, ...]:
    bars = candles.filter(pl.col("timestamp").is_between(start, end))
    return (*(bars[c].to_numpy() for c in ("open", "high", "low", "close")),
            bars["timestamp"].dt.epoch("ms").to_numpy())


def momentum_predictions(frame: pl.DataFrame) -> pl.DataFrame:
    """A deterministic 'model': P(up) from the 12-bar momentum."""
    return frame.select("timestamp", "symbol", "forward_return",
                        (0.5 + pl.col("ret_n").clip(-0.05, 0.05) * 8).alias("p_up"))


def test_one_window_equals_a_direct_backtest_of_the_same_positions(candles, frame):
    config = EvalConfig(long_above=0.52, backtest=BacktestConfig(fee=0.001, slippage=0.0005))
    rows = momentum_predictions(frame).filter(pl.col("symbol") == "ETH/USDT").tail(300)
    report = evaluate_oos(rows, candles, config)
    o, h, lo, c, ms = arrays(candles["ETH/USDT"], rows["timestamp"][0], rows["timestamp"][-1])
    assert o.size == 300  # gap-free hourly bars: one prediction per bar
    positions = positions_from(rows["p_up"].to_numpy(), config)
    direct = run_backtest(o, h, lo, c, ms, positions, config.backtest).metrics
    metrics = report.metrics
    assert list(metrics) == list(METRIC_KEYS)
    assert metrics["oos_return"] == pytest.approx(direct.total_return, rel=1e-12)
    assert metrics["oos_max_drawdown"] == pytest.approx(direct.max_drawdown, rel=1e-12)
    assert metrics["oos_sharpe"] == pytest.approx(direct.sharpe, rel=1e-9)
    assert metrics["oos_trades"] == direct.n_trades > 0
    window = report.windows.row(0, named=True)
    assert window["total_return"] == direct.total_return and window["n_trades"] == direct.n_trades
    # ATR stops: the ATR of the whole history, sliced to the window (point in time)
    stops = EvalConfig(long_above=0.52, backtest=BacktestConfig(sl_atr=1.0, tp_atr=2.0))
    atr = atr_indicator(*(candles["ETH/USDT"][k].to_numpy() for k in ("high", "low", "close")), 14)
    atr = atr[candles["ETH/USDT"]["timestamp"].search_sorted(rows["timestamp"]).to_numpy()]
    with_stops = run_backtest(o, h, lo, c, ms, positions, stops.backtest, atr=atr).metrics
    assert evaluate_oos(rows, candles, stops).metrics["oos_return"] == pytest.approx(with_stops.total_return)
    assert with_stops.total_return != direct.total_return
    # hit rate: over the rows the model acted on, the share whose forward return had its sign
    acted = rows.filter(pl.col("p_up") > 0.52)
    assert metrics["oos_hit_rate"] == pytest.approx((acted["forward_return"] > 0).mean())


def test_buy_and_hold_is_bought_at_the_second_open_and_marked_at_each_close(candles, frame):
    fee = 0.002
    rows = momentum_predictions(frame).filter(pl.col("symbol") == "BTC/USDT").slice(100, 200)
    report = evaluate_oos(rows, candles, EvalConfig(backtest=BacktestConfig(fee=fee)))
    o, _, _, c, ms = arrays(candles["BTC/USDT"], rows["timestamp"][0], rows["timestamp"][-1])
    size = 1.0 / (o[1] * (1 + fee))  # all-in at the open after the first decision, fee included
    equity = np.concatenate([[1.0], size * c[1:]])
    returns = equity / np.concatenate([[1.0], equity[:-1]]) - 1
    bars_per_year = 365 * 24
    assert report.metrics["bh_return"] == pytest.approx(c[-1] / (o[1] * (1 + fee)) - 1, rel=1e-12)
    assert report.metrics["bh_max_drawdown"] == pytest.approx(
        np.max(1 - equity / np.maximum.accumulate(equity)), rel=1e-12)
    assert report.metrics["bh_sharpe"] == pytest.approx(
        returns.mean() / returns.std(ddof=1) * math.sqrt(bars_per_year), rel=1e-9)
    np.testing.assert_allclose(report.equity["bh"].to_numpy(), equity, rtol=1e-12)
    assert report.equity["timestamp"].dt.epoch("ms").to_numpy().tolist() == ms.tolist()


def test_folds_chain_and_symbols_share_the_capital_equally(candles, frame):
    config = EvalConfig(long_above=0.5, short_below=0.48, backtest=BacktestConfig(mode="long_short"))
    preds = momentum_predictions(frame).with_columns(
        (pl.col("timestamp") >= frame["timestamp"][frame.height // 2]).cast(pl.Int64).alias("fold"))
    report = evaluate_oos(preds, candles, config)
    assert report.windows.height == 6 and set(report.windows["fold"]) == {0, 1}
    # rebuild the portfolio from direct backtests
    total = None
    trades = 0
    for symbol in SYMBOLS:
        curve = []
        for fold in (0, 1):
            rows = preds.filter((pl.col("symbol") == symbol) & (pl.col("fold") == fold))
            o, h, lo, c, ms = arrays(candles[symbol], rows["timestamp"][0], rows["timestamp"][-1])
            assert o.size == rows.height
            result = run_backtest(o, h, lo, c, ms, positions_from(rows["p_up"].to_numpy(), config),
                                  config.backtest)
            trades += result.metrics.n_trades
            scale = curve[-1][-1] if curve else 1.0
            curve.append(result.equity / config.backtest.cash * scale)
        joined = np.concatenate(curve)
        total = joined if total is None else total + joined
    equity = total / len(SYMBOLS)
    np.testing.assert_allclose(report.equity["oos"].to_numpy(), equity, rtol=1e-12)
    stamps = report.equity["timestamp"].dt.epoch("ms").to_numpy()
    expected = curve_metrics(equity, stamps)
    assert report.metrics["oos_sharpe"] == pytest.approx(expected[0], rel=1e-12)
    assert report.metrics["oos_return"] == pytest.approx(equity[-1] - 1, rel=1e-12)
    assert report.metrics["oos_trades"] == trades
    shorts = report.predictions.filter(pl.col("position") == -1)
    assert shorts.height > 0 and (shorts["p_up"] < 0.48).all()
    acted = report.predictions.filter(pl.col("position") != 0)
    hits = (acted["forward_return"] * acted["position"] > 0).sum()
    assert report.metrics["oos_hit_rate"] == pytest.approx(hits / acted.height)


def test_walk_forward_trains_each_fold_on_its_past_only(candles, frame):
    folds = purged_walk_forward(frame["timestamp"], n_folds=3, horizon_bars=HORIZON)
    seen: list[tuple[int, int]] = []

    def fit_predict(train: pl.DataFrame, test: pl.DataFrame) -> np.ndarray:
        # every training label's exit open (t + horizon + 1 bars) precedes the first test bar
        last_exit = train["timestamp"].max() + (HORIZON + 1) * pl.duration(hours=1)
        assert pl.select(last_exit).item() < test["timestamp"].min()
        seen.append((train.height, test.height))
        mean = float(train["label"].mean())
        return np.clip(0.5 + (test["ret_n"].to_numpy() * 5) * (mean - 0.4), 0, 1)

    report = walk_forward_evaluate(frame, candles, fit_predict, folds)
    assert len(seen) == 3 and seen[0][0] < seen[1][0] < seen[2][0]
    assert report.predictions.height == sum(fold.test.size for fold in folds)
    assert set(report.metrics) == set(METRIC_KEYS)
    assert all(isinstance(v, float) for v in report.metrics.values())
    # the same predictions evaluated directly give the same report
    again = evaluate_oos(report.predictions.drop("position"), candles)
    assert again.metrics == pytest.approx(report.metrics, nan_ok=True)
    assert report.windows.height == 3 * len(SYMBOLS)


def test_a_model_that_never_trades_has_no_sharpe_and_no_hit_rate(candles, frame):
    preds = momentum_predictions(frame).with_columns(pl.lit(0.1).alias("p_up"))
    report = evaluate_oos(preds, candles)
    assert report.metrics["oos_trades"] == 0 and report.metrics["oos_return"] == 0
    assert math.isnan(report.metrics["oos_sharpe"]) and math.isnan(report.metrics["oos_hit_rate"])
    assert report.metrics["bh_return"] != 0


def test_bad_inputs_are_refused(candles, frame):
    preds = momentum_predictions(frame)
    with pytest.raises(DataError, match="outside"):
        evaluate_oos(preds.with_columns(pl.lit(1.5).alias("p_up")), candles)
    with pytest.raises(DataError, match="no candles"):
        evaluate_oos(preds, {"BTC/USDT": candles["BTC/USDT"]})
    shifted = preds.with_columns(pl.col("timestamp") + pl.duration(minutes=5))
    with pytest.raises(DataError, match="not in its candles"):
        evaluate_oos(shifted, candles)
    with pytest.raises(DataError, match="returned 1 values"):
        walk_forward_evaluate(frame, candles, lambda tr, te: np.array([0.5]),
                              purged_walk_forward(frame["timestamp"], 2, HORIZON))
    with pytest.raises(ConfigError, match="long_only"):
        EvalConfig(short_below=0.4)
    assert FEATURES  # the frame fixture carries the dataset's features
