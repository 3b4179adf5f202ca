"""Multi-objective parameter search: Optuna NSGA-II over a strategy's search space, walk-forward scored.

Trials, batches and determinism. Trials are asked and told in batches that fill exactly one NSGA-II
generation (`population_size`): a generation's children are bred from the previous generations only, so
asking all of them before evaluating any changes nothing, and it lets every (symbol, fold) window be
backtested for the whole generation in one `run_many` call. The search runs in one thread (a helper
thread only records heartbeats) with a sampler seeded by `seed` plus the number of trials already in a
resumed study, so that a resumed run does not replay the first run's random draws: the same inputs and
seed give the same trials.

Resuming. The study is created with `load_if_exists=True`; `n_trials` is the study's total budget, so a
re-run after an interruption completes the missing trials and a re-run of a finished study adds none
(it only recomputes the result). Trials left RUNNING by a dead worker are failed via heartbeats (see
`storage`). A study remembers its setup (strategy and search space, symbols, folds, backtest settings,
data span); opening it with another setup is a ConfigError, because trials scored on different data are
not comparable.

Parameter constraints. Values are suggested from `strategy.search_space()` (int or float); combinations
that `strategy.params()` rejects (fast >= slow, ...) are neither pruned (a pruned trial has no values,
so NSGA-II could not rank it, and it would consume budget unseen) nor re-sampled (a suggested value
cannot change within a trial): the trial completes with penalty values and a violated `valid_params`
constraint (`Trial.set_constraint`), so NSGA-II's constrained domination ranks it below every valid
trial, and the reason is kept in its `reason` attribute. See `objective` for the penalties.

Choosing the best parameters. Among the Pareto-optimal trials with at least `min_trades` trades over
all test windows and a positive mean return, the one maximising mean_return / max(mean_drawdown,
drawdown_floor); the floor keeps a near-zero drawdown from making any profit look infinitely good. Losing
trials are excluded because the ratio ranks losses backwards (a loss divided by a larger drawdown looks
better). If none qualifies, the strategy's defaults are kept and `best_reason` says why.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import optuna
import polars as pl
from optuna.samplers import nsgaii

from xray_core.backtest import BacktestConfig
from xray_core.candles.bars import Bars
from xray_core.errors import ConfigError
from xray_core.optimize.folds import FoldConfig
from xray_core.optimize.objective import (
    Score,
    Status,
    Window,
    evaluate,
    prepare_windows,
    resolve_strategy,
    run_windows,
    score,
    window_records,
)
from xray_core.optimize.storage import beating, close_storage, masked, open_storage
from xray_core.progress import report
from xray_core.strategies import ParamRange, Strategy

DIRECTIONS: tuple[Literal["maximize", "minimize"], ...] = ("maximize", "minimize")
SETUP_ATTR = "xray_setup"
CROSSOVERS: dict[str, type[nsgaii.BaseCrossover]] = {
    "uniform": nsgaii.UniformCrossover, "blxalpha": nsgaii.BLXAlphaCrossover, "sbx": nsgaii.SBXCrossover,
    "vsbx": nsgaii.VSBXCrossover, "undx": nsgaii.UNDXCrossover, "spx": nsgaii.SPXCrossover,
}
Mutation = Literal["random", "polynomial"]


@dataclass(frozen=True, slots=True)
class OptimizeConfig:
    """The search and how its winner is chosen.

    n_trials: total trials of the study (a resumed study runs only the missing ones).
    seed: NSGA-II's seed; same seed and inputs, same trials.
    population_size: trials per generation; also the evaluation batch.
    crossover: one of CROSSOVERS; crossover_prob: chance a child is bred by crossover rather than copied;
    swapping_prob: per-parameter swap chance of the uniform crossover.
    mutation: "random" re-samples a mutated parameter uniformly, "polynomial" perturbs it near the parent;
    mutation_prob: per-parameter mutation chance (None: 1 / number of parameters).
    folds: the walk-forward split.
    min_trades: fewest trades over all test windows (all symbols and folds) for a trial to be chosen.
    drawdown_floor: drawdowns below it count as it when ranking return / drawdown (module docstring).
    enqueue_defaults: make the strategy's defaults the study's first trial, a known baseline.
    heartbeat_s: heartbeat interval of persisted trials.
    """

    n_trials: int = 40
    seed: int = 0
    population_size: int = 20
    crossover: str = "uniform"
    crossover_prob: float = 0.9
    swapping_prob: float = 0.5
    mutation: Mutation = "random"
    mutation_prob: float | None = None
    folds: FoldConfig = field(default_factory=FoldConfig)
    min_trades: int = 10
    drawdown_floor: float = 0.01
    enqueue_defaults: bool = True
    heartbeat_s: int = 60

    def __post_init__(self) -> None:
        _int_at_least("n_trials", self.n_trials, 1)
        _int_at_least("seed", self.seed, 0)
        _int_at_least("population_size", self.population_size, 2)
        _int_at_least("min_trades", self.min_trades, 0)
        _int_at_least("heartbeat_s", self.heartbeat_s, 1)
        if self.crossover not in CROSSOVERS:
            raise ConfigError(f"crossover must be one of {', '.join(CROSSOVERS)}, got {self.crossover!r}",
                              "uniform is NSGA-II's default")
        with _quiet():
            n_parents = CROSSOVERS[self.crossover]().n_parents
        if self.population_size < n_parents:
            raise ConfigError(
                f"population_size {self.population_size} is too small for the {self.crossover} crossover",
                f"it breeds from {n_parents} parents: use at least that many")
        if self.mutation not in ("random", "polynomial"):
            raise ConfigError(f"mutation must be random or polynomial, got {self.mutation!r}",
                              "random re-samples a mutated parameter")
        for name in ("crossover_prob", "swapping_prob", "mutation_prob"):
            value = getattr(self, name)
            if value is not None and not (_is_real(value) and 0.0 <= value <= 1.0):
                raise ConfigError(f"{name} must be a probability in [0, 1], got {value!r}", "e.g. 0.5")
        if not (_is_real(self.drawdown_floor) and 0.0 < self.drawdown_floor <= 1.0):
            raise ConfigError(f"drawdown_floor must be in (0, 1], got {self.drawdown_floor!r}",
                              "e.g. 0.01: drawdowns below 1% count as 1%")
        if not isinstance(self.folds, FoldConfig):
            raise ConfigError("folds must be a FoldConfig", "e.g. FoldConfig(n_folds=4)")


@dataclass(frozen=True, slots=True)
class OptimizeResult:
    """A study's outcome. Frames have one row per completed trial: `trial`, one `param_<name>` column
    per parameter, `mean_return`, `mean_drawdown` (NaN for invalid trials), `n_trades`, `status`."""

    strategy: str
    study_name: str
    storage: str | None  # the URL without its password; None for an in-memory study
    trials: pl.DataFrame
    pareto: pl.DataFrame  # the non-dominated valid, trading trials, by mean_return descending
    best_params: dict[str, Any]
    best_trial: int | None  # None when the defaults were kept
    best_reason: str
    best_metrics: pl.DataFrame  # out-of-sample metrics of best_params, one row per (symbol, fold)
    default_metrics: pl.DataFrame  # the same for the strategy's defaults, the baseline
    n_new_trials: int
    elapsed_s: float

    @property
    def best_summary(self) -> dict[str, float | int]:
        return _summary(self.best_metrics)


def optimize(strategy_name: str | Strategy, bars_by_symbol: Mapping[str, Bars | pl.DataFrame],
             config: OptimizeConfig, backtest: BacktestConfig, storage_url: str | None,
             study_name: str) -> OptimizeResult:
    """Search the strategy's parameters on the symbols' walk-forward folds; see the module docstring.

    `storage_url`: `sqlite:///path.db` or `postgresql+psycopg2://...` to persist and resume the study,
    None for an in-memory study. Several symbols (a cluster) share one parameter set."""
    started = time.perf_counter()
    strategy = resolve_strategy(strategy_name)
    if not isinstance(study_name, str) or not study_name.strip():
        raise ConfigError(f"study_name must be a non-empty string, got {study_name!r}",
                          "e.g. sma_cross-btc-cluster")
    space = strategy.search_space()
    windows = prepare_windows(bars_by_symbol, config.folds)
    defaults = strategy.params({})
    default_metrics = evaluate(strategy, defaults, windows, backtest)  # fails early if it cannot run
    storage = open_storage(storage_url, config.heartbeat_s) if storage_url is not None else None
    try:
        study = optuna.create_study(storage=storage, study_name=study_name, directions=list(DIRECTIONS),
                                    load_if_exists=True)
        _check_setup(study, _setup(strategy, bars_by_symbol, windows, config, backtest))
        with _quiet():
            optuna.storages.fail_stale_trials(study)
        existing = len(study.get_trials(deepcopy=False))
        study.sampler = _sampler(config, config.seed + existing)
        if existing == 0 and config.enqueue_defaults:
            study.enqueue_trial({r.name: getattr(defaults, r.name) for r in space})
        n_new = _run_trials(study, storage, strategy, space, windows, config, backtest)
        trials = trials_frame(study, space)
    finally:
        close_storage(storage)
    pareto = trials.filter(pareto_mask(trials)).sort(["mean_return", "trial"], descending=[True, False])
    best_trial, reason = choose_best(pareto, config)
    if best_trial is None:
        best_params, best_metrics = defaults.model_dump(), default_metrics
    else:
        row = pareto.row(by_predicate=pl.col("trial") == best_trial, named=True)
        best_params = strategy.params({r.name: row[f"param_{r.name}"] for r in space}).model_dump()
        best_metrics = evaluate(strategy, best_params, windows, backtest)
    return OptimizeResult(strategy.name, study_name, masked(storage_url), trials, pareto, best_params,
                          best_trial, reason, best_metrics, default_metrics, n_new,
                          time.perf_counter() - started)


def _run_trials(study: optuna.Study, storage: optuna.storages.RDBStorage | None, strategy: Strategy,
                space: Sequence[ParamRange], windows: Sequence[Window], config: OptimizeConfig,
                backtest: BacktestConfig) -> int:
    """Ask, evaluate and tell generation-sized batches until the study has `n_trials` complete trials."""
    n_new = 0
    while (done := len(study.get_trials(deepcopy=False, states=[optuna.trial.TrialState.COMPLETE]))) \
            < config.n_trials:
        report("trial", study.study_name, done, config.n_trials)  # a resumed study starts past 0
        size = min(config.population_size - done % config.population_size, config.n_trials - done)
        with _quiet():
            batch = [study.ask() for _ in range(size)]
        with beating(storage, [trial._trial_id for trial in batch], config.heartbeat_s):
            try:
                scores, records = _evaluate_batch(batch, strategy, space, windows, backtest)
            except BaseException:
                for trial in batch:
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
                raise
            for trial, trial_score, trial_records in zip(batch, scores, records, strict=True):
                _tell(study, trial, trial_score, trial_records)
        n_new += size
    report("trial", study.study_name, done, config.n_trials)
    return n_new


def _evaluate_batch(batch: Sequence[optuna.Trial], strategy: Strategy, space: Sequence[ParamRange],
                    windows: Sequence[Window], backtest: BacktestConfig
                    ) -> tuple[list[Score], list[list[dict[str, Any]]]]:
    """Suggest every trial's values, validate them, and backtest the valid ones together."""
    scores: list[Score | None] = [None] * len(batch)
    valid: list[tuple[int, Any]] = []
    for i, trial in enumerate(batch):
        values = {r.name: trial.suggest_int(r.name, math.ceil(r.low), math.floor(r.high))
                  if r.is_int else trial.suggest_float(r.name, r.low, r.high) for r in space}
        try:
            valid.append((i, strategy.params(values)))
        except ConfigError as exc:
            scores[i] = Score(Status.INVALID, math.nan, math.nan, 0, str(exc))
    records: list[list[dict[str, Any]]] = [[] for _ in batch]
    if valid:
        table, errors = run_windows(strategy, [params for _, params in valid], windows, backtest)
        for k, (i, _) in enumerate(valid):
            scores[i] = score(table[k], errors[k])
            records[i] = window_records(windows, table[k]) if errors[k] is None else []
    if any(s is None for s in scores):
        raise AssertionError("a trial of the batch was left unscored")
    return [s for s in scores if s is not None], records


