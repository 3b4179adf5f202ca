"""Progress events of the learning loops (xray_core.progress): walk-forward folds, LSTM epochs and RL
steps reach a recording sink in the order the work happens, and listening changes no number.

The frame is `build_training_frame` on two synthetic symbols; the models use their tiny defaults.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch

from xray_core import progress
from xray_core.learning.dataset import FeatureConfig, build_training_frame
from xray_core.learning.evaluate import walk_forward_evaluate
from xray_core.learning.models.registry import build_model
from xray_core.learning.models.rl import with_prices
from xray_core.learning.splits import purged_walk_forward
from xray_core.progress import ProgressEvent
from xray_sim.exchange.market import SyntheticMarket

HOUR_MS = 3_600_000


class Recorder:
    def __init__(self) -> None:
        self.events: list[ProgressEvent] = []

    def __call__(self, event: ProgressEvent) -> None:
        self.events.append(event)

    def of(self, kind: str) -> list[ProgressEvent]:
        return [e for e in self.events if e.kind == kind]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def candles() -> dict[str, pl.DataFrame]:
    market = SyntheticMarket(seed=11)
    start = market.listed_from_ms
    end = start + 480 * HOUR_MS
    out = {}
    for symbol in ("BTC/USDT", "ETH/USDT"):
        bars = market.bars(symbol, "1h", start, end, end)
        out[symbol] = pl.DataFrame(
            {
                "timestamp": pl.Series(bars.timestamp).cast(pl.Datetime("ms")).dt.replace_time_zone("UTC"),
                "open": bars.open,
                "high": bars.high,
                "low": bars.low,
                "close": bars.close,
                "volume": bars.volume,
            }
        )
    return out


@pytest.fixture(scope="module")
def frame(candles) -> pl.DataFrame:
    built = build_training_frame(candles, features=FeatureConfig(cross_window=48, volume_window=48))
    return with_prices(built, candles)


def runs(events: list[ProgressEvent]) -> list[list[ProgressEvent]]:
    """Consecutive events split where a loop starts again (done falls back or the label changes)."""
    out: list[list[ProgressEvent]] = []
    for event in events:
        if out and event.label == out[-1][-1].label and event.done >= out[-1][-1].done:
            out[-1].append(event)
        else:
            out.append([event])
    return out


def test_nothing_is_reported_without_a_sink():
    assert not progress.active()
    progress.report("fold", "x", 0, 1)  # a no-op, not an error


def test_sinks_nest_and_a_failing_sink_is_dropped():
    outer, inner = Recorder(), Recorder()
    with progress.reporting(outer):
        with progress.reporting(inner):
            progress.report("trial", "study", 1, 2)
        progress.report("trial", "study", 2, 2)
    assert [e.done for e in inner.events] == [1] and [e.done for e in outer.events] == [2]
    assert not progress.active()

    def broken(event: ProgressEvent) -> None:
        raise RuntimeError("terminal gone")

    with progress.reporting(broken):
        progress.report("epoch", "lstm", 0, 3)  # logged, not raised
        assert not progress.active()


@pytest.mark.parametrize("kind", ["gbm", "lstm"])
def test_folds_and_epochs_arrive_in_order_and_change_nothing(kind, frame, candles):
    folds = purged_walk_forward(frame["timestamp"], n_folds=2, horizon_bars=24, embargo_bars=24)

    def fit_predict(train: pl.DataFrame, test: pl.DataFrame) -> np.ndarray:
        return build_model(kind).fit(train).predict_proba(test)

    quiet = walk_forward_evaluate(frame, candles, fit_predict, folds)
    recorder = Recorder()
    with progress.reporting(recorder):
        heard = walk_forward_evaluate(frame, candles, fit_predict, folds)
    assert heard.predictions.equals(quiet.predictions)
    assert heard.metrics == pytest.approx(quiet.metrics, nan_ok=True)

    fold_events = recorder.of("fold")
    assert [(e.done, e.total) for e in fold_events] == [(0, 2), (1, 2), (2, 2)]
    epochs = recorder.of("epoch")
    if kind == "gbm":
        assert not epochs and len(recorder.events) == 3
        return
    # Each fold: the epoch count is chosen on a validation slice, then the net is trained afresh.
    fold_at = [recorder.events.index(e) for e in fold_events]
    for k in range(2):
        inside = [e for e in recorder.events[fold_at[k] + 1 : fold_at[k + 1]] if e.kind == "epoch"]
        loops = runs(inside)
        assert [loop[0].label for loop in loops] == ["lstm: choosing the epoch count", "lstm: training"]
        for loop in loops:
            assert [e.done for e in loop] == list(range(len(loop)))  # 0, 1, 2, ... one per epoch
            assert loop[-1].done <= loop[0].total
        assert loops[1][-1].done == loops[1][0].total  # the final training runs every chosen epoch


def test_rl_steps_arrive_in_order_and_change_nothing(frame):
    train = frame.head(frame.height * 2 // 3)
    quiet = build_model("rl").fit(train)
    recorder = Recorder()
    with progress.reporting(recorder):
        heard = build_model("rl").fit(train)
    np.testing.assert_array_equal(heard.predict_proba(frame), quiet.predict_proba(frame))
    steps = recorder.of("step")
    total = heard.config.total_timesteps
    assert steps[0].done == 0 and all(e.total == total and e.label == "rl: PPO steps" for e in steps)
    done = [e.done for e in steps]
    assert done == sorted(done) and len(set(done)) == len(done)  # strictly rising, one per rollout
    assert done[-1] == total and len(steps) >= 1 + total // heard.config.n_steps
