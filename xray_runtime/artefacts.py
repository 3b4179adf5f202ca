"""The promoted artefacts the runtime trades from, and their hot reload.

The pipelines publish the bundle to a store (`xray_core.bundle_store`: `$XRAY_HOME/bundles/current.json`
by default, or a Postgres table every machine reaches, `XRAY_RUNTIME_BUNDLE_URL`) and move MLflow
aliases; the runtime never imports the pipelines. `ArtefactWatcher.poll()` re-reads the bundle (cheap:
a stat or one indexed row, then a read only when it changed); a new version is validated completely —
the schema
(`xray_core.bundle.BundleSpec`: symbols, strategies and their parameters, risk profiles, models,
versions), then every model loaded — before it replaces the old one, so a bad promotion never stops
trading: the runtime keeps the last good bundle and reports why the new one was refused (`refused`,
shown on /health, logged once). With no good bundle at all (a first start on a malformed one) the
service runs, trades nothing and says why.

The models the runtime shadow-trades (`Promoted.shadow`: every challenger the bundle lists, and every
champion, by version) are loaded too, but one that fails to load is only left out of the shadow books,
with its reason (`shadow_refused`): a shadow never decides whether a bundle trades.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from xray_core.bundle import ModelSpec, is_version, parse
from xray_core.bundle_store import BundleStore, DirectoryStore
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
    model_kind: str | None = None  # the champion a `model` symbol trades (the bundle's choice)


@dataclass(frozen=True)
class ShadowModel:
    """A model the runtime evaluates on every closed bar without ordering anything."""

    kind: str
    name: str
    version: int
    role: str  # "challenger" or "champion"
    predictor: Any


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
    shadow: dict[tuple[str, int], ShadowModel] = field(default_factory=dict)  # (name, version) -> model
    shadow_refused: dict[str, str] = field(default_factory=dict)  # "name/version" -> why not shadowed
    costs: tuple[float, float] | None = None  # (fee, slippage) per fill; None: the research settings'

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


def validate(data: Any, model_kind: str, loader: Callable[[str], Any], quote: str = "USDT") -> Promoted:
    """A bundle's JSON as a `Promoted`, or a DataError naming what is wrong with it: the schema
    (`xray_core.bundle.parse`), symbols quoted in the currency the runtime keeps (`quote`), and the
    champion model loaded when a symbol trades it."""
    spec = parse(data)
    version = spec.version
    foreign = [name for name in spec.symbol_names if name.split("/")[1] != quote]
    if foreign:
        raise DataError(f"bundle {version}: {', '.join(foreign)} not quoted in {quote}",
                        f"the runtime keeps its cash in {quote}: publish {quote} pairs only")
    models = {kind: model.model_dump() for kind, model in spec.models.items()}
    predictors: dict[str, Any] = {}
    plans = {}
    for entry in spec.symbols:
        strategy = get_strategy(entry.strategy)
        # The bundle names the champion a symbol earned its place with; an older bundle without one
        # trades the runtime's configured kind.
        kind = (entry.model or model_kind) if strategy.name == "model" else None
        if kind is not None and kind not in predictors:
            if kind not in models:
                raise DataError(
                    f"bundle {version}: {entry.symbol} trades the model, but there is no {kind} champion",
                    "promote one (`xray models promote`) or set XRAY_RUNTIME_MODEL_KIND",
                )
            predictors[kind] = _load(loader, models[kind]["uri"], version)
        plans[entry.symbol] = SymbolPlan(
            entry.symbol, strategy, strategy.params(entry.params), json.dumps(entry.params, sort_keys=True),
            spec.data_versions.get(entry.symbol, ""), kind,
        )
    profiles = {name: {symbol: sizing.model_dump() for symbol, sizing in rows.items()}
                for name, rows in spec.risk_profiles.items()}
    shadow, refused = _shadow_models(spec.models, spec.challengers, predictors, loader)
    costs = (spec.costs.fee, spec.costs.slippage) if spec.costs is not None else None
    return Promoted(version=version, exchange=spec.exchange, timeframe=spec.timeframe, plans=plans,
                    risk_profiles=profiles, models=models, predictors=predictors, shadow=shadow,
                    shadow_refused=refused, costs=costs)


def _shadow_models(champions: Mapping[str, ModelSpec], challengers: Mapping[str, ModelSpec],
                   predictors: dict[str, Any], loader: Callable[[str], Any]
                   ) -> tuple[dict[tuple[str, int], ShadowModel], dict[str, str]]:
    """Every challenger and champion, loaded by version (an alias may move after publishing); the
    champion already loaded for trading is reused. Champions are shadowed too, so that a challenger's
    record has a champion's on the very same bars to be paired with."""
    shadow: dict[tuple[str, int], ShadowModel] = {}
    refused: dict[str, str] = {}
    wanted = [(kind, spec, "champion") for kind, spec in champions.items()]
    wanted += [(kind, spec, "challenger") for kind, spec in challengers.items()]
    for kind, spec, role in wanted:
        key = (spec.name, spec.version)
        if key in shadow:
            continue  # a challenger that is the champion already: one book
        if role == "champion" and kind in predictors:
            predictor = predictors[kind]
        else:
            uri = spec.uri if role == "challenger" else f"models:/{spec.name}/{spec.version}"
            try:
                predictor = loader(uri)
            except Exception as exc:  # whatever the registry raises: no shadow book, trading goes on
                refused[f"{spec.name}/{spec.version}"] = _CREDENTIALS.sub("://***@", str(exc))[:200]
                log.warning("shadow model not loaded", extra={
                    "event": "shadow_refused", "model": f"{spec.name}/{spec.version}",
                    "reason": refused[f"{spec.name}/{spec.version}"]})
                continue
        shadow[key] = ShadowModel(kind, spec.name, spec.version, role, predictor)
    return shadow, refused