def _tell(study: optuna.Study, trial: optuna.Trial, trial_score: Score,
          records: list[dict[str, Any]]) -> None:
    trial.set_user_attr("status", trial_score.status.value)
    trial.set_user_attr("n_trades", trial_score.n_trades)
    trial.set_user_attr("folds", records)
    if trial_score.reason:
        trial.set_user_attr("reason", trial_score.reason)
    for key, value in trial_score.constraints.items():
        trial.set_constraint(key, value)
    study.tell(trial, list(trial_score.values))


def trials_frame(study: optuna.Study, space: Sequence[ParamRange]) -> pl.DataFrame:
    """The study's completed trials as a frame (see OptimizeResult); means are unpenalised."""
    rows = []
    for t in study.get_trials(deepcopy=False, states=[optuna.trial.TrialState.COMPLETE]):
        status = t.user_attrs.get("status", Status.INVALID.value)
        mean_return, mean_drawdown = t.values if status == Status.OK else (
            (0.0, 0.0) if status == Status.NO_TRADES else (math.nan, math.nan))
        rows.append({"trial": t.number, **{f"param_{r.name}": t.params.get(r.name) for r in space},
                     "mean_return": mean_return, "mean_drawdown": mean_drawdown,
                     "n_trades": int(t.user_attrs.get("n_trades", 0)), "status": status})
    schema: dict[str, Any] = {"trial": pl.Int64, **{f"param_{r.name}": pl.Int64 if r.is_int else pl.Float64
                                                     for r in space},
                              "mean_return": pl.Float64, "mean_drawdown": pl.Float64,
                              "n_trades": pl.Int64, "status": pl.String}
    return pl.DataFrame(rows, schema=schema, orient="row")


