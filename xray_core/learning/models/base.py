"""What every signal model shares: the interface, its settings, the frame handling and the file format.

A signal model turns a training frame (`xray_core.learning.dataset.build_training_frame`: rows in
(timestamp, symbol) order, feature columns, `label`, `weight`) into P(next move up) per row. Three very
different learners (a gradient-boosted tree ensemble, an LSTM, a PPO agent) sit behind this one
interface so that the training pipeline, the MLflow wrapper and the runtime never branch on the kind.

Why the pieces here are shared rather than per model:

* Frames are checked once, with `DataError`s that name the column or the count that is wrong, so a
  bad frame never turns into a shape error deep inside torch or scikit-learn.
* `symbol_runs` is the single definition of "history": a symbol's rows in time order, cut wherever a
  bar is missing. Sequence models (the LSTM's windows, the agent's held position) never look across a
  symbol boundary or a gap, because a window spanning a gap would mix bars that were never adjacent.
* Files: `model.json` (kind, flavour, features, settings, fitted scalars, library versions) next to
  each model's own weights file, written by `save` and read by `registry.load_model`. Weights are
  plain tensors (torch `state_dict`, loaded with `weights_only=True`) or a skops file restricted to a
  fixed list of types: nothing is unpickled, so loading an artefact from the registry cannot run code,
  and no training-time object (a lambda, a data loader, an optimizer) is needed to rebuild a model.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar, Literal, Self, TypeVar

import numpy as np
import polars as pl

from xray_core.errors import ConfigError, DataError
from xray_core.learning.dataset import FEATURES

Flavor = Literal["sklearn", "lightning", "sb3"]
BASE_LIBRARY = ("numpy", "polars")  # the distributions this module (so every kind) imports
MODEL_FILE = "model.json"
FORMAT_VERSION = 1
C = TypeVar("C")
MIN_CLASS_ROWS = 20  # fewer rows of one class and "balancing" would just copy a handful of bars
CLIP = 5.0  # standardised features are clipped to ±CLIP: one extreme bar must not saturate a network


# ---- settings ---------------------------------------------------------------------------------------


def check_int(name: str, value: object, low: int, high: int | None = None) -> None:
    """Refuse a setting that is not an int in [low, high] (bools are not ints here)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < low
        or (high is not None and value > high)
    ):
        bound = f"[{low}, {high}]" if high is not None else f">= {low}"
        raise ConfigError(f"{name} must be an integer {bound}, got {value!r}", "fix the model parameter")


def check_float(name: str, value: object, low: float, high: float, *, open_low: bool = False) -> None:
    """Refuse a setting that is not a finite number in [low, high] ((low, high] when `open_low`)."""
    real = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not real or not (low < value if open_low else low <= value) or value > high:  # type: ignore[operator]
        bracket = "(" if open_low else "["
        raise ConfigError(
            f"{name} must be a number in {bracket}{low:g}, {high:g}], got {value!r}",
            "fix the model parameter",
        )


def make_config(config_cls: type[C], kind: str, params: dict[str, Any]) -> C:
    """The model's settings from keyword parameters, refusing names the model does not have."""
    known = [f.name for f in dataclasses.fields(config_cls)]  # type: ignore[arg-type]
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ConfigError(
            f"unknown {kind} parameter(s): {', '.join(unknown)}", f"{kind} takes {', '.join(known)}"
        )
    return config_cls(**params)


def default_features() -> list[str]:
    """The dataset's feature list: models train on exactly the columns the dataset builds."""
    return list(FEATURES)


# ---- frames -----------------------------------------------------------------------------------------


def require_columns(frame: pl.DataFrame, names: Sequence[str], what: str) -> None:
    missing = [name for name in names if name not in frame.columns]
    if missing:
        raise DataError(
            f"{what}: the frame lacks column(s) {', '.join(missing)}",
            "build it with xray_core.learning.dataset.build_training_frame (same feature set as the model)",
        )


