"""Models on a tracking server reach a runtime on another machine: the pipelines (one XRAY_HOME)
register a champion on an MLflow server (`--serve-artifacts`); a runtime (another XRAY_HOME) loads it by
its alias through the same URI, and nothing is written to either machine's local MLflow directory."""

import socket
import subprocess
import sys
import time

import numpy as np
import polars as pl
import pytest
import requests

from xray_core.learning.dataset import FEATURES
from xray_core.learning.gate import GateConfig
from xray_core.learning.models.registry import build_model
from xray_pipelines.mlops.registry import CHAMPION, gate_challenger, log_model_version, tracking_for
from xray_runtime.artefacts import load_predictor

pytestmark = pytest.mark.slow
HANG_GUARD_S = 600


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def mlflow_server(tmp_path):
    """`mlflow server` on a free port, its store and artefacts in a directory of its own."""
    root = tmp_path / "server"
    root.mkdir()
    port = _free_port()
    log = (root / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1",
         "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}", "--serve-artifacts",
         "--artifacts-destination", str(root / "artifacts")],
        stdout=log, stderr=subprocess.STDOUT, cwd=root,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + HANG_GUARD_S
        while True:
            try:
                if requests.get(f"{url}/health", timeout=5).ok:
                    break
            except requests.ConnectionError:
                pass
            assert process.poll() is None, (root / "server.log").read_text()
            assert time.monotonic() < deadline, "mlflow server did not start"
            time.sleep(0.5)
        yield url, root
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=60)
        log.close()


def _frame() -> pl.DataFrame:
    rng = np.random.default_rng(5)
    n = 400
    stamps = pl.datetime_range(pl.datetime(2026, 1, 1), pl.datetime(2026, 1, 1) + pl.duration(hours=n - 1),
                               "1h", eager=True, time_zone="UTC").cast(pl.Datetime("ms", "UTC"))
    values = rng.normal(size=(n, len(FEATURES)))
    label = (values[:, 0] > 0).astype(np.int64)
    frame = pl.DataFrame({"timestamp": stamps, "symbol": ["AAA/USDT"] * n})
    frame = frame.with_columns(pl.Series(name, values[:, k]) for k, name in enumerate(FEATURES))
    return frame.with_columns(pl.Series("forward_return", label * 0.01), pl.Series("label", label),
                              pl.lit(1.0).alias("weight"))


def test_a_champion_registered_on_the_server_loads_on_another_machine(mlflow_server, tmp_path, monkeypatch):
    url, server_root = mlflow_server
    pipelines_home, runtime_home = tmp_path / "pipelines", tmp_path / "runtime"
    tracking = tracking_for(url, "xray", pipelines_home)
    assert tracking.artifact_root == ""  # the server's artefact store, not a local directory
    tracking.activate()
    frame = _frame()
    model = build_model("gbm").fit(frame)
    log_model_version("gbm", model, params=model.params(),
                      metrics={"oos_sharpe": 1.5, "bh_sharpe": 0.2, "oos_trades": 30, "oos_return": 0.1},
                      tags={"xray.data_version": "d1"},
                      example=frame.select("timestamp", "symbol", *FEATURES).head(8))
    # Promoted by hand: this tests where the model lives, not whether it earned it (the gate's tests).
    decision = gate_challenger(tracking.client(), "gbm", GateConfig(), {}, force=True)
    assert decision.promote, decision.reason

    monkeypatch.setenv("XRAY_HOME", str(runtime_home))
    monkeypatch.setenv("XRAY_MODELS_TRACKING_URI", url)
    predictor = load_predictor(f"models:/xray-gbm@{CHAMPION}")
    probabilities = predictor.predict_proba(frame.select("timestamp", "symbol", *FEATURES).head(20))
    assert probabilities.shape[0] == 20 and np.all((probabilities >= 0) & (probabilities <= 1))
    assert not (pipelines_home / "mlflow").exists() and not (runtime_home / "mlflow").exists()
    assert any((server_root / "artifacts").rglob("MLmodel")), "the model's files are on the server"