def pareto_mask(trials: pl.DataFrame) -> np.ndarray:
    """True for the valid, trading trials no other such trial dominates (return >= and drawdown <=,
    one strictly better); identical points are all kept."""
    ok = (trials["status"] == Status.OK.value).to_numpy()
    ret = trials["mean_return"].to_numpy()
    dd = trials["mean_drawdown"].to_numpy()
    mask = np.zeros(len(trials), dtype=bool)
    idx = np.flatnonzero(ok)
    r, d = ret[idx], dd[idx]
    no_worse = (r[None, :] >= r[:, None]) & (d[None, :] <= d[:, None])  # [i, j]: j no worse than i
    better = (r[None, :] > r[:, None]) | (d[None, :] < d[:, None])
    mask[idx] = ~(no_worse & better).any(axis=1)
    return mask


def choose_best(pareto: pl.DataFrame, config: OptimizeConfig) -> tuple[int | None, str]:
    """The best-choice rule of the module docstring: (trial number or None, why)."""
    if pareto.is_empty():
        return None, "kept the defaults: no valid parameter set traded in any test window"
    enough = pareto.filter(pl.col("n_trades") >= config.min_trades)
    if enough.is_empty():
        return None, (f"kept the defaults: no Pareto-optimal trial has >= {config.min_trades} trades "
                      f"(the most is {pareto.select(pl.max('n_trades')).item()})")
    profitable = enough.filter(pl.col("mean_return") > 0)
    if profitable.is_empty():
        return None, (f"kept the defaults: none of the {len(enough)} Pareto-optimal trial(s) with "
                      f">= {config.min_trades} trades has a positive mean out-of-sample return")
    ranked = profitable.with_columns(
        score=pl.col("mean_return") / pl.max_horizontal(pl.col("mean_drawdown"), config.drawdown_floor)
    ).sort(["score", "trial"], descending=[True, False])
    best = ranked.row(0, named=True)
    return int(best["trial"]), (
        f"trial {best['trial']}: the highest mean return / max(mean drawdown, {config.drawdown_floor:g}) "
        f"= {best['score']:.4g} among {len(profitable)} profitable Pareto-optimal trial(s) with "
        f">= {config.min_trades} trades")


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence Optuna's notes that heartbeats, some crossovers and the polynomial mutation are
    experimental, and that heartbeats are meant for `Study.optimize` (the batches keep heartbeats
    themselves, `storage.beating`)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")
        yield


