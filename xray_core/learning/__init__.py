"""Self-learning loop, data side: market-labelled training rows, purged walk-forward splits,
out-of-sample evaluation through the backtest engine, and feature drift for retraining sensors.

Labels come from the market (what the price did after each bar), so models can be trained before any
user has traded; user fills only add sample weight. Everything here is pure domain code: the Dagster
assets and MLflow logging wire it up elsewhere.

Modules: `dataset` (build_training_frame, live_features, check_trainable, FEATURES, LabelConfig,
FeatureConfig), `splits` (purged_walk_forward, Fold).
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
from xray_core.learning.splits import Fold, fold_column, purged_walk_forward

__all__ = [
    "FEATURES",
    "LABEL_COLUMNS",
    "FeatureConfig",
    "Fold",
    "LabelConfig",
    "build_training_frame",
    "check_trainable",
    "fold_column",
    "live_features",
    "purged_walk_forward",
]