def feature_matrix(frame: pl.DataFrame, names: Sequence[str], what: str) -> np.ndarray:
    """The feature columns as float64 (rows x features); nulls become NaN ("not defined yet")."""
    require_columns(frame, names, what)
    if not names:
        raise ConfigError(f"{what}: the model has no features", "pass a non-empty feature list")
    try:
        columns = [frame[name].cast(pl.Float64).fill_null(math.nan) for name in names]
    except pl.exceptions.InvalidOperationError as err:
        raise DataError(
            f"{what}: a feature column is not numeric ({err})", "features must be floats"
        ) from err
    return np.column_stack([c.to_numpy() for c in columns]).astype(np.float64, copy=False)


def labels_and_weights(frame: pl.DataFrame, what: str) -> tuple[np.ndarray, np.ndarray]:
    """`label` as 0/1 floats and `weight` (ones when the frame has none), both checked."""
    require_columns(frame, ["label"], what)
    labels = frame["label"].cast(pl.Float64).fill_null(math.nan).to_numpy()
    if not np.isin(labels, (0.0, 1.0)).all():
        raise DataError(f"{what}: label must be 0 or 1 on every row", "drop rows without a forward return")
    if "weight" in frame.columns:
        weights = frame["weight"].cast(pl.Float64).fill_null(math.nan).to_numpy()
        if not (np.isfinite(weights) & (weights >= 0)).all() or weights.sum() <= 0:
            raise DataError(f"{what}: weight must be finite, >= 0 and not all 0", "fix the sample weights")
    else:
        weights = np.ones_like(labels)
    return labels, weights


def check_trainable(labels: np.ndarray, n_usable: int, minimum: int, what: str) -> None:
    """Refuse to fit on too little data or on one class only: either would give a model that looks
    trained but has learnt nothing, which is worse than an error."""
    if n_usable < minimum:
        raise DataError(
            f"{what}: {n_usable} usable row(s) is too few to fit",
            f"it needs at least {minimum}; use more bars",
        )
    ups = int(labels.sum())
    if ups == 0 or ups == labels.shape[0]:
        raise DataError(
            f"{what}: every label is {int(labels[0])}, there is nothing to learn",
            "use a longer period or more symbols",
        )
    minority = min(ups, labels.shape[0] - ups)
    if minority < MIN_CLASS_ROWS:
        raise DataError(
            f"{what}: only {minority} of {labels.shape[0]} labels are {int(ups == minority)}",
            f"a class needs at least {MIN_CLASS_ROWS} rows to be learnt; use a longer period or a "
            "different label threshold",
        )


def balanced_weights(labels: np.ndarray, weights: np.ndarray, balance: bool) -> np.ndarray:
    """Sample weights rescaled so both classes carry the same total weight (mean weight stays 1).

    Hourly up/down labels are close to 50/50 but drift with the market's trend; without this a model
    can score by predicting the majority class of the training period, which says nothing about the
    next one."""
    w = weights / weights.mean()
    if not balance:
        return w
    total = w.sum()
    up = w[labels == 1].sum()
    down = total - up
    if up <= 0 or down <= 0:
        return w
    return np.where(labels == 1, w * total / (2 * up), w * total / (2 * down))


