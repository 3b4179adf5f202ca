"""Every signal model by name, and one loader for any saved model.

Generic code (the training pipeline, the MLflow pyfunc wrapper, the runtime) builds a model from a kind
and a parameter dict, and restores one from a directory, without knowing which library is behind it:
`model.json` names the kind, and the kind's class rebuilds the rest.

`DEMO_PARAMS` are the settings of the demo (about 20 symbols x 2,000 hourly bars, a couple of minutes
per model on two cores); the classes' own defaults are the tiny settings the tests use.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from xray_core.errors import ConfigError
from xray_core.learning.models import gbm, lstm, rl
from xray_core.learning.models.base import SignalModel, read_model_file
from xray_core.learning.models.gbm import GbmModel
from xray_core.learning.models.lstm import LstmModel
from xray_core.learning.models.rl import RlAgent

MODEL_KINDS: dict[str, type[SignalModel]] = {"gbm": GbmModel, "lstm": LstmModel, "rl": RlAgent}
DEMO_PARAMS: dict[str, dict[str, Any]] = {"gbm": gbm.DEMO, "lstm": lstm.DEMO, "rl": rl.DEMO}


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
    """The fitted model saved in `directory`, whatever its kind."""
    path = Path(directory)
    return model_class(read_model_file(path)["kind"]).load(path)
