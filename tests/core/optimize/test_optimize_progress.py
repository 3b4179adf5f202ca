"""Optimiser trials reach a progress sink (xray_core.progress) batch by batch, resumed studies from
where they stand, and listening changes no trial."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from xray_core import progress
from xray_core.backtest import BacktestConfig
from xray_core.candles.bars import Bars
from xray_core.candles.schema import read_parquet
from xray_core.optimize import FoldConfig, OptimizeConfig, optimize, sqlite_url
from xray_core.progress import ProgressEvent

CANDLES = Path(__file__).resolve().parents[2] / "data" / "candles"
CONFIG = OptimizeConfig(
    n_trials=20, seed=3, population_size=8, folds=FoldConfig(n_folds=3, min_train_bars=1000), min_trades=5
)
BACKTEST = BacktestConfig(fee=0.0005)


@pytest.fixture(scope="module")
def cluster() -> dict[str, Bars]:
    return {
        symbol: Bars.from_frame(read_parquet(CANDLES / f"{symbol}-5m.parquet")).take(slice(0, 2500))
        for symbol in ("ETH_BTC", "LTC_BTC")
    }


def test_trials_arrive_batch_by_batch_and_change_nothing(cluster):
    quiet = optimize("sma_cross", cluster, CONFIG, BACKTEST, None, "quiet")
    events: list[ProgressEvent] = []
    with progress.reporting(events.append):
        heard = optimize("sma_cross", cluster, CONFIG, BACKTEST, None, "heard")
    assert heard.trials.equals(quiet.trials) and heard.best_params == quiet.best_params
    assert [(e.kind, e.label, e.done, e.total) for e in events] == [
        ("trial", "heard", done, 20) for done in (0, 8, 16, 20)
    ]


def test_a_resumed_study_reports_from_where_it_stands(cluster, tmp_path):
    url = sqlite_url(tmp_path / "studies.db")
    optimize("sma_cross", cluster, dataclasses.replace(CONFIG, n_trials=12), BACKTEST, url, "r")
    events: list[ProgressEvent] = []
    with progress.reporting(events.append):
        optimize("sma_cross", cluster, CONFIG, BACKTEST, url, "r")
    assert [e.done for e in events] == [12, 16, 20]
