"""The model registry: logging a trained model as a new version, champion/challenger aliases,
promotion with lineage, rollback, and listing — all through the MLflow client.

Names: one registered model per kind (`xray-gbm`, `xray-lstm`, `xray-rl`). A new version gets the
alias `challenger`; the gate (`xray_core.learning.gate`) decides whether it also becomes `champion`.
A promotion records on the new champion the version it replaced (`xray.previous_champion`), why, and
the data version, code version and Dagster run behind it; `rollback` follows that record back, and
`demote` does so by itself (or leaves no champion) when a champion's live record breaks its promise.

Gate records: every judged version carries the gate's record (`GateRecord.as_dict`) as the JSON tag
`xray.gate_record` and the artifact `gate/record.json`, its reason as `xray.gate`, and the metrics
`oos_sharpe_ci_low`, `oos_sharpe_ci_high`, `gate_p_value`, `gate_trials`, `gate_deflated_sharpe`,
`sharpe_at_2x_costs` on its run. The evidence it was judged on is the artifact `gate/evidence.json`.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
import numpy as np
import polars as pl
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature

from xray_core.errors import ConfigError, XrayError
from xray_core.learning.gate import PROMOTE, GateConfig, GateRecord, judge
from xray_core.learning.models.base import BASE_LIBRARY, SignalModel
from xray_core.learning.registry_rows import version_row
from xray_core.learning.skill import PairedReturns
from xray_core.settings import resolve_tracking_uri

if TYPE_CHECKING:
    from matplotlib.figure import Figure

KINDS = ("gbm", "lstm", "rl")
MODEL_NAMES = {kind: f"xray-{kind}" for kind in KINDS}
FLAVORS = {"gbm": "sklearn", "lstm": "lightning", "rl": "sb3"}
CHAMPION, CHALLENGER = "champion", "challenger"
PYFUNC_CODE = Path(__file__).with_name("pyfunc_model.py")
EVIDENCE, RECORD = "gate/evidence.json", "gate/record.json"
# What pyfunc_model.py imports to serve any kind (pyarrow: polars converts MLflow's pandas input with it).
WRAPPER_REQUIREMENTS = ("numpy", "pandas", "polars", "pyarrow")


@dataclass(frozen=True, slots=True)
class Tracking:
    """Where MLflow keeps runs, the registry and artefacts."""

    tracking_uri: str
    artifact_root: str
    experiment: str = "xray"

    def activate(self) -> str:
        """Point the mlflow module at this store and return the experiment id (created if missing)."""
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)
        try:
            found = mlflow.get_experiment_by_name(self.experiment)
            if found is not None:
                mlflow.set_experiment(experiment_id=found.experiment_id)
                return str(found.experiment_id)
            if self.artifact_root.startswith("file://"):
                Path(self.artifact_root.removeprefix("file://")).mkdir(parents=True, exist_ok=True)
            # "" (a tracking server): the server's own artefact store, which every machine reaches
            experiment_id = mlflow.create_experiment(
                self.experiment, artifact_location=self.artifact_root or None
            )
        except MlflowException as exc:
            raise XrayError(
                f"the MLflow store {self.tracking_uri} cannot be used: {_first_line(exc)}",
                "check XRAY_MODELS_TRACKING_URI (or MLFLOW_TRACKING_URI)",
            ) from None
        mlflow.set_experiment(experiment_id=experiment_id)
        return str(experiment_id)

    def client(self) -> MlflowClient:
        self.activate()
        return MlflowClient(self.tracking_uri, self.tracking_uri)


def log_model_version(
    kind: str,
    model: Any,
    *,
    params: dict[str, Any],
    metrics: dict[str, float],
    tags: dict[str, str],
    example: pl.DataFrame,
    evidence: PairedReturns | None = None,
    figures: Mapping[str, Figure] | None = None,
) -> ModelVersion:
    """Log `model` (a trained xray_core.learning model) with its parameters, out-of-sample metrics,
    lineage, the gate's evidence (its paired per-bar returns) and `figures` (artifact path -> matplotlib
    figure, e.g. the out-of-sample equity plots) as a new version of its registered model, and make it
    the challenger."""
    name = _name(kind)
    with (
        tempfile.TemporaryDirectory(prefix=f"xray-{kind}-") as tmp,
        mlflow.start_run(run_name=f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}") as run,
    ):
        mlflow.log_params({k: _loggable(v) for k, v in params.items()})
        # NaN is logged (MLflow keeps it): "never traded, Sharpe undefined" is a result the gate reads;
        # ±inf is not, since MLflow would store it as ±1.8e308, a number that means nothing.
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v is not None and not np.isinf(v)})
        mlflow.set_tags(tags | {"xray.kind": kind, "xray.flavor": FLAVORS[kind]})
        if evidence is not None:
            mlflow.log_dict(evidence.to_json(), EVIDENCE)
        for artifact_file, figure in (figures or {}).items():
            mlflow.log_figure(figure, artifact_file)
        model.save(Path(tmp) / "model")
        # MLflow schemas take naive datetimes: send UTC without the zone (the wrapper restores it).
        example_pd = example.with_columns(pl.col("timestamp").dt.replace_time_zone(None)).to_pandas()
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(PYFUNC_CODE),
            artifacts={"model_dir": str(Path(tmp) / "model")},
            signature=infer_signature(example_pd, model.predict_proba(example)),
            input_example=example_pd.head(5),
            registered_model_name=name,
            pip_requirements=pip_requirements(type(model)),
            tags={"xray.kind": kind},
        )
    client = MlflowClient()
    version = client.get_model_version(name, str(info.registered_model_version))
    for key, value in (tags | {"xray.flavor": FLAVORS[kind], "xray.run_id": run.info.run_id}).items():
        client.set_model_version_tag(name, version.version, key, value)
    client.set_registered_model_alias(name, CHALLENGER, version.version)
    return version


def version_metrics(client: MlflowClient, version: ModelVersion) -> dict[str, float]:
    if not version.run_id:
        return {}
    return dict(client.get_run(version.run_id).data.metrics)


def champion(client: MlflowClient, name: str) -> ModelVersion | None:
    return by_alias(client, name, CHAMPION)


def load_evidence(client: MlflowClient, version: ModelVersion) -> PairedReturns | None:
    """The paired returns logged with `version` (None for a version logged without them)."""
    if not version.run_id:
        return None
    try:
        with tempfile.TemporaryDirectory(prefix="xray-evidence-") as tmp:
            path = client.download_artifacts(version.run_id, EVIDENCE, tmp)
            return PairedReturns.from_json(json.loads(Path(path).read_text()))
    except (MlflowException, OSError):
        return None


def trials(client: MlflowClient, name: str) -> tuple[int, list[float]]:
    """Every version ever logged for `name` (each one a trial) and their out-of-sample Sharpes."""
    versions = client.search_model_versions(f"name = '{name}'")
    sharpes = [version_metrics(client, v).get("oos_sharpe", float("nan")) for v in versions]
    return len(versions), sharpes


def gate_challenger(
    client: MlflowClient,
    kind: str,
    config: GateConfig,
    lineage: dict[str, str],
    version: str | None = None,
    force: bool = False,
    shadow: PairedReturns | None = None,
) -> GateRecord:
    """Run the gate on the challenger (or `version`) and promote it when it passes (or `force`).
    `shadow`: its shadow-book record against the champion, used instead of the walk-forward evidence
    once it has `config.min_shadow_bars` bars. The record is logged on the version either way."""
    name = _name(kind)
    candidate = client.get_model_version(name, version) if version else by_alias(client, name, CHALLENGER)
    if candidate is None:
        return _refusal(f"{name} has no challenger to promote (train one with `xray train`)")
    incumbent = champion(client, name)
    if incumbent is not None and incumbent.version == candidate.version:
        return _refusal(f"version {candidate.version} already is the champion")
    evidence = shadow if shadow is not None and shadow.challenger.size >= config.min_shadow_bars else None
    evidence = evidence or load_evidence(client, candidate)
    count, sharpes = trials(client, name)
    if evidence is None:
        record = _refusal(f"version {candidate.version} has no paired evidence (logged before the "
                          "skill gate): retrain it", count)
    elif incumbent is None and evidence.champion is not None:
        # Its champion was demoted since: judge it against the baselines alone.
        alone = dataclasses.replace(evidence, champion=None, champion_version=None)
        record = judge(alone, count, sharpes, config)
    elif incumbent is not None and evidence.champion_version != str(incumbent.version):
        record = _refusal(f"scored against {_was(evidence)}, but the champion is v{incumbent.version}: "
                          "retrain to compare on the same bars", count)
    else:
        record = judge(evidence, count, sharpes, config)
    if force and not record.promote:
        record = dataclasses.replace(record, verdict=PROMOTE,
                                     reason=f"forced by an operator (the gate said: {record.reason})")
    if record.promote:
        _promote(client, name, candidate, incumbent, record.reason, lineage)
    _log_record(client, name, candidate, record)
    return record


def _was(evidence: PairedReturns) -> str:
    return f"v{evidence.champion_version}" if evidence.champion_version else "no champion"


def _refusal(reason: str, count: int = 0) -> GateRecord:
    nan = float("nan")
    return GateRecord("keep", reason, nan, count, nan, nan, nan, nan, "-", nan, 0.0, nan, nan, 0.0, 0, "-")


def _log_record(client: MlflowClient, name: str, version: ModelVersion, record: GateRecord) -> None:
    data = record.as_dict()
    client.set_model_version_tag(name, version.version, "xray.gate", record.reason)
    client.set_model_version_tag(name, version.version, "xray.gate_record", json.dumps(data))
    if not version.run_id:
        return
    client.log_dict(version.run_id, data, RECORD)
    metrics = {
        "oos_sharpe_ci_low": record.oos_sharpe_ci_low, "oos_sharpe_ci_high": record.oos_sharpe_ci_high,
        "gate_p_value": record.p_value, "gate_trials": float(record.trials),
        "gate_deflated_sharpe": record.deflated_sharpe, "sharpe_at_2x_costs": record.sharpe_at_2x_costs,
    }
    for key, value in metrics.items():
        if np.isfinite(value):
            client.log_metric(version.run_id, key, float(value))


def demote(client: MlflowClient, kind_or_name: str, reason: str) -> str | None:
    """Remove the champion whose live record broke its promise: its predecessor becomes champion again
    (unless that one was demoted too), else no version is champion (the model is not traded: flat).
    Returns the new champion's version, or None."""
    name = kind_or_name if kind_or_name.startswith("xray-") else _name(kind_or_name)
    current = champion(client, name)
    if current is None:
        return None
    client.set_model_version_tag(name, current.version, "xray.demoted_at", _now())
    client.set_model_version_tag(name, current.version, "xray.demotion_reason", reason)
    previous = current.tags.get("xray.previous_champion")
    if previous:
        before = client.get_model_version(name, previous)
        if "xray.demoted_at" not in before.tags:
            client.set_registered_model_alias(name, CHAMPION, previous)
            client.set_model_version_tag(name, previous, "xray.restored_at", _now())
            return str(previous)
    client.delete_registered_model_alias(name, CHAMPION)
    return None


