"""Self-learning loop, data side: market-labelled training rows, purged walk-forward splits,
out-of-sample evaluation through the backtest engine, and feature drift for retraining sensors.

Labels come from the market (what the price did after each bar), so models can be trained before any
user has traded; user fills only add sample weight. Everything here is pure domain code: the Dagster
assets and MLflow logging wire it up elsewhere.

Modules: `dataset` (build_training_frame, live_features, check_trainable, FEATURES, LabelConfig,
FeatureConfig), `splits` (purged_walk_forward, Fold), `evaluate` (evaluate_oos, walk_forward_evaluate,
EvalConfig, OosReport), `drift` (psi, ks_2sample, drift_report, drifted). `models` (the learners),
`skill` (paired block bootstrap, deflated Sharpe, shadow-book returns) and `gate` (promotion and
demotion on that evidence) build on them.
"""

from xray_core.learning.dataset import (
    FEATURES,
    LABEL_COLUMNS,
    FeatureConfig,
    LabelConfig,
    build_training_frame,
    check_trainable,
    live_features,
)
from xray_core.learning.drift import drift_report, drifted, ks_2sample, psi
from xray_core.learning.evaluate import (
    METRIC_KEYS,
    EvalConfig,
    OosReport,
    evaluate_oos,
    positions_from,
    walk_forward_evaluate,
)
from xray_core.learning.splits import Fold, fold_column, purged_walk_forward

__all__ = [
    "FEATURES",
    "LABEL_COLUMNS",
    "METRIC_KEYS",
    "EvalConfig",
    "FeatureConfig",
    "Fold",
    "LabelConfig",
    "OosReport",
    "build_training_frame",
    "check_trainable",
    "drift_report",
    "drifted",
    "evaluate_oos",
    "fold_column",
    "ks_2sample",
    "live_features",
    "positions_from",
    "psi",
    "purged_walk_forward",
    "walk_forward_evaluate",
]
