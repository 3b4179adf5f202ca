"""The baseline: scikit-learn's histogram gradient boosting on each row's features.

Why this model: it needs no scaling, handles NaN natively, trains on tens of thousands of rows in
seconds and is hard to overfit badly with shallow trees, which makes it the bar every sequence model has
to clear.

Early stopping is done here rather than by scikit-learn, because scikit-learn's own (`early_stopping=
True`) draws its validation rows at random: on a time series that leaks the future into the choice of
the number of trees (a validation bar's neighbours sit in the training set). Instead the last
`validation_fraction` of the timestamps (all symbols at once) is held out, the ensemble is grown on the
earlier rows, and the number of trees is the one with the lowest weighted log-loss on the held-out
slice, found with patience `n_iter_no_change`. The final model is then refit on every row with that
many trees, so the most recent bars, the most relevant in a drifting market, are not left out.

Saved with skops rather than joblib: joblib is pickle, and unpickling a file from the model registry can
run arbitrary code. skops stores the estimator as data and loads only the types it is told to trust;
the one type a fitted `HistGradientBoostingClassifier` needs beyond skops's defaults is listed in
`TRUSTED_TYPES`, and a file needing any other is refused.

Importing skops.io must not import torch: skops builds its default trust list by walking every
scikit-learn package, and one of them is scikit-learn's array-API shim for torch, which imports torch
whenever it is installed (seconds and hundreds of MB for a model that never touches it). That one shim
is hidden while skops.io loads (`_without_torch_shim`); it holds no estimator, so the trust list is
the same, and the shim is importable again afterwards.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import polars as pl
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import threadpool_limits

from xray_core.errors import DataError
from xray_core.learning.models.base import (
    SignalModel,
    balanced_weights,
    check_float,
    check_int,
    check_trainable,
    epoch_ms,
    feature_matrix,
    labels_and_weights,
    time_split,
)

TORCH_SHIM = "sklearn.externals.array_api_compat.torch"


@contextmanager
def _without_torch_shim() -> Iterator[None]:
    """Make scikit-learn's torch array-API shim unimportable for the duration (a None entry in
    sys.modules fails the import, which scikit-learn's package walk skips), unless it is already
    loaded; afterwards it imports normally again."""
    hide = TORCH_SHIM not in sys.modules
    if hide:
        sys.modules[TORCH_SHIM] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        if hide and sys.modules.get(TORCH_SHIM, ...) is None:
            del sys.modules[TORCH_SHIM]


with _without_torch_shim():
    import skops.io as sio

WEIGHTS_FILE = "gbm.skops"
TRUSTED_TYPES = ["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"]
MIN_ROWS = 100


@dataclass(frozen=True)
class GbmConfig:
    """Hyper-parameters; the defaults are the quick test settings (see `DEMO`)."""

    max_iter: int = 60  # the most trees; early stopping usually picks fewer
    learning_rate: float = 0.1
    max_leaf_nodes: int = 15
    max_depth: int = 4
    min_samples_leaf: int = 40
    l2_regularization: float = 1.0
    validation_fraction: float = 0.2  # the latest share of timestamps held out to pick the tree count
    n_iter_no_change: int = 10
    balance_classes: bool = True
    seed: int = 0
    threads: int = 1  # OpenMP threads: one, for the reason given in base.torch_threads (same effect here)

    def __post_init__(self) -> None:
        check_int("max_iter", self.max_iter, 1, 10_000)
        check_float("learning_rate", self.learning_rate, 0.0, 1.0, open_low=True)
        check_int("max_leaf_nodes", self.max_leaf_nodes, 2, 4096)
        check_int("max_depth", self.max_depth, 1, 64)
        check_int("min_samples_leaf", self.min_samples_leaf, 1)
        check_float("l2_regularization", self.l2_regularization, 0.0, 1e6)
        check_float("validation_fraction", self.validation_fraction, 0.05, 0.5)
        check_int("n_iter_no_change", self.n_iter_no_change, 1)
        if not isinstance(self.balance_classes, bool):
            check_int("balance_classes", self.balance_classes, 0, 1)
        check_int("seed", self.seed, 0)
        check_int("threads", self.threads, 1, 256)


DEMO: dict[str, Any] = {
    "max_iter": 400,
    "learning_rate": 0.05,
    "max_leaf_nodes": 31,
    "max_depth": 6,
    "min_samples_leaf": 100,
    "n_iter_no_change": 30,
}


class GbmModel(SignalModel):
    """`HistGradientBoostingClassifier` on the feature row; NaN features are allowed in training (the
    trees learn a side for them) but a row with any NaN is given 0.5 at prediction, like every model
    here, because it lacks the history its features need."""

    kind: ClassVar[str] = "gbm"
    flavor = "sklearn"
    Config = GbmConfig
    library = ("scikit-learn", "skops", "threadpoolctl")
    config: GbmConfig

    def __init__(self, features: list[str] | None = None, **params: Any) -> None:
        super().__init__(features, **params)
        self.estimator: HistGradientBoostingClassifier | None = None

    def _estimator(self, n_trees: int) -> HistGradientBoostingClassifier:
        c = self.config
        return HistGradientBoostingClassifier(
            max_iter=n_trees,
            learning_rate=c.learning_rate,
            max_leaf_nodes=c.max_leaf_nodes,
            max_depth=c.max_depth,
            min_samples_leaf=c.min_samples_leaf,
            l2_regularization=c.l2_regularization,
            early_stopping=False,  # done on a time-ordered slice in `fit`, see the module docstring
            random_state=c.seed,
        )

    def fit(self, frame: pl.DataFrame) -> Self:
        x = feature_matrix(frame, self.feature_names, "gbm fit")
        y, w = labels_and_weights(frame, "gbm fit")
        check_trainable(y, int(np.isfinite(x).any(axis=1).sum()), MIN_ROWS, "gbm fit")
        weights = balanced_weights(y, w, bool(self.config.balance_classes))
        train, valid = time_split(epoch_ms(frame, "gbm fit"), self.config.validation_fraction)
        if len(np.unique(y[train])) < 2 or not valid.any():
            raise DataError("gbm fit: the training slice holds one class only", "use a longer period")
        with threadpool_limits(self.config.threads):
            best, losses = self._pick_tree_count(x, y, weights, train, valid)
            self.estimator = self._estimator(best).fit(x, y, sample_weight=weights)
        self.fit_info = {
            "n_trees": best,
            "valid_log_loss": losses[best - 1],
            "valid_rows": int(valid.sum()),
            "train_rows": int(train.sum()),
            "up_share": float(y.mean()),
        }
        self._fitted = True
        return self

    def _pick_tree_count(
        self, x: np.ndarray, y: np.ndarray, w: np.ndarray, train: np.ndarray, valid: np.ndarray
    ) -> tuple[int, list[float]]:
        """Grow `max_iter` trees on the training slice and read the validation loss after each one.

        One fit rather than a warm-started loop that stops early: with sample weights, scikit-learn
        recomputes its weighted bin thresholds on every warm-start call (seconds at demo size), far more
        than the trees themselves cost."""
        grown = self._estimator(self.config.max_iter).fit(x[train], y[train], sample_weight=w[train])
        losses = [_log_loss(y[valid], p[:, 1], w[valid]) for p in grown.staged_predict_proba(x[valid])]
        return _best_stage(losses, self.config.n_iter_no_change), losses

    def predict_proba(self, frame: pl.DataFrame) -> np.ndarray:
        self._check_fitted()
        assert self.estimator is not None
        x = feature_matrix(frame, self.feature_names, "gbm predict")
        out = np.full(frame.height, 0.5)
        usable = np.isfinite(x).all(axis=1)
        if usable.any():
            with threadpool_limits(self.config.threads):
                proba = self.estimator.predict_proba(x[usable])
            out[usable] = proba[:, list(self.estimator.classes_).index(1.0)]
        return out

    def _state(self, directory: Path) -> dict[str, Any]:
        sio.dump(self.estimator, directory / WEIGHTS_FILE)
        return {"weights": WEIGHTS_FILE}

    def _restore(self, directory: Path, state: dict[str, Any]) -> None:
        file = directory / state["weights"]
        untrusted = sio.get_untrusted_types(file=file)
        unexpected = sorted(set(untrusted) - set(TRUSTED_TYPES))
        if unexpected:
            raise DataError(f"{file} holds unexpected types {', '.join(unexpected)}", "retrain the model")
        self.estimator = sio.load(file, trusted=untrusted)


def _log_loss(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> float:
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return float(-(w * (y * np.log(p) + (1 - y) * np.log(1 - p))).sum() / w.sum())


def _best_stage(losses: list[float], patience: int) -> int:
    """The number of trees (1-based) with the lowest loss, stopping once `patience` stages in a row
    brought no improvement (what growing the ensemble one tree at a time would have done)."""
    best, best_loss = 1, losses[0]
    for stage, loss in enumerate(losses[1:], start=2):
        if loss < best_loss - 1e-12:
            best, best_loss = stage, loss
        elif stage - best >= patience:
            break
    return best
