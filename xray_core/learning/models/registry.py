"""Every signal model by name, and one loader for any saved model.

Generic code (the training pipeline, the MLflow pyfunc wrapper, the runtime) builds a model from a kind
and a parameter dict, and restores one from a directory, without knowing which library is behind it:
`model.json` names the kind, and the kind's class rebuilds the rest.

Each kind's module is imported the first time that kind is used, never before: the runtime trading a
scikit-learn champion must not pay for (or depend on) torch, Lightning and stable-baselines3, which
only the other two kinds need. `MODEL_KINDS` and `DEMO_PARAMS` therefore are read-only mappings that
import on lookup; listing or iterating their kinds imports nothing.

`DEMO_PARAMS` are the settings of the demo (about 20 symbols x 2,000 hourly bars, a couple of minutes
per model on two cores); the classes' own defaults are the tiny settings the tests use.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from importlib import import_module
from pathlib import Path
from typing import Any, TypeVar

from xray_core.errors import ConfigError
from xray_core.learning.models.base import SignalModel, read_model_file

V = TypeVar("V")

# kind -> "module:Class"; each of these modules also holds its kind's `DEMO` settings.
CLASSES: dict[str, str] = {
    "gbm": "xray_core.learning.models.gbm:GbmModel",
    "lstm": "xray_core.learning.models.lstm:LstmModel",
    "rl": "xray_core.learning.models.rl:RlAgent",
}


class _ImportedOnLookup(Mapping[str, V]):
    """kind -> an object named "module:attribute", the module imported on the first lookup."""

    def __init__(self, targets: Mapping[str, str]) -> None:
        self._targets = dict(targets)

    def __getitem__(self, kind: str) -> V:
        module, _, attribute = self._targets[kind].partition(":")  # KeyError for an unknown kind
        return getattr(_import(kind, module), attribute)

    def __iter__(self) -> Iterator[str]:
        return iter(self._targets)

    def __len__(self) -> int:
        return len(self._targets)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._targets!r})"


MODEL_KINDS: Mapping[str, type[SignalModel]] = _ImportedOnLookup(CLASSES)
DEMO_PARAMS: Mapping[str, dict[str, Any]] = _ImportedOnLookup(
    {kind: f"{target.partition(':')[0]}:DEMO" for kind, target in CLASSES.items()}
)


def _import(kind: str, module: str) -> Any:
    """`module`, or a ConfigError naming the missing library when the kind's flavour is not installed."""
    try:
        return import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] == "xray_core":
            raise
        raise ConfigError(
            f"the {kind} model needs the Python package {exc.name!r}, which is not installed",
            "install X-Ray with its dependencies: pip install -c constraints.txt -e .",
        ) from None


def model_class(kind: str) -> type[SignalModel]:
    try:
        return MODEL_KINDS[kind]
    except KeyError:
        raise ConfigError(
            f"unknown model kind {kind!r}", f"use one of {', '.join(sorted(MODEL_KINDS))}"
        ) from None


def build_model(kind: str, features: Sequence[str] | None = None, **params: Any) -> SignalModel:
    """An unfitted model of `kind` with `params` (ConfigError for an unknown kind, parameter or value);
    `features` defaults to the dataset's FEATURES."""
    return model_class(kind)(features, **params)


def load_model(directory: str | Path) -> SignalModel:
    """The fitted model saved in `directory`, whatever its kind (only that kind's library is imported)."""
    path = Path(directory)
    return model_class(read_model_file(path)["kind"]).load(path)
