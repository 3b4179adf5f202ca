"""The runtime loads only the model flavour it trades: a scikit-learn champion, loaded by its MLflow
alias the way `ArtefactWatcher` does it, brings in neither torch, Lightning nor stable-baselines3 (nor
the pipelines), and MLflow unpickles nothing on the way."""

import os
import subprocess
import sys

import numpy as np
import polars as pl

from xray_core.learning.dataset import FEATURES
from xray_core.learning.models.registry import build_model
from xray_pipelines.mlops.registry import Tracking, log_model_version

HEAVY = ("torch", "pytorch_lightning", "lightning", "stable_baselines3")


def _frame() -> pl.DataFrame:
    rng = np.random.default_rng(8)
    n = 300
    stamps = pl.datetime_range(
        pl.datetime(2026, 1, 1),
        pl.datetime(2026, 1, 1) + pl.duration(hours=n - 1),
        "1h",
        eager=True,
        time_zone="UTC",
    ).cast(pl.Datetime("ms", "UTC"))
    values = rng.normal(size=(n, len(FEATURES)))
    frame = pl.DataFrame({"timestamp": stamps, "symbol": ["AAA/USDT"] * n})
    frame = frame.with_columns(pl.Series(name, values[:, k]) for k, name in enumerate(FEATURES))
    label = (values[:, 0] > 0).astype(np.int64)
    return frame.with_columns(pl.Series("label", label), pl.lit(1.0).alias("weight"))


def test_a_scikit_learn_champion_loads_without_torch_lightning_or_sb3(tmp_path):
    tracking = Tracking(f"sqlite:///{tmp_path / 'mlflow.db'}", f"file://{tmp_path / 'artifacts'}")
    tracking.activate()
    frame = _frame()
    model = build_model("gbm").fit(frame)
    features = frame.select("timestamp", "symbol", *FEATURES)
    log_model_version("gbm", model, params=model.params(), metrics={}, tags={}, example=features.head(8))
    features.tail(40).write_parquet(tmp_path / "rows.parquet")
    np.save(tmp_path / "expected.npy", model.predict_proba(features.tail(40)))
    probe = (
        "import sys, numpy as np, polars as pl\n"
        "from xray_runtime.artefacts import load_predictor\n"
        "predictor = load_predictor('models:/xray-gbm@challenger')\n"
        "got = predictor.predict_proba(pl.read_parquet(sys.argv[1] + '/rows.parquet'))\n"
        "np.testing.assert_allclose(got, np.load(sys.argv[1] + '/expected.npy'))\n"
        "print('imported:' + ','.join(m for m in sys.argv[2:] if m in sys.modules))\n"
    )
    env = os.environ | {
        "XRAY_MODELS_TRACKING_URI": tracking.tracking_uri,
        "XRAY_HOME": str(tmp_path / "home"),
        "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false",  # the model is served from code, not a pickle
    }
    result = subprocess.run(
        [sys.executable, "-c", probe, str(tmp_path), *HEAVY, "xray_pipelines"],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (imported,) = [line for line in result.stdout.splitlines() if line.startswith("imported:")]
    assert imported == "imported:", imported