def rollback(client: MlflowClient, kind_or_name: str) -> tuple[str, str]:
    """Make the champion's predecessor the champion again; returns (from version, to version)."""
    name = kind_or_name if kind_or_name.startswith("xray-") else _name(kind_or_name)
    current = champion(client, name)
    if current is None:
        raise XrayError(f"{name} has no champion to roll back", "promote one first: `xray models promote`")
    previous = current.tags.get("xray.previous_champion")
    if not previous:
        raise XrayError(
            f"{name} version {current.version} has no previous champion to roll back to",
            "promote another version instead",
        )
    client.set_registered_model_alias(name, CHAMPION, previous)
    client.set_model_version_tag(name, current.version, "xray.rolled_back_at", _now())
    client.set_model_version_tag(name, previous, "xray.restored_at", _now())
    return str(current.version), str(previous)


def list_versions(client: MlflowClient) -> list[dict[str, Any]]:
    """One entry per registered version of every X-Ray model: name, flavor, version, aliases, metrics,
    lineage and the gate's record (`xray_core.learning.registry_rows.version_row`)."""
    rows = []
    for name in sorted(MODEL_NAMES.values()):
        try:
            versions = client.search_model_versions(f"name = '{name}'")
            aliases = client.get_registered_model(name).aliases  # search results leave aliases out
        except MlflowException:
            continue
        for version in sorted(versions, key=lambda v: int(v.version)):
            rows.append(version_row(name, version.version, version.tags, aliases,
                                    version_metrics(client, version)))
    return rows