def _sampler(config: OptimizeConfig, seed: int) -> optuna.samplers.NSGAIISampler:
    crossover_type = CROSSOVERS[config.crossover]
    with _quiet():
        crossover = (nsgaii.UniformCrossover(config.swapping_prob)
                     if crossover_type is nsgaii.UniformCrossover else crossover_type())
        mutation = nsgaii.PolynomialMutation() if config.mutation == "polynomial" else None
    return optuna.samplers.NSGAIISampler(
        population_size=config.population_size, mutation=mutation, mutation_prob=config.mutation_prob,
        crossover=crossover, crossover_prob=config.crossover_prob, swapping_prob=config.swapping_prob,
        seed=seed)


def _setup(strategy: Strategy, bars_by_symbol: Mapping[str, Any], windows: Sequence[Window],
           config: OptimizeConfig, backtest: BacktestConfig) -> dict[str, Any]:
    """What makes two runs' trials comparable, JSON-normalised."""
    span: dict[str, list[int]] = {}
    for w in windows:
        first, last = span.get(w.symbol, [w.history.timestamp[0], w.history.timestamp[-1]])
        span[w.symbol] = [int(min(first, w.history.timestamp[0])), int(max(last, w.history.timestamp[-1]))]
    setup = {"strategy": strategy.name, "search_space": [asdict(r) for r in strategy.search_space()],
             "symbols": sorted(bars_by_symbol), "folds": asdict(config.folds), "backtest": asdict(backtest),
             "data_span_ms": span}
    return json.loads(json.dumps(setup))


def _check_setup(study: optuna.Study, setup: dict[str, Any]) -> None:
    stored = study.user_attrs.get(SETUP_ATTR)
    if stored is None:
        if study.get_trials(deepcopy=False):
            raise ConfigError(f"study {study.study_name!r} exists but was not created by X-Ray",
                              "use another study_name")
        study.set_user_attr(SETUP_ATTR, setup)
        return
    differing = [key for key in setup if stored.get(key) != setup[key]]
    if differing:
        raise ConfigError(
            f"study {study.study_name!r} was created with another {', '.join(differing)} "
            f"(stored: {', '.join(f'{k}={stored.get(k)!r}' for k in differing)})",
            "its trials would not be comparable; use a new study_name for the new setup")


def _summary(metrics: pl.DataFrame) -> dict[str, float | int]:
    return {"mean_return": float(metrics["total_return"].mean()),  # type: ignore[arg-type]
            "mean_drawdown": float(metrics["max_drawdown"].mean()),  # type: ignore[arg-type]
            "n_trades": int(metrics["n_trades"].sum())}


def _is_real(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _int_at_least(name: str, value: object, low: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}", f"e.g. {max(low, 1)}")
