"""The promoted artefacts the runtime trades from, and their hot reload.

The pipelines publish `bundle_dir/current.json` (xray_core.bundle) and move MLflow aliases; the runtime
never imports the pipelines. `ArtefactWatcher.poll()` re-reads the manifest (cheap: a stat, then a
read only when it changed); a new version is validated completely — every strategy and parameter set,
every model loaded — before it replaces the old one, so a bad promotion never stops trading: the
runtime keeps the last good bundle and reports why the new one was refused.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from xray_core.bundle import CURRENT, read
from xray_core.errors import DataError, XrayError
from xray_core.strategies import Strategy, get_strategy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SymbolPlan:
    """How one promoted symbol is traded."""

    symbol: str
    strategy: Strategy
    params: Any  # the strategy's validated parameters
    params_json: str  # canonical JSON, recorded with every order
    data_version: str


@dataclass(frozen=True)
class Promoted:
    """One validated bundle, ready to trade."""

    version: str
    exchange: str
    timeframe: str
    plans: dict[str, SymbolPlan]
    risk_profiles: dict[str, dict[str, dict[str, float]]]
    models: dict[str, dict[str, Any]]
    predictors: dict[str, Any] = field(default_factory=dict)  # kind -> Predictor

    def sizing(self, profile: str, symbol: str) -> dict[str, float] | None:
        return self.risk_profiles.get(profile, {}).get(symbol)

    def model_version(self, kind: str) -> str | None:
        model = self.models.get(kind)
        return f"{model['name']}/{model['version']}" if model else None


class PyfuncPredictor:
    """A registered MLflow signal model (loaded by alias) as the model strategy's Predictor."""

    def __init__(self, model: Any, feature_names: list[str]) -> None:
        self.model = model
        self.feature_names = feature_names

    def predict_proba(self, frame: pl.DataFrame) -> np.ndarray:
        # MLflow's input schema takes naive datetimes; the model reads them as UTC.
        if "timestamp" in frame.columns and getattr(frame.schema["timestamp"], "time_zone", None):
            naive = pl.col("timestamp").dt.convert_time_zone("UTC").dt.replace_time_zone(None)
            frame = frame.with_columns(naive)
        return np.asarray(self.model.predict(frame.to_pandas()), dtype=np.float64)


def load_predictor(uri: str) -> PyfuncPredictor:
    """`models:/NAME@champion` from the registry the pipelines write to (XRAY_MODELS_TRACKING_URI, else
    MLFLOW_TRACKING_URI, else SQLite under $XRAY_HOME). MLflow is imported only here: a runtime
    trading rule strategies never loads it."""
    import os

    import mlflow
    import mlflow.pyfunc

    from xray_core.learning.dataset import FEATURES
    from xray_core.settings import ModelSettings, load, resolve_tracking_uri

    configured = load(ModelSettings).tracking_uri
    if configured or not (os.environ.get("MLFLOW_TRACKING_URI") or mlflow.is_tracking_uri_set()):
        tracking = resolve_tracking_uri(configured, Path(os.environ.get("XRAY_HOME", ".xray")))
        mlflow.set_tracking_uri(tracking)
        mlflow.set_registry_uri(tracking)
    return PyfuncPredictor(mlflow.pyfunc.load_model(uri), list(FEATURES))


def validate(data: dict[str, Any], model_kind: str, loader: Callable[[str], Any]) -> Promoted:
    """A bundle dict as a `Promoted`, or a DataError naming the first thing wrong with it."""
    plans = {}
    models = data.get("models") or {}
    predictors: dict[str, Any] = {}
    for entry in data["symbols"]:
        symbol = entry.get("symbol")
        try:
            strategy = get_strategy(entry["strategy"])
            params = strategy.params(entry.get("params") or {})
        except (KeyError, XrayError) as exc:
            raise DataError(
                f"bundle {data['version']}: symbol {symbol}: {exc}", "publish a fixed bundle"
            ) from None
        if strategy.name == "model":
            if model_kind not in models:
                raise DataError(
                    f"bundle {data['version']}: {symbol} trades the model, but there is no "
                    f"{model_kind} champion",
                    "promote one (`xray models promote`) or set XRAY_RUNTIME_MODEL_KIND",
                )
            if model_kind not in predictors:
                predictors[model_kind] = loader(models[model_kind]["uri"])
        plans[symbol] = SymbolPlan(
            symbol, strategy, params, json.dumps(entry.get("params") or {}, sort_keys=True),
            str((data.get("data_versions") or {}).get(symbol, "")),
        )
    return Promoted(
        version=str(data["version"]), exchange=str(data["exchange"]), timeframe=str(data["timeframe"]),
        plans=plans, risk_profiles=data.get("risk_profiles") or {}, models=models, predictors=predictors,
    )


class ArtefactWatcher:
    """Holds the current `Promoted` and swaps in a new one when the manifest changes."""

    def __init__(self, bundle_dir: Path, model_kind: str = "gbm",
                 loader: Callable[[str], Any] = load_predictor) -> None:
        self.path = Path(bundle_dir) / CURRENT
        self.model_kind = model_kind
        self.loader = loader
        self.current: Promoted | None = None
        self.refused: str | None = None  # why the newest manifest was not taken
        self._stamp: tuple[float, int] | None = None

    def poll(self) -> bool:
        """Re-read the manifest if it changed; True when a new version was swapped in."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            if self.current is None:
                self.refused = f"no promoted bundle at {self.path}: run the pipeline (`make demo`)"
            return False
        stamp = (stat.st_mtime, stat.st_size)
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            data = read(self.path)
            if self.current is not None and data["version"] == self.current.version:
                return False
            promoted = validate(data, self.model_kind, self.loader)
        except (XrayError, OSError) as exc:
            self.refused = str(exc)
            log.error("bundle refused", extra={"event": "bundle_refused", "reason": str(exc)})
            return False
        previous = self.current.version if self.current else None
        self.current, self.refused = promoted, None
        log.info("bundle loaded", extra={"event": "bundle_loaded", "version": promoted.version,
                                          "previous": previous, "symbols": len(promoted.plans)})
        return True