def _promote(
    client: MlflowClient,
    name: str,
    candidate: ModelVersion,
    incumbent: ModelVersion | None,
    reason: str,
    lineage: dict[str, str],
) -> None:
    tags = {"xray.promoted_at": _now(), "xray.promotion_reason": reason} | {
        f"xray.promotion.{k.removeprefix('xray.')}": v for k, v in lineage.items()
    }
    if incumbent is not None:
        tags["xray.previous_champion"] = str(incumbent.version)
    for key, value in tags.items():
        client.set_model_version_tag(name, candidate.version, key, value)
    client.set_registered_model_alias(name, CHAMPION, candidate.version)


def by_alias(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def _name(kind: str) -> str:
    if kind not in MODEL_NAMES:
        raise ConfigError(
            f"unknown model {kind!r}", f"use one of: {', '.join(KINDS)} ({', '.join(MODEL_NAMES.values())})"
        )
    return MODEL_NAMES[kind]


def pip_requirements(model_class: type[SignalModel]) -> list[str]:
    """The pinned pip requirements logged with a model of `model_class`: what the pyfunc wrapper
    imports plus the model's own library (its class's `library`), nothing of the other kinds, so
    serving the scikit-learn model never installs torch. MLflow adds its own pin."""
    names = dict.fromkeys((*WRAPPER_REQUIREMENTS, *BASE_LIBRARY, *model_class.library))
    return [f"{name}=={metadata.version(name)}" for name in names]


def _loggable(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, dict | list | tuple) else value


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else exc.__class__.__name__


def gate_config(settings: Any) -> GateConfig:
    """The gate as `XRAY_MODELS_GATE_*` / `..._MIN_TRADES_PER_SYMBOL` / `..._MIN_SHADOW_BARS` set it."""
    return GateConfig(alpha=settings.gate_alpha, block_bars=settings.gate_block_bars,
                      resamples=settings.gate_resamples, min_trades_per_symbol=settings.min_trades_per_symbol,
                      min_bars=settings.gate_min_bars, min_shadow_bars=settings.min_shadow_bars)


def tracking_for(models_tracking_uri: str | None, experiment: str, home: Path) -> Tracking:
    """The store in use: XRAY_MODELS_TRACKING_URI, else MLFLOW_TRACKING_URI, else the embedded default
    (SQLite in $XRAY_HOME/mlflow, artefacts beside it). A tracking server keeps the artefacts itself."""
    root = (home / "mlflow").resolve()
    uri = resolve_tracking_uri(models_tracking_uri, home)
    if uri.startswith(("http://", "https://")):
        # A tracking server (`mlflow server --serve-artifacts`): models go to its artefact store, so a
        # runtime on another machine loads what this one registered. A local directory would not do.
        return Tracking(uri, "", experiment)
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return Tracking(uri, f"file://{root / 'artifacts'}", experiment)
