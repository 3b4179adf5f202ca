"""The gate's evidence from the model assets: the champion is re-evaluated on the challenger's own
walk-forward folds (its recipe refitted fold by fold), next to buy-and-hold and twice the costs."""

import json

import numpy as np
import polars as pl
import pytest
from live_support import synthetic_candles

from xray_core.backtest import BacktestConfig
from xray_core.learning.dataset import FEATURES, build_training_frame
from xray_core.learning.evaluate import EvalConfig, walk_forward_evaluate
from xray_core.learning.models.registry import build_model
from xray_core.learning.skill import equity_returns
from xray_core.learning.splits import purged_walk_forward
from xray_pipelines.defs.learning.models import RECIPE, paired_evidence
from xray_pipelines.mlops.registry import CHAMPION, Tracking, log_model_version

CONFIG = EvalConfig(backtest=BacktestConfig(fee=0.001, slippage=0.0005))
THEIRS = {"max_iter": 15, "max_depth": 2}


def _fit(params):
    return lambda train, test: build_model("gbm", **params).fit(train).predict_proba(test)


@pytest.fixture(scope="module")
def setting(tmp_path_factory):
    root = tmp_path_factory.mktemp("evidence")
    candles = synthetic_candles(30)
    frame = build_training_frame(candles)
    folds = purged_walk_forward(frame["timestamp"], n_folds=2, horizon_bars=24, embargo_bars=24)
    report = walk_forward_evaluate(frame, candles, _fit({}), folds, CONFIG)
    tracking = Tracking(f"sqlite:///{root / 'mlflow.db'}", f"file://{root / 'artifacts'}")
    tracking.activate()
    model = build_model("gbm", **THEIRS).fit(frame)
    version = log_model_version("gbm", model, params=model.params(), metrics={"oos_sharpe": 1.0},
                                tags={RECIPE: json.dumps(THEIRS, sort_keys=True)},
                                example=frame.select("timestamp", "symbol", *FEATURES).tail(16))
    client = tracking.client()
    client.set_registered_model_alias("xray-gbm", CHAMPION, version.version)
    return candles, frame, folds, report, client


def test_the_champion_is_refitted_on_the_challengers_folds(setting):
    candles, frame, folds, report, client = setting
    evidence = paired_evidence("gbm", {}, report, client, frame, candles, folds, CONFIG)
    ours = equity_returns(report.equity["oos"].to_numpy())
    theirs = walk_forward_evaluate(frame, candles, _fit(THEIRS), folds, CONFIG)
    assert evidence.champion_version == "1" and "refitted on these 2 folds" in evidence.notes[0]
    np.testing.assert_allclose(evidence.challenger, ours)
    np.testing.assert_allclose(evidence.champion, equity_returns(theirs.equity["oos"].to_numpy()))
    assert not np.allclose(evidence.champion, evidence.challenger)  # another recipe, other returns
    np.testing.assert_allclose(evidence.buy_and_hold, equity_returns(report.equity["bh"].to_numpy()))
    # The same trades at twice the costs end lower (per bar they differ both ways: sizes differ).
    assert np.prod(1 + evidence.challenger_2x) < np.prod(1 + evidence.challenger)
    trades = report.windows.group_by("symbol").agg(n=pl.col("n_trades").sum())
    assert evidence.trades_per_symbol == {s: float(n) for s, n in trades.rows()}
    assert evidence.bars_per_year == pytest.approx(24 * 365, rel=0.01)


def test_a_champion_of_the_same_recipe_has_the_challengers_fold_returns(setting):
    candles, frame, folds, report, client = setting
    evidence = paired_evidence("gbm", THEIRS, report, client, frame, candles, folds, CONFIG)
    assert "same recipe" in evidence.notes[0]
    np.testing.assert_array_equal(evidence.champion, evidence.challenger)
