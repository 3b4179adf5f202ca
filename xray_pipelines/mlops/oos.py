"""A model version's walk-forward record: the P(up) each fold's model gave on its test block.

Logged beside the version (an artefact of its MLflow run) when it is trained, so that strategy
selection (`xray_core.research.selection`) can later judge the champion on a symbol against the rule
strategies on exactly those windows, without retraining anything."""

from __future__ import annotations

import tempfile
from pathlib import Path

import polars as pl
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

ARTIFACT_DIR = "oos"
ARTIFACT = f"{ARTIFACT_DIR}/predictions.parquet"
COLUMNS = ("timestamp", "symbol", "fold", "p_up")


def log_oos_predictions(client: MlflowClient, version: ModelVersion, predictions: pl.DataFrame) -> None:
    """Attach `predictions` (timestamp, symbol, fold, p_up) to the run of `version`."""
    if not version.run_id:
        raise ValueError(f"model version {version.name}/{version.version} has no run to attach it to")
    with tempfile.TemporaryDirectory(prefix="xray-oos-") as tmp:
        path = Path(tmp) / Path(ARTIFACT).name
        predictions.select(*COLUMNS).write_parquet(path)
        client.log_artifact(version.run_id, str(path), ARTIFACT_DIR)


def oos_predictions(client: MlflowClient, version: ModelVersion) -> pl.DataFrame | None:
    """The walk-forward predictions logged with `version`; None for a version trained before they were
    logged (or whose artefact store cannot be read): it has no record to be selected on."""
    if not version.run_id:
        return None
    with tempfile.TemporaryDirectory(prefix="xray-oos-") as tmp:
        try:
            local = client.download_artifacts(version.run_id, ARTIFACT, tmp)
        except (MlflowException, OSError):
            return None
        return pl.read_parquet(local)
