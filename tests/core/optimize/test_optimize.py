"""Walk-forward folds, the out-of-sample objective and the NSGA-II study, on real candles."""

from __future__ import annotations

import itertools
import math
import uuid
from pathlib import Path
from typing import ClassVar

import numpy as np
import optuna
import polars as pl
import psycopg
import pytest
from pydantic import Field

from xray_core.backtest import BacktestConfig
from xray_core.candles.bars import Bars
from xray_core.candles.schema import read_parquet
from xray_core.errors import ConfigError, DataError
from xray_core.optimize import (
    FoldConfig,
    OptimizeConfig,
    choose_best,
    evaluate,
    make_folds,
    optimize,
    pareto_mask,
    pareto_plot_png,
    prepare_windows,
    sqlite_url,
)
from xray_core.strategies import Mode, Strategy, StrategyParams

CANDLES = Path(__file__).resolve().parents[2] / "data" / "candles"
FOLDS = FoldConfig(n_folds=4, min_train_bars=1000, embargo_bars=12)
BACKTEST = BacktestConfig(fee=0.0005)


@pytest.fixture(scope="module")
def btc() -> Bars:
    return Bars.from_frame(read_parquet(CANDLES / "BTC_USDT-5m.parquet"))


@pytest.fixture(scope="module")
def cluster() -> dict[str, Bars]:
    """Two symbols of one cluster, ~3,000 bars each."""
    return {symbol: Bars.from_frame(read_parquet(CANDLES / f"{symbol}-5m.parquet")).take(slice(0, 3000))
            for symbol in ("ETH_BTC", "LTC_BTC")}


class _OneParam(StrategyParams):
    size: int = Field(3, ge=1, le=5)


class AlwaysLong(Strategy):
    name = "always_long"
    description = "long on every bar"
    Params = _OneParam

    def warmup(self, params: _OneParam) -> int:
        return 0

    def positions(self, bars: Bars, params: _OneParam, mode: Mode = Mode.LONG_ONLY) -> np.ndarray:
        return np.ones(len(bars), dtype=np.int8)


class NeverTrades(AlwaysLong):
    name = "never_trades"

    def positions(self, bars: Bars, params: _OneParam, mode: Mode = Mode.LONG_ONLY) -> np.ndarray:
        return np.zeros(len(bars), dtype=np.int8)


