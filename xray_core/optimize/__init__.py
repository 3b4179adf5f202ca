"""Strategy parameter optimisation: walk-forward folds, an out-of-sample objective, Optuna NSGA-II.

* `folds`: anchored or rolling walk-forward splits with an embargo gap; test windows are out-of-sample.
* `objective`: a parameter set's metrics on every (symbol, fold) test window — positions from history up
  to the window's end only — aggregated to (mean total return, mean max drawdown), with penalties.
* `study`: `optimize(...)`, a seeded, resumable, multi-objective study persisted in SQLite or PostgreSQL,
  its Pareto front and the chosen parameters with their out-of-sample metrics.
* `plot`: `pareto_plot_png(result)`.

Pure domain code: no Dagster, MLflow or Redis.
"""

from xray_core.optimize.folds import Fold, FoldConfig, make_folds
from xray_core.optimize.objective import Score, Status, Window, evaluate, prepare_windows
from xray_core.optimize.plot import pareto_plot_png
from xray_core.optimize.storage import sqlite_url
from xray_core.optimize.study import OptimizeConfig, OptimizeResult, choose_best, optimize, pareto_mask

__all__ = [
    "Fold",
    "FoldConfig",
    "OptimizeConfig",
    "OptimizeResult",
    "Score",
    "Status",
    "Window",
    "choose_best",
    "evaluate",
    "make_folds",
    "optimize",
    "pareto_mask",
    "pareto_plot_png",
    "prepare_windows",
    "sqlite_url",
]