def time_split(stamps: np.ndarray, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Masks of the rows in the earlier and in the latest `fraction` of the distinct timestamps.

    Never shuffled: every validation row is later than every training row, whatever its symbol, so
    choosing a tree count or an epoch on it does not peek at bars surrounded by training data."""
    distinct = np.unique(stamps)
    cut = distinct[min(len(distinct) - 1, int(np.floor(len(distinct) * (1.0 - fraction))))]
    valid = stamps >= cut
    return ~valid, valid


def epoch_ms(frame: pl.DataFrame, what: str) -> np.ndarray:
    require_columns(frame, ["timestamp"], what)
    column = frame["timestamp"]
    if isinstance(column.dtype, pl.Datetime):
        column = column.dt.epoch("ms")
    elif not column.dtype.is_integer():
        raise DataError(f"{what}: timestamp is {column.dtype}", "use Datetime or integer ms since the epoch")
    if column.null_count():
        raise DataError(f"{what}: timestamp has missing values", "drop those rows")
    return column.cast(pl.Int64).to_numpy()


def symbol_runs(frame: pl.DataFrame, what: str) -> list[np.ndarray]:
    """Row indices of each symbol's unbroken history, in time order.

    A run ends where the symbol changes or where the step to the next bar exceeds that symbol's bar
    interval (its smallest step): the bars on either side of a gap were never adjacent, so no window
    or held position may span one. Frames without a `symbol` column are one symbol."""
    n = frame.height
    if n == 0:
        return []
    stamps = epoch_ms(frame, what)
    if "symbol" in frame.columns:
        _, codes = np.unique(frame["symbol"].cast(pl.String).fill_null("").to_numpy(), return_inverse=True)
    else:
        codes = np.zeros(n, dtype=np.int64)
    order = np.lexsort((stamps, codes))
    s, c = stamps[order], codes[order]
    step = np.diff(s)
    same = c[1:] == c[:-1]
    if (same & (step == 0)).any():
        i = int(np.argmax(same & (step == 0)))
        raise DataError(f"{what}: a symbol has two rows at timestamp {int(s[i])}", "drop duplicate bars")
    interval = np.full(int(c.max()) + 1, np.iinfo(np.int64).max)
    np.minimum.at(interval, c[1:][same], step[same])
    breaks = np.flatnonzero(~same | (step > interval[c[1:]])) + 1
    return np.split(order, breaks)


@dataclass(frozen=True)
class Standardiser:
    """Per-feature mean and standard deviation of the training rows, kept with the model.

    Fitted once on the training data and stored in `model.json`, so that live rows are scaled exactly
    as the rows the network learnt from (refitting on live data would shift every input)."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def fit(cls, values: np.ndarray) -> Standardiser:
        rows = values[np.isfinite(values).all(axis=1)]
        mean = rows.mean(axis=0)
        std = rows.std(axis=0)
        std = np.where(std > 1e-12, std, 1.0)  # a constant feature stays 0 rather than dividing by 0
        return cls(tuple(float(v) for v in mean), tuple(float(v) for v in std))

    def transform(self, values: np.ndarray) -> np.ndarray:
        """Standardised float32 features, clipped to ±CLIP; NaN stays NaN."""
        scaled = (values - np.asarray(self.mean)) / np.asarray(self.std)
        return np.clip(scaled, -CLIP, CLIP).astype(np.float32)

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, data: dict[str, list[float]]) -> Standardiser:
        return cls(tuple(data["mean"]), tuple(data["std"]))


def seed_all(seed: int) -> None:
    """Seed Python, NumPy and torch (when loaded): the learners draw from all three."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # sb3 and lightning draw from it
    import torch  # here: the scikit-learn model alone need not load torch

    torch.manual_seed(seed)


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run torch on `n` intra-op threads, restoring the caller's setting afterwards.

    The networks here are tiny (tens of units): a second thread saves little, and on a machine whose
    cores are busy with other work, torch's spinning worker threads make each step slower by orders of
    magnitude (measured: 40 LSTM steps in 0.4 s on one thread, 63 s on two with both cores loaded)."""
    import torch  # here: the scikit-learn model alone need not load torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# ---- the interface ----------------------------------------------------------------------------------