class Spy(AlwaysLong):
    """Records the span of bars every `positions` call sees."""

    name = "spy"
    seen: ClassVar[list[tuple[int, int]]] = []

    def positions(self, bars: Bars, params: _OneParam, mode: Mode = Mode.LONG_ONLY) -> np.ndarray:
        self.seen.append((int(bars.timestamp[0]), int(bars.timestamp[-1])))
        return (np.arange(len(bars)) // 40 % 2).astype(np.int8)


# --- folds -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("scheme", ["anchored", "rolling"])
@pytest.mark.parametrize("embargo", [0, 25])
def test_folds_never_overlap_and_respect_the_embargo(scheme: str, embargo: int) -> None:
    config = FoldConfig(n_folds=5, min_train_bars=700, embargo_bars=embargo, scheme=scheme)  # type: ignore[arg-type]
    folds = make_folds(3003, config)
    assert [f.index for f in folds] == list(range(5))
    assert folds[-1].test_end == 3003  # the most recent bar is tested
    lengths = {f.test_end - f.test_start for f in folds}
    assert lengths == {(3003 - 700 - embargo) // 5}
    for f in folds:
        assert f.train_end + embargo == f.test_start  # the gap is exactly the embargo
        assert f.train_start < f.train_end <= f.test_start < f.test_end
        assert f.train_end - f.train_start >= 700
        assert f.history == slice(f.train_start, f.test_end)
    for a, b in itertools.pairwise(folds):
        assert a.test_end <= b.test_start  # test windows are disjoint ...
        assert a.test_end == b.test_start  # ... and consecutive
    tested = np.concatenate([np.arange(f.test_start, f.test_end) for f in folds])
    assert len(np.unique(tested)) == len(tested)
    if scheme == "anchored":
        assert all(f.train_start == 0 for f in folds)
    else:
        assert len({f.train_end - f.train_start for f in folds}) == 1
        assert folds[-1].train_start > 0


def test_explicit_test_length_and_too_few_bars() -> None:
    folds = make_folds(5000, FoldConfig(n_folds=3, min_train_bars=500, test_bars=400))
    assert [(f.test_start, f.test_end) for f in folds] == [(3800, 4200), (4200, 4600), (4600, 5000)]
    assert folds[0].train_end == 3800  # extra history goes to training
    with pytest.raises(DataError, match=r"BTC: 900 bars are too few for 4 walk-forward fold\(s\).*"
                                        r"min_train_bars \(500\) \+ embargo_bars \(10\) \+ 4 x at least "
                                        r"100 test bars = 910"):
        make_folds(900, FoldConfig(n_folds=4, min_train_bars=500, embargo_bars=10, min_test_bars=100),
                   "BTC")
    with pytest.raises(DataError, match="4 x 400 test bars = 2100"):
        make_folds(2000, FoldConfig(n_folds=4, min_train_bars=500, test_bars=400))


@pytest.mark.parametrize("kwargs", [
    {"n_folds": 0}, {"min_train_bars": 0}, {"embargo_bars": -1}, {"scheme": "expanding"},
    {"test_bars": 10, "min_test_bars": 50}, {"n_folds": 2.5},
])
def test_bad_fold_settings(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        FoldConfig(**kwargs)


# --- the objective: no lookahead ----------------------------------------------------------------------

def test_perturbing_bars_after_a_test_window_leaves_that_fold_unchanged(btc: Bars) -> None:
    config = FoldConfig(n_folds=4, min_train_bars=3000, embargo_bars=5)
    params = {"fast": 8, "slow": 30}
    base = evaluate("sma_cross", params, prepare_windows({"BTC": btc}, config), BACKTEST)
    folds = make_folds(len(btc), config)
    rng = np.random.default_rng(0)
    for fold in folds[:-1]:
        noise = np.ones(len(btc))
        noise[fold.test_end:] = rng.uniform(0.5, 1.5, len(btc) - fold.test_end)
        perturbed = Bars(btc.timestamp, btc.open * noise, btc.high * noise * 1.01, btc.low * noise * 0.99,
                         btc.close * noise, btc.volume)
        after = evaluate("sma_cross", params, prepare_windows({"BTC": perturbed}, config), BACKTEST)
        for k in range(len(folds)):
            row, moved = base.row(k), after.row(k)
            if k <= fold.index:
                np.testing.assert_array_equal(np.array(row[4:], dtype=object),
                                              np.array(moved[4:], dtype=object))
            else:  # the later folds do see the perturbed bars: the test is sensitive
                assert row != moved


def test_positions_never_see_a_bar_after_the_window(btc: Bars) -> None:
    windows = prepare_windows({"BTC": btc}, FOLDS)
    Spy.seen.clear()
    frame = evaluate(Spy(), {}, windows, BACKTEST)
    folds = make_folds(len(btc), FOLDS)
    spans = [(int(btc.timestamp[f.train_start]), int(btc.timestamp[f.test_end - 1])) for f in folds]
    assert Spy.seen == spans
    assert (frame["n_trades"] > 0).all()


def test_window_trades_from_its_first_open_to_its_last_close(btc: Bars) -> None:
    """Always long: one trade per window, bought at the test window's first open (the signal came from the
    bar before it) and valued at the window's last close, whatever comes after."""
    fee = 0.001
    frame = evaluate(AlwaysLong(), {}, prepare_windows({"BTC": btc}, FOLDS), BacktestConfig(fee=fee))
    for fold, row in zip(make_folds(len(btc), FOLDS), frame.iter_rows(named=True), strict=True):
        expected = btc.close[fold.test_end - 1] / (btc.open[fold.test_start] * (1 + fee)) - 1
        assert row["n_trades"] == 1
        assert row["total_return"] == pytest.approx(expected, rel=1e-12)
        assert row["start"].timestamp() * 1000 == btc.timestamp[fold.test_start]
        assert row["exposure"] == pytest.approx(1 - 1 / (fold.test_end - fold.test_start + 1))


# --- the study -----------------------------------------------------------------------------------------

def _config(**overrides) -> OptimizeConfig:
    settings = {"n_trials": 24, "seed": 3, "population_size": 8, "folds": FOLDS, "min_trades": 5}
    return OptimizeConfig(**(settings | overrides))


def test_same_seed_gives_the_same_trials_and_best(cluster: dict[str, Bars]) -> None:
    a = optimize("sma_cross", cluster, _config(), BACKTEST, None, "a")
    b = optimize("sma_cross", cluster, _config(), BACKTEST, None, "b")
    assert a.trials.equals(b.trials)
    assert (a.best_params, a.best_trial, a.best_reason) == (b.best_params, b.best_trial, b.best_reason)
    assert a.best_metrics.equals(b.best_metrics)
    other = optimize("sma_cross", cluster, _config(seed=4), BACKTEST, None, "c")
    assert not other.trials.equals(a.trials)
    assert a.trials.row(0, named=True)["param_fast"] == 10  # the defaults are the first trial


def test_study_persists_and_resumes_in_sqlite(cluster: dict[str, Bars], tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "nested" / "studies.db")
    first = optimize("sma_cross", cluster, _config(n_trials=12), BACKTEST, url, "resume")
    assert first.n_new_trials == 12 and len(first.trials) == 12
    second = optimize("sma_cross", cluster, _config(n_trials=20), BACKTEST, url, "resume")
    assert second.n_new_trials == 8 and len(second.trials) == 20
    assert second.trials.head(12).equals(first.trials)  # earlier trials are kept, not redone
    third = optimize("sma_cross", cluster, _config(n_trials=20), BACKTEST, url, "resume")
    assert third.n_new_trials == 0 and third.trials.equals(second.trials)
    assert third.best_params == second.best_params

    study = optuna.load_study(study_name="resume", storage=url)
    ok = [t for t in study.trials if t.user_attrs["status"] == "ok"]
    assert ok
    for t in ok:  # per-fold metrics are recorded, and the objectives are their means
        folds = t.user_attrs["folds"]
        assert {(f["symbol"], f["fold"]) for f in folds} == {(s, k) for s in cluster for k in range(4)}
        assert t.values[0] == pytest.approx(np.mean([f["total_return"] for f in folds]))
        assert t.values[1] == pytest.approx(np.mean([f["max_drawdown"] for f in folds]))
        assert t.user_attrs["n_trades"] == sum(f["n_trades"] for f in folds)
    # the front agrees with Optuna's own constrained Pareto front
    assert {t.number for t in study.best_trials} == set(second.pareto["trial"])

    with pytest.raises(ConfigError, match="created with another backtest"):
        optimize("sma_cross", cluster, _config(n_trials=20), BacktestConfig(fee=0.002), url, "resume")
    with pytest.raises(ConfigError, match="created with another strategy"):
        optimize("macd_trend", cluster, _config(n_trials=20), BACKTEST, url, "resume")


@pytest.mark.postgres
def test_study_on_postgres(cluster: dict[str, Bars]) -> None:
    name = f"xray_optimize_{uuid.uuid4().hex[:12]}"
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            url = f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
            first = optimize("sma_cross", cluster, _config(n_trials=8), BACKTEST, url, "pg")
            resumed = optimize("sma_cross", cluster, _config(n_trials=16), BACKTEST, url, "pg")
            assert (first.n_new_trials, resumed.n_new_trials, len(resumed.trials)) == (8, 8, 16)
            assert resumed.trials.head(8).equals(first.trials)
            in_memory = optimize("sma_cross", cluster, _config(n_trials=8), BACKTEST, None, "pg")
            assert in_memory.trials.equals(first.trials)  # the storage does not change the search
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_invalid_combinations_never_crash_a_study(cluster: dict[str, Bars]) -> None:
    """sma_cross samples fast up to 200 and slow from 3: many draws have fast >= slow. Short folds also
    make large windows unable to run (too little history): both become penalised, infeasible trials."""
    short = {symbol: bars.take(slice(0, 500)) for symbol, bars in cluster.items()}
    folds = FoldConfig(n_folds=3, min_train_bars=150)  # fold 0 has 268 bars of history: slow <= 268
    result = optimize("sma_cross", short, _config(n_trials=32, folds=folds), BACKTEST, None, "bad")
    statuses = result.trials["status"].to_list()
    assert len(statuses) == 32 and "invalid" in statuses and "ok" in statuses
    study_trials = result.trials.filter(pl.col("status") == "invalid")
    assert study_trials["mean_return"].is_nan().all()
    assert set(result.pareto["status"]) == {"ok"}


def test_invalid_trials_record_reason_and_constraint(cluster: dict[str, Bars], tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "bad.db")
    short = {symbol: bars.take(slice(0, 500)) for symbol, bars in cluster.items()}
    folds = FoldConfig(n_folds=3, min_train_bars=150)
    optimize("sma_cross", short, _config(n_trials=16, folds=folds), BACKTEST, url, "bad")
    trials = optuna.load_study(study_name="bad", storage=url).trials
    invalid = [t for t in trials if t.user_attrs["status"] == "invalid"]
    reasons = " ".join(t.user_attrs["reason"] for t in invalid)
    assert "must be below slow" in reasons and "too few" in reasons
    for t in invalid:
        assert t.values == [-1.0, 1.0] and t.constraints == {"valid_params": 1.0, "trades": 0.0}
    for t in trials:
        if t.user_attrs["status"] == "ok":
            assert t.constraints == {"valid_params": 0.0, "trades": 0.0}


def test_zero_trades_are_penalised_and_defaults_kept(cluster: dict[str, Bars]) -> None:
    result = optimize(NeverTrades(), cluster, _config(n_trials=6, population_size=3), BACKTEST, None, "zero")
    assert set(result.trials["status"]) == {"no_trades"}
    assert result.pareto.is_empty()
    assert result.best_trial is None and result.best_params == {"size": 3}
    assert "no valid parameter set traded" in result.best_reason


@pytest.mark.parametrize(("crossover", "mutation"), [("sbx", "polynomial"), ("undx", "random")])
def test_other_genetic_operators_on_a_float_space(cluster: dict[str, Bars], crossover: str,
                                                  mutation: str) -> None:
    config = _config(n_trials=12, population_size=4, crossover=crossover, mutation=mutation,
                     mutation_prob=0.5, crossover_prob=1.0)
    a = optimize("bb_breakout", cluster, config, BACKTEST, None, "ga")
    b = optimize("bb_breakout", cluster, config, BACKTEST, None, "ga")
    assert len(a.trials) == 12 and a.trials.equals(b.trials)
    assert a.trials.schema["param_k"] == pl.Float64 and a.trials["param_k"].n_unique() > 4


def test_pareto_front_is_non_dominated(cluster: dict[str, Bars]) -> None:
    result = optimize("sma_cross", cluster, _config(n_trials=40, population_size=10), BACKTEST, None, "front")
    valid = result.trials.filter(pl.col("status") == "ok")
    front = result.pareto
    assert not front.is_empty()
    points = valid.select("mean_return", "mean_drawdown").to_numpy()

    def dominated(r: float, d: float) -> bool:
        return bool((((points[:, 0] >= r) & (points[:, 1] <= d))
                     & ((points[:, 0] > r) | (points[:, 1] < d))).any())

    assert not any(dominated(r, d) for r, d in front.select("mean_return", "mean_drawdown").iter_rows())
    off_front = valid.filter(~pl.col("trial").is_in(front["trial"].implode()))
    assert all(dominated(r, d) for r, d in off_front.select("mean_return", "mean_drawdown").iter_rows())


def test_best_choice_rule() -> None:
    config = OptimizeConfig(min_trades=10, drawdown_floor=0.02)
    front = pl.DataFrame({
        "trial": [1, 2, 3, 4, 5],
        "mean_return": [0.10, 0.05, 0.01, -0.01, 0.30],
        "mean_drawdown": [0.10, 0.04, 0.001, 0.0005, 0.20],
        "n_trades": [50, 40, 30, 30, 3],
        "status": ["ok"] * 5,
    })
    # scores: 1.0, 1.25, 0.5 (drawdown floored at 0.02); 4 loses money; 5 has too few trades
    assert choose_best(front, config)[0] == 2
    trial, reason = choose_best(front.filter(pl.col("trial").is_in([4, 5])), config)
    assert trial is None and "positive mean out-of-sample return" in reason
    trial, reason = choose_best(front.filter(pl.col("trial") == 5), config)
    assert trial is None and ">= 10 trades (the most is 3)" in reason
    assert pareto_mask(front).tolist() == [True, True, True, True, True]
    worse = pl.concat([front, pl.DataFrame({"trial": [6], "mean_return": [0.05], "mean_drawdown": [0.05],
                                            "n_trades": [60], "status": ["ok"]})])
    assert pareto_mask(worse).tolist() == [True] * 5 + [False]


def test_the_chosen_parameters_are_a_pareto_trial(cluster: dict[str, Bars], tmp_path: Path) -> None:
    """40 trials, 2 symbols x 3,000 bars, persisted in SQLite (its speed: benchmarks/bench_bulk.py)."""
    config = OptimizeConfig(n_trials=40, seed=7, population_size=10, folds=FOLDS, min_trades=5)
    result = optimize("sma_cross", cluster, config, BacktestConfig(fee=0.0), sqlite_url(tmp_path / "s.db"),
                      "speed")
    assert result.elapsed_s > 0
    assert len(result.trials) == 40
    assert result.best_trial is not None, result.best_reason
    row = result.pareto.row(by_predicate=pl.col("trial") == result.best_trial, named=True)
    assert result.best_params == {"fast": row["param_fast"], "slow": row["param_slow"]}
    summary = result.best_summary  # the stored out-of-sample metrics are the chosen trial's
    assert summary["mean_return"] == pytest.approx(row["mean_return"])
    assert summary["mean_drawdown"] == pytest.approx(row["mean_drawdown"])
    assert summary["n_trades"] == row["n_trades"] >= 5
    assert len(result.best_metrics) == 8 and len(result.default_metrics) == 8


def test_pareto_plot_is_a_png_without_pyplot_state(cluster: dict[str, Bars]) -> None:
    import matplotlib.pyplot as plt

    result = optimize("sma_cross", cluster, _config(n_trials=16), BACKTEST, None, "plot")
    before = plt.get_fignums()
    png = pareto_plot_png(result)
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    assert plt.get_fignums() == before
    empty = optimize(NeverTrades(), cluster, _config(n_trials=3, population_size=3), BACKTEST, None, "e")
    assert pareto_plot_png(empty).startswith(b"\x89PNG")


# --- bad inputs ------------------------------------------------------------------------------------------

def test_bad_inputs_give_clear_errors(cluster: dict[str, Bars], tmp_path: Path) -> None:
    config = _config(n_trials=2, population_size=2)
    with pytest.raises(ConfigError, match="unknown strategy 'nope'"):
        optimize("nope", cluster, config, BACKTEST, None, "x")
    with pytest.raises(ConfigError, match="no symbols"):
        optimize("sma_cross", {}, config, BACKTEST, None, "x")
    with pytest.raises(ConfigError, match="study_name"):
        optimize("sma_cross", cluster, config, BACKTEST, None, " ")
    with pytest.raises(DataError, match=r"SHORT: 1100 bars are too few for 4 walk-forward"):
        optimize("sma_cross", {"SHORT": cluster["ETH_BTC"].take(slice(0, 1100))}, config, BACKTEST, None, "x")
    eth = cluster["ETH_BTC"]
    close = eth.close.copy()
    close[700] = math.nan
    broken = Bars(eth.timestamp, eth.open, eth.high, eth.low, close, eth.volume)
    with pytest.raises(DataError, match=r"BROKEN: close\[700\] = nan"):
        optimize("sma_cross", {"BROKEN": broken}, config, BACKTEST, None, "x")
    with pytest.raises(ConfigError, match="the model strategy has no model"):
        optimize("model", cluster, config, BACKTEST, None, "x")
    with pytest.raises(ConfigError, match="not a database URL"):
        optimize("sma_cross", cluster, config, BACKTEST, "not a url", "x")
    with pytest.raises(ConfigError, match="does not support"):
        optimize("sma_cross", cluster, config, BACKTEST, "mysql://u@localhost/db", "x")
    with pytest.raises(ConfigError, match="cannot open study storage") as unreachable:
        optimize("sma_cross", cluster, config, BACKTEST, "postgresql+psycopg2://nobody:secret@127.0.0.1:1/x",
                 "x")
    assert "secret" not in str(unreachable.value)
    with pytest.raises(ConfigError, match="sma_cross: fast \\(60\\) must be below slow"):
        evaluate("sma_cross", {"fast": 60, "slow": 50}, prepare_windows(cluster, FOLDS), BACKTEST)
    frame = read_parquet(CANDLES / "ETH_BTC-5m.parquet").drop("close")
    with pytest.raises(DataError, match="FRAME: missing column"):
        prepare_windows({"FRAME": frame}, FOLDS)


@pytest.mark.parametrize("kwargs", [
    {"n_trials": 0}, {"population_size": 1}, {"crossover": "magic"},
    {"crossover": "undx", "population_size": 2}, {"mutation": "gaussian"}, {"mutation_prob": 1.5},
    {"crossover_prob": -0.1}, {"drawdown_floor": 0.0},
    {"min_trades": -1}, {"seed": -3}, {"folds": {"n_folds": 3}},
])
def test_bad_optimize_settings(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        OptimizeConfig(**kwargs)


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used")
def test_a_dead_workers_trials_are_failed_on_resume(cluster: dict[str, Bars], tmp_path: Path) -> None:
    """A worker that died mid-batch leaves a RUNNING trial; once its heartbeat is older than the grace
    period (3 heartbeats), the next run fails it instead of counting it or waiting for it."""
    import sqlite3

    from xray_core.optimize.storage import close_storage, open_storage

    path = tmp_path / "dead.db"
    optimize("sma_cross", cluster, _config(n_trials=4, population_size=4), BACKTEST, sqlite_url(path), "dead")
    storage = open_storage(sqlite_url(path), heartbeat_s=60)
    try:
        orphan = optuna.load_study(study_name="dead", storage=storage).ask()
        storage.record_heartbeat(orphan._trial_id)
    finally:
        close_storage(storage)
    fresh = optimize("sma_cross", cluster, _config(n_trials=5, population_size=4), BACKTEST,
                     sqlite_url(path), "dead")
    assert fresh.n_new_trials == 1  # a live heartbeat: the orphan is left alone
    with sqlite3.connect(path) as db:  # the worker died an hour ago
        db.execute("UPDATE trial_heartbeats SET heartbeat = datetime('now', '-1 hour')")
    result = optimize("sma_cross", cluster, _config(n_trials=8, population_size=4), BACKTEST,
                      sqlite_url(path), "dead")
    assert result.n_new_trials == 3 and len(result.trials) == 8
    states = [t.state for t in optuna.load_study(study_name="dead", storage=sqlite_url(path)).trials]
    assert states.count(optuna.trial.TrialState.FAIL) == 1
    assert states.count(optuna.trial.TrialState.COMPLETE) == 8
