"""Per-symbol selection between the best rule strategy and the champion models: a model whose
walk-forward record beats the rule on a symbol is planned there on `model`; a useless one is not."""

import math

import numpy as np
import polars as pl
import pytest

from xray_core.backtest import BacktestConfig, run_backtest
from xray_core.candles.bars import Bars
from xray_core.research.selection import (
    Candidate,
    ReplayPredictor,
    score_on_windows,
    select,
    select_all,
    summary,
    windows_of,
)
from xray_core.strategies import MarketContext, ModelStrategy

CONFIG = BacktestConfig(fee=0.001, slippage=0.0005)
N = 1500
FOLDS = [(700, 950), (1100, 1450)]  # test blocks (bar indexes), as purged walk-forward makes them


def _candles(seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, N)))
    open_ = np.concatenate([[100.0], close[:-1]])
    stamps = pl.datetime_range(pl.datetime(2026, 1, 1), pl.datetime(2026, 1, 1) + pl.duration(hours=N - 1),
                               "1h", eager=True, time_zone="UTC").cast(pl.Datetime("ms", "UTC"))
    return pl.DataFrame({
        "timestamp": stamps, "open": open_, "high": np.maximum(open_, close) * 1.002,
        "low": np.minimum(open_, close) * 0.998, "close": close, "volume": rng.uniform(10, 20, N),
    })


CANDLES = {"BTC/USDT": _candles(1), "AAA/USDT": _candles(2)}


def _predictions(symbol: str, p_up) -> pl.DataFrame:
    """Walk-forward predictions of `symbol` on FOLDS; `p_up(opens, t)` is the P(up) of bar t."""
    frame = CANDLES[symbol]
    opens = frame["open"].to_numpy()
    rows = [(frame["timestamp"][t], symbol, float(p_up(opens, t)), k)
            for k, (lo, hi) in enumerate(FOLDS) for t in range(lo, hi)]
    return pl.DataFrame(rows, schema={"timestamp": pl.Datetime("ms", "UTC"), "symbol": pl.String,
                                      "p_up": pl.Float64, "fold": pl.Int64}, orient="row")


def planted(opens, t):
    """Knows the move its decision will hold (from t+1's open to t+2's): a signal no rule can match."""
    return 0.9 if t + 2 < len(opens) and opens[t + 2] > opens[t + 1] * 1.002 else 0.1


RNG = np.random.default_rng(7)
NOISE = RNG.uniform(0, 1, N)


def useless(opens, t):
    return NOISE[t]  # trades often, knows nothing: pays the costs


PLAN = {"symbol": "AAA/USDT", "strategy": "sma_cross", "params": {}, "group": "cluster-0"}


def test_a_planted_signal_model_wins_the_symbol_and_is_planned_on_model():
    candidate = Candidate("gbm", 3, _predictions("AAA/USDT", planted))
    chosen = select(PLAN, Bars.from_frame(CANDLES["AAA/USDT"]), CANDLES["BTC/USDT"], [candidate], CONFIG, 5)
    assert chosen.entry == {"symbol": "AAA/USDT", "strategy": "model", "params": {}, "group": "cluster-0",
                            "model": "gbm"}
    record = chosen.record
    assert record["chosen"] == "model" and record["model_version"] == 3 and record["windows"] == 2
    assert record["model_sharpe"] > 3.0 and record["model_sharpe"] > (record["rule_sharpe"] or 0) + 1.0
    assert record["bars"] == sum(hi - lo for lo, hi in FOLDS)
    assert record["reason"].startswith("model wins: model gbm v3 Sharpe")
    assert "vs sma_cross" in record["reason"]


def test_a_useless_model_loses_and_the_rule_stays():
    candidate = Candidate("rl", 1, _predictions("AAA/USDT", useless))
    chosen = select(PLAN, Bars.from_frame(CANDLES["AAA/USDT"]), CANDLES["BTC/USDT"], [candidate], CONFIG, 5)
    assert chosen.entry == PLAN
    assert chosen.record["chosen"] == "sma_cross" and chosen.record["model"] == "rl"
    assert chosen.record["model_sharpe"] < 0  # random entries pay fees and slippage for nothing
    assert chosen.record["reason"].startswith("sma_cross kept: model rl v1")