def _load(loader: Callable[[str], Any], uri: str, version: str) -> Any:
    """The model at `uri`, or a DataError: whatever the registry raises, the bundle is refused (the
    last good one keeps trading), never the service stopped."""
    try:
        return loader(uri)
    except Exception as exc:  # MLflow, the network, a corrupt artefact: all mean "not this bundle"
        detail = _CREDENTIALS.sub("://***@", str(exc))[:200]
        raise DataError(f"bundle {version}: model {uri} could not be loaded ({type(exc).__name__}: {detail})",
                        "check the model registry and promote again") from None


_CREDENTIALS = re.compile(r"://[^/@\s]+@")


class ArtefactWatcher:
    """Holds the current `Promoted` and swaps in a new one when the published bundle changes."""

    def __init__(self, bundle: Path | BundleStore, model_kind: str = "gbm",
                 loader: Callable[[str], Any] = load_predictor) -> None:
        # A directory (the embedded default) or any store of `xray_core.bundle_store` (a shared URL).
        self.store: BundleStore = DirectoryStore(bundle) if isinstance(bundle, Path | str) else bundle
        self.model_kind = model_kind
        self.loader = loader
        self.current: Promoted | None = None
        self.refused: str | None = None  # why the newest bundle was not taken
        self._stamp: Any = None

    def poll(self) -> bool:
        """Re-read the bundle if it changed; True when a new version was swapped in."""
        try:
            stamp = self.store.stamp()
        except Exception as exc:  # the store unreachable (a database restarting): keep trading the last one
            detail = (_CREDENTIALS.sub("://***@", str(exc)).splitlines() or [""])[0][:200]
            self._refuse(f"bundle store {self.store.location} unreachable ({type(exc).__name__}: {detail})",
                         log_it=self.refused is None)
            self._stamp = None  # read again once it answers
            return False
        if stamp is None:
            if self.current is None:
                self.refused = f"no promoted bundle at {self.store.location}: run the pipeline (`make demo`)"
            return False
        if stamp == self._stamp:
            return False
        try:
            snapshot = self.store.current()
            if snapshot is None:
                return False
            self._stamp = snapshot.stamp
            data = snapshot.data
            if self.current is not None and is_version(data, self.current.version):
                self.refused = None  # the bundle trading is the newest again
                return False
            promoted = validate(data, self.model_kind, self.loader)
        except Exception as exc:  # whatever the store holds, it never stops the service
            self._stamp = stamp
            reason = str(exc) if isinstance(exc, XrayError | OSError) else f"{type(exc).__name__}: {exc}"
            # Once per change of the bundle: the stamp check above skips an unchanged one.
            self._refuse(reason, log_it=True)
            return False
        previous = self.current.version if self.current else None
        self.current, self.refused = promoted, None
        log.info("bundle loaded", extra={"event": "bundle_loaded", "version": promoted.version,
                                          "previous": previous, "symbols": len(promoted.plans)})
        return True

    def _refuse(self, reason: str, *, log_it: bool) -> None:
        self.refused = reason[:500]
        if log_it:
            log.error("bundle refused", extra={"event": "bundle_refused", "reason": self.refused})
