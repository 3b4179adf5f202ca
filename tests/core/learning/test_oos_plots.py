"""Out-of-sample equity per fold, against buy-and-hold and flat: the curves and the plot of them."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from xray_core.learning import FeatureConfig, LabelConfig, build_training_frame, evaluate_oos
from xray_core.learning.evaluate import fold_equity, fold_summary
from xray_core.research.plots import oos_equity_figure, png
from xray_sim.exchange.market import DAY_MS, GENESIS_MS, SyntheticMarket

SYMBOLS = ("BTC/USDT", "ETH/USDT")


@pytest.fixture(scope="module")
def report():
    market = SyntheticMarket(seed=11)
    start = GENESIS_MS + 900 * DAY_MS
    end = start + 30 * DAY_MS
    candles = {}
    for symbol in SYMBOLS:
        bars = market.bars(symbol, "1h", start, end, end)
        candles[symbol] = pl.DataFrame({
            "timestamp": bars.timestamp, "open": bars.open, "high": bars.high, "low": bars.low,
            "close": bars.close, "volume": bars.volume,
        }).with_columns(pl.col("timestamp").cast(pl.Datetime("ms")).dt.replace_time_zone("UTC"))
    frame = build_training_frame(candles, labels=LabelConfig(horizon=6),
                                 features=FeatureConfig(cross_window=72))
    stamps = frame["timestamp"].unique().sort()
    cuts = [stamps[stamps.len() * k // 3] for k in (1, 2)]
    predictions = frame.select(
        "timestamp", "symbol", "forward_return", (0.5 + pl.col("ret_n").clip(-0.05, 0.05) * 8).alias("p_up"),
        ((pl.col("timestamp") >= cuts[0]).cast(pl.Int64) + (pl.col("timestamp") >= cuts[1]).cast(pl.Int64))
        .alias("fold"))
    return evaluate_oos(predictions, candles)


def test_each_fold_starts_at_one_and_the_folds_multiply_back_to_the_chained_curve(report):
    curves = fold_equity(report)
    assert curves.columns == ["fold", "timestamp", "oos", "bh", "flat"]
    assert sorted(set(curves["fold"])) == [0, 1, 2]
    assert (curves["flat"] == 1.0).all()
    summary = fold_summary(curves)
    assert summary["fold"].to_list() == [0, 1, 2] and (summary["flat_return"] == 0.0).all()
    for column in ("oos", "bh"):
        chained = float(np.prod(1.0 + summary[f"{column}_return"].to_numpy()))
        assert chained == pytest.approx(float(report.equity[column][-1]), rel=1e-9)
        # Each fold's first bar is within one bar's move of 1: it is rebased where the fold starts.
        firsts = curves.group_by("fold").agg(pl.col(column).first())[column].to_numpy()
        assert np.all(np.abs(firsts - 1.0) < 0.2), firsts
    assert report.equity["oos"].n_unique() > 1  # the model traded: not a flat line by accident


def test_the_figure_has_one_panel_per_fold_with_model_buy_and_hold_and_flat(report):
    curves = fold_equity(report)
    figure = oos_equity_figure(curves, "xray-test")
    assert len(figure.axes) == 3
    for axes in figure.axes:
        labels = [line.get_label() for line in axes.get_lines()]
        assert labels == ["model (out of sample)", "buy and hold", "flat"]
        assert len(axes.get_lines()[0].get_xdata()) > 10
    single = oos_equity_figure(curves, "xray-test", fold=1)
    assert len(single.axes) == 1 and single.axes[0].get_title() == "fold 1"
    image = png(figure)
    assert image.startswith(b"\x89PNG") and len(image) > 10_000