def test_the_best_champion_competes_and_a_symbol_without_a_record_keeps_its_rule():
    candidates = [Candidate("rl", 1, _predictions("AAA/USDT", useless)),
                  Candidate("gbm", 3, _predictions("AAA/USDT", planted))]
    plans = [PLAN, {"symbol": "BTC/USDT", "strategy": "macd_trend", "params": {}, "group": "solo"}]
    entries, records = select_all(plans, CANDLES, candidates, CONFIG, 5)
    assert [e["strategy"] for e in entries] == ["model", "macd_trend"]
    assert entries[0]["model"] == "gbm"
    assert "no out-of-sample record" in records["BTC/USDT"]["reason"]
    assert summary(records) == {"model": 1, "macd_trend": 1}
    _, no_models = select_all(plans, CANDLES, [], CONFIG, 5)
    assert summary(no_models) == {"sma_cross": 1, "macd_trend": 1}
    assert no_models["AAA/USDT"]["reason"] == "sma_cross kept: no champion model to compare with"


def test_too_few_model_trades_keep_the_rule():
    candidate = Candidate("gbm", 3, _predictions("AAA/USDT", planted))
    chosen = select(PLAN, Bars.from_frame(CANDLES["AAA/USDT"]), CANDLES["BTC/USDT"], [candidate], CONFIG,
                    10_000)
    assert chosen.entry == PLAN and "fewer than 10000 model trades" in chosen.record["reason"]


def test_replayed_predictions_go_through_the_model_strategy_itself():
    predictions = _predictions("AAA/USDT", planted)
    bars = Bars.from_frame(CANDLES["AAA/USDT"])
    context = MarketContext("AAA/USDT", CANDLES["BTC/USDT"])
    strategy = ModelStrategy().bind(ReplayPredictor(predictions), context)
    positions = strategy.positions(bars, strategy.params())
    inside = np.zeros(N, dtype=bool)
    for lo, hi in FOLDS:
        inside[lo:hi] = True
    assert not positions[~inside].any()  # no prediction: flat
    expected = np.array([planted(CANDLES["AAA/USDT"]["open"].to_numpy(), t) > 0.55 for t in range(N)])
    assert np.array_equal(positions[inside].astype(bool), expected[inside])


def test_one_window_scores_as_the_engine_does():
    bars = Bars.from_frame(CANDLES["AAA/USDT"])
    positions = (np.arange(N) // 40 % 2).astype(np.int8)
    lo, hi = FOLDS[0]
    window = [(int(bars.timestamp[lo]), int(bars.timestamp[hi - 1]))]
    score = score_on_windows(bars, positions, window, CONFIG)
    cut = slice(lo, hi)
    engine = run_backtest(bars.open[cut], bars.high[cut], bars.low[cut], bars.close[cut], bars.timestamp[cut],
                          positions[cut], CONFIG).metrics
    assert score.n_bars == hi - lo and score.n_trades == engine.n_trades
    assert score.sharpe == pytest.approx(engine.sharpe, rel=1e-9)
    assert score.total_return == pytest.approx(engine.total_return, rel=1e-9)
    flat = score_on_windows(bars, np.zeros(N, dtype=np.int8), window, CONFIG)
    assert math.isnan(flat.sharpe) and flat.n_trades == 0


def test_windows_are_the_symbols_test_blocks_in_time_order():
    predictions = _predictions("AAA/USDT", planted)
    stamps = CANDLES["AAA/USDT"]["timestamp"].dt.epoch("ms")
    assert windows_of(predictions, "AAA/USDT") == [(stamps[lo], stamps[hi - 1]) for lo, hi in FOLDS]
    assert windows_of(predictions, "BTC/USDT") == []