class SignalModel(ABC):
    """P(next move up) per row of a training-shaped frame.

    Subclasses declare `kind` (the registry's name), `flavor` (the library family, for the MLflow
    wrapper) and `Config` (a frozen dataclass of hyper-parameters validated on construction), and
    implement `fit`, `predict_proba`, `_state` (what to save) and `_restore` (rebuild from it)."""

    kind: ClassVar[str]
    flavor: ClassVar[Flavor]
    Config: ClassVar[type]
    # The distributions the kind's module imports beyond BASE_LIBRARY: their versions go into
    # model.json, and they are the logged MLflow model's own requirements (no other kind's).
    library: ClassVar[tuple[str, ...]] = ()

    def __init__(self, features: Sequence[str] | None = None, **params: Any) -> None:
        # Any: each kind reads its own Config's fields (Config is a ClassVar the subclass sets).
        self.config: Any = make_config(self.Config, self.kind, params)
        self.feature_names: list[str] = list(features) if features is not None else default_features()
        if not self.feature_names or len(set(self.feature_names)) != len(self.feature_names):
            raise ConfigError(f"{self.kind}: features must be distinct names, at least one", "fix the list")
        self.fit_info: dict[str, Any] = {}
        self._fitted = False

    @abstractmethod
    def fit(self, frame: pl.DataFrame) -> Self:
        """Learn from `frame` (feature columns, `label`, `weight`; several symbols)."""

    @abstractmethod
    def predict_proba(self, frame: pl.DataFrame) -> np.ndarray:
        """P(up) per row of `frame`, in its row order; 0.5 where a row lacks the history it needs."""

    @abstractmethod
    def _state(self, directory: Path) -> dict[str, Any]:
        """Write the weights into `directory`; return the JSON-able scalars needed to restore them."""

    @abstractmethod
    def _restore(self, directory: Path, state: dict[str, Any]) -> None:
        """Rebuild the fitted model from `directory` and what `_state` returned."""

    @property
    def is_fitted(self) -> bool:
        return self._fitted

    @property
    def history_bars(self) -> int:
        """Bars of each symbol's latest unbroken history (the row itself included) that a caller
        predicting live should pass, so the last row gets the model's full answer: 1 for a row-wise
        model, the window for the LSTM, a settled position path for the agent."""
        return 1

    def params(self) -> dict[str, Any]:
        """Hyper-parameters to log with the run (the features are logged as their count)."""
        return {"kind": self.kind, **dataclasses.asdict(self.config), "n_features": len(self.feature_names)}

    def _check_fitted(self) -> None:
        if not self._fitted:
            raise ConfigError(f"the {self.kind} model is not fitted", "call fit(frame) or load a saved model")

    def save(self, directory: str | Path) -> Path:
        """Write the model's files into `directory` (created if needed); `model.json` last, so a
        directory with a `model.json` is complete."""
        self._check_fitted()
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        state = self._state(path)
        document = {
            "format": FORMAT_VERSION,
            "kind": self.kind,
            "flavor": self.flavor,
            "features": self.feature_names,
            "config": dataclasses.asdict(self.config),
            "state": state,
            "fit_info": self.fit_info,
            "versions": {name: _version(name) for name in ("numpy", *self.library)},
        }
        (path / MODEL_FILE).write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
        return path

    @classmethod
    def load(cls, directory: str | Path) -> Self:
        """A fitted model from the files `save` wrote, in a fresh object."""
        path = Path(directory)
        document = read_model_file(path)
        if document["kind"] != cls.kind:
            raise ConfigError(
                f"{path} holds a {document['kind']} model, not {cls.kind}", "load it with registry.load_model"
            )
        model = cls(features=document["features"], **document["config"])
        model._restore(path, document["state"])
        model.fit_info = dict(document.get("fit_info", {}))
        model._fitted = True
        return model


def read_model_file(directory: Path) -> dict[str, Any]:
    """`model.json` of a saved model, checked for the fields every loader relies on."""
    file = directory / MODEL_FILE
    if not file.is_file():
        raise DataError(f"{directory} has no {MODEL_FILE}", "point at a directory written by model.save()")
    try:
        document = json.loads(file.read_text())
    except json.JSONDecodeError as err:
        raise DataError(f"{file} is not valid JSON ({err.msg})", "save the model again") from err
    missing = [key for key in ("format", "kind", "features", "config", "state") if key not in document]
    if missing:
        raise DataError(f"{file} lacks {', '.join(missing)}", "save the model again")
    if document["format"] != FORMAT_VERSION:
        raise DataError(
            f"{file} is format {document['format']}, this X-Ray reads {FORMAT_VERSION}", "retrain the model"
        )
    return document


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None
